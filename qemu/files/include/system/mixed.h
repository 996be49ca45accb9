/*
 * mixed accelerator: KVM and MTTCG vCPUs in one guest (mixedvm)
 *
 * The hooks QEMU's own code calls. Everything else lives in accel/mixed/.
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or later.
 * See the COPYING file in the top-level directory.
 */

#ifndef SYSTEM_MIXED_H
#define SYSTEM_MIXED_H

#include "exec/cpu-common.h"

#ifdef CONFIG_MIXEDVM
/* Set by -accel mixed, together with kvm_allowed and tcg_allowed. */
extern bool mixed_allowed;
#define mixed_enabled() (mixed_allowed)

/*
 * A TCG vCPU executed a guest TLB flush (INVLPG, MOV to CR3, a paging CR0 or
 * CR4 change). The guest may have changed page tables behind KVM's back:
 * before this vCPU next enters KVM, its KVM TLB is flushed, and on a
 * shadow-MMU host KVM's shadow pages are invalidated (mixed-x86.c, the rule
 * in docs/coherence.md).
 */
void mixed_tlb_flushed(CPUState *cpu);

static inline void mixed_guest_tlb_flushed(CPUState *cpu)
{
    if (mixed_enabled()) {
        mixed_tlb_flushed(cpu);
    }
}
#else
#define mixed_enabled() (false)
static inline void mixed_guest_tlb_flushed(CPUState *cpu)
{
}
#endif

/*
 * Code written by KVM vCPUs, executed by TCG vCPUs (accel/mixed/mixed-coherence.c).
 *
 * mixed_tcg_translating: TCG is about to read guest code at @page (a RAM
 * address) to translate it; KVM must log writes to the page from now on.
 * mixed_tcg_serialize: a TCG vCPU is at a serialising point (interrupt or
 * exception delivery, IRET, CPUID, MOV to CR, WRMSR): invalidate the TBs of
 * pages KVM vCPUs wrote, so that the vCPU fetches modified code afresh.
 * mixed_tcg_code_written: a TCG store is about to modify a page with TBs
 * (notdirty_write, which invalidates before the store lands).
 */
#if defined(CONFIG_MIXEDVM) && !defined(CONFIG_USER_ONLY)
void mixed_code_page_translating(ram_addr_t page);
void mixed_code_sync(CPUState *cpu);
void mixed_code_written(ram_addr_t addr);
void mixed_code_log_clearing(ram_addr_t start, unsigned long *bitmap,
                             uint64_t npages);

static inline void mixed_tcg_code_written(ram_addr_t addr)
{
    if (mixed_enabled()) {
        mixed_code_written(addr);
    }
}

static inline void mixed_tcg_translating(ram_addr_t page)
{
    if (mixed_enabled()) {
        mixed_code_page_translating(page);
    }
}

static inline void mixed_tcg_serialize(CPUState *cpu)
{
    if (mixed_enabled()) {
        mixed_code_sync(cpu);
    }
}

/*
 * QEMU is about to clear @bitmap's pages in KVM's dirty log (migration):
 * mixed takes out the pages whose KVM writes its code sync has yet to see.
 */
static inline void mixed_kvm_log_clearing(ram_addr_t start,
                                          unsigned long *bitmap,
                                          uint64_t npages)
{
    if (mixed_enabled()) {
        mixed_code_log_clearing(start, bitmap, npages);
    }
}
#else
static inline void mixed_kvm_log_clearing(ram_addr_t start,
                                          unsigned long *bitmap,
                                          uint64_t npages)
{
}

static inline void mixed_tcg_code_written(ram_addr_t addr)
{
}

static inline void mixed_tcg_translating(ram_addr_t page)
{
}

static inline void mixed_tcg_serialize(CPUState *cpu)
{
}
#endif

/*
 * Do KVM vCPUs stop for TCG's exclusive sections (tb_flush, atomic steps)?
 * Always, except under the x-kvm-exclusive=off negative control.
 */
#ifdef CONFIG_MIXEDVM
bool mixed_kvm_joins_exclusive(void);
#else
static inline bool mixed_kvm_joins_exclusive(void)
{
    return true;
}
#endif

/*
 * gdb attached to the VM (true), or detached or disconnected (false). Under
 * mixed every vCPU runs on TCG while gdb is attached, so that gdb's
 * breakpoints, watchpoints and single steps are TCG's and nothing writes
 * int3 into RAM behind TCG's back (accel/mixed/mixed-accel-ops.c).
 */
#ifdef CONFIG_MIXEDVM
void mixed_gdb_hold(bool attached);
static inline void mixed_gdb_attached(bool attached)
{
    if (mixed_enabled()) {
        mixed_gdb_hold(attached);
    }
}
#else
static inline void mixed_gdb_attached(bool attached)
{
}
#endif

/* Why a vCPU left KVM without being asked (reported by kvm_cpu_exec). */
typedef enum MixedKvmExit {
    MIXED_KVM_EXIT_SHUTDOWN,            /* triple fault, or a PVM tripwire */
    MIXED_KVM_EXIT_EMULATION_FAILURE,   /* KVM could not emulate */
} MixedKvmExit;

#ifdef CONFIG_MIXEDVM
/*
 * kvm_cpu_exec() got an exit that mixed turns into a move to TCG instead of a
 * reset or a VM stop. Called on the vCPU thread, without the BQL.
 */
void mixed_kvm_exit_to_tcg(CPUState *cpu, MixedKvmExit reason);

/*
 * kvm_arch_pre_run() under mixed: a vCPU on KVM never gets events injected
 * by KVM; pending events make it leave KVM so TCG delivers them.
 * Called on the vCPU thread, with the BQL.
 */
void mixed_kvm_pre_run(CPUState *cpu, struct kvm_run *run);

/*
 * The interrupt shadow (STI / MOV SS blocking), which QEMU's KVM code does
 * not otherwise carry across KVM_GET/SET_VCPU_EVENTS.
 */
unsigned mixed_kvm_put_shadow(CPUState *cpu);
void mixed_kvm_got_shadow(CPUState *cpu, unsigned shadow);

/* TCG returned the guest to user mode (IRET, SYSRET, SYSEXIT, far RET). */
void mixed_tcg_user_mode_entered(CPUState *cpu);

/*
 * TCG is about to leave guest user mode for the kernel (an exception, an
 * interrupt, SYSCALL or SYSENTER). Called with the guest still in user mode.
 */
void mixed_tcg_kernel_entered(CPUState *cpu);

/*
 * CPUID feature word @w (a FeatureWord) that -accel mixed offers: what both
 * backends can run. @kvm_word is KVM's supported set for that word.
 */
uint64_t mixed_x86_supported_feature_word(int w, uint64_t kvm_word);

/* TSC of a vCPU on either backend: KVM's timeline (host TSC + KVM offset). */
uint64_t mixed_cpu_get_tsc(CPUState *cpu);

/*
 * cpu_x86_cpuid() under mixed: answer leaf @index/@count the way this vCPU's
 * KVM table does, for the leaves QEMU builds separately for KVM (the
 * hypervisor range) or not at all (0x15). Returns false for every other leaf.
 */
bool mixed_x86_cpuid(CPUState *cpu, uint32_t index, uint32_t count,
                     uint32_t *eax, uint32_t *ebx, uint32_t *ecx, uint32_t *edx);

/*
 * A KVM_EXIT_X86_RDMSR/WRMSR that QEMU's MSR filter did not ask for: an MSR
 * KVM refused because it has no in-kernel APIC (x2APIC, on hosts where KVM
 * runs guest kernel code). Answered from QEMU's APIC; anything else gets
 * the #GP KVM would have raised. Called on the vCPU thread without the BQL.
 */
int mixed_kvm_handle_msr(CPUState *cpu, struct kvm_run *run);
#endif

#endif /* SYSTEM_MIXED_H */
