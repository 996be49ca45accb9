/*
 * mixed accelerator: where an x86 vCPU runs, and its state handover
 *
 * The questions the safe point asks (user mode? an event to deliver?), the
 * KVM pre-run hook, the interrupt shadow, and the two handovers. QEMU's
 * CPUX86State is the meeting point. KVM -> TCG: get everything from KVM, then
 * rebuild what only TCG keeps (hflags, softfloat status, TCG breakpoints,
 * TLB). TCG -> KVM: canonicalise what only TCG keeps lazily (flags, MXCSR,
 * XSTATE_BV), fix what VMX/PVM require (TR busy, accessed bits, SS.DPL), drop
 * stale events, then put. The conventions that differ are pure functions in
 * libmixedvm (include/mixedvm/x86_state.h), unit-tested. The guest-visible CPU
 * itself (model, CPUID, TSC, x2APIC) is in mixed-cpu.c.
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or later.
 * See the COPYING file in the top-level directory.
 */


#include "qemu/osdep.h"
#include "qemu/error-report.h"
#include "qemu/lockable.h"
#include "qemu/main-loop.h"
#include "qapi/error.h"
#include "accel/accel-cpu-target.h"
#include "hw/boards.h"
#include "exec/cputlb.h"
#include "exec/tb-flush.h"
#include "system/kvm.h"
#include "system/cpu-timers.h"
#include "cpu.h"
#include "cpu-internal.h"
#include "host-cpu.h"
#include "hw/i386/apic.h"
#include "hw/i386/apic_internal.h"
#include "kvm/kvm_i386.h"
#include "mixed-internal.h"
#include "mixedvm/x86_state.h"
#include "trace.h"
/* ------------------------------------------------------------------------
 * Questions the scheduler asks at a safe point
 */

bool mixed_x86_in_user_mode(CPUState *cs)
{
    return (cpu_env(cs)->hflags & HF_CPL_MASK) == 3;
}

/*
 * Is an event waiting for this vCPU, and could the guest take it now? Every
 * event is delivered by TCG; KVM never injects under mixed.
 */
bool mixed_x86_event_pending(CPUState *cs, bool *deliverable)
{
    CPUX86State *env = cpu_env(cs);
    int req = qatomic_read(&cs->interrupt_request);

    *deliverable = false;
    if (req & (CPU_INTERRUPT_NMI | CPU_INTERRUPT_SMI | CPU_INTERRUPT_INIT |
               CPU_INTERRUPT_SIPI | CPU_INTERRUPT_MCE)) {
        *deliverable = true;
        return true;
    }
    if (req & CPU_INTERRUPT_HARD) {
        *deliverable = (env->eflags & IF_MASK) &&
                       !(env->hflags & HF_INHIBIT_IRQ_MASK);
        return true;
    }
    return false;
}

/*
 * What the pending event that takes this vCPU off KVM is. An interrupt is
 * named by the highest vector in its APIC's IRR, the one TCG delivers
 * first; it is a tick when that is the vector of the APIC's own timer.
 */
MixedKvmLeave mixed_x86_event_cause(CPUState *cs, int *vector)
{
    X86CPU *cpu = X86_CPU(cs);
    int req = qatomic_read(&cs->interrupt_request);
    int irr;

    *vector = -1;
    if (req & CPU_INTERRUPT_NMI) {
        return MIXED_LEAVE_NMI;
    }
    if (req & (CPU_INTERRUPT_SMI | CPU_INTERRUPT_INIT | CPU_INTERRUPT_SIPI |
               CPU_INTERRUPT_MCE)) {
        return MIXED_LEAVE_OTHER_EVENT;
    }
    irr = apic_get_highest_priority_irr(cpu->apic_state);
    if (irr < 0) {
        return MIXED_LEAVE_EXTINT;
    }
    *vector = irr;
    return irr == (APIC_COMMON(cpu->apic_state)->lvt[APIC_LVT_TIMER] & 0xff) ?
           MIXED_LEAVE_TIMER : MIXED_LEAVE_INTERRUPT;
}

void mixed_kvm_pre_run(CPUState *cs, struct kvm_run *run)
{
    X86CPU *cpu = X86_CPU(cs);
    AccelCPUState *mv = cs->accel;
    bool deliverable;

    bql_lock();
    /*
     * env's interrupt shadow is the one of the last put or get, and goes
     * stale while KVM runs guest kernel code; kvm_arch_post_run refreshes
     * only IF. KVM says after every KVM_RUN whether the guest can take an
     * interrupt now: when it can, there is no shadow. Both this hook and the
     * safe point (mixed_wanted_backend) decide from env, so refresh it here.
     * Without this, a stale shadow made both say "not yet" forever: the
     * window KVM was asked for was open, so it exited at once (689,560 of
     * 771,899 exits), or the vCPU went round the safe point without entering
     * the guest (seen on an emulated AMD-V host, docs/mixed.md). Before the
     * first KVM_RUN after a put, run's fields are older than env: skip.
     */
    if (mv->kvm_ran_since_put && run->ready_for_interrupt_injection) {
        cpu->env.hflags &= ~HF_INHIBIT_IRQ_MASK;
    }
    mv->kvm_ran_since_put = true;
    run->request_interrupt_window = 0;
    if (mixed_state()->event_exit && mixed_x86_event_pending(cs, &deliverable)) {
        if (deliverable || !mixed_state()->kvm_runs_kernel) {
            /* Leave KVM; TCG delivers it at the next safe point. */
            qatomic_set(&cs->exit_request, 1);
        } else {
            /* IF=0 in guest kernel code KVM runs: exit once it can take it. */
            run->request_interrupt_window = 1;
        }
    }
    if (cs->interrupt_request & CPU_INTERRUPT_TPR) {
        qatomic_set(&cs->exit_request, 1);
    }
    run->cr8 = cpu_get_apic_tpr(cpu->apic_state);
    bql_unlock();
}

/* ------------------------------------------------------------------------
 * The interrupt shadow, which QEMU's KVM code does not carry otherwise
 */

unsigned mixed_kvm_put_shadow(CPUState *cs)
{
    CPUX86State *env = cpu_env(cs);

    return mixedvm_shadow_for_kvm(env->hflags & HF_INHIBIT_IRQ_MASK,
                                  env->eflags & IF_MASK);
}

void mixed_kvm_got_shadow(CPUState *cs, unsigned shadow)
{
    CPUX86State *env = cpu_env(cs);

    if (mixedvm_inhibit_irq_from_kvm(shadow)) {
        env->hflags |= HF_INHIBIT_IRQ_MASK;
    } else {
        env->hflags &= ~HF_INHIBIT_IRQ_MASK;
    }
}

/* ------------------------------------------------------------------------
 * KVM -> TCG
 */

static void mixed_x86_events_to_env(CPUX86State *env, const MixedvmEvents *e)
{
    env->interrupt_injected = e->interrupt_injected;
    env->soft_interrupt = e->soft_interrupt;
    env->exception_injected = e->exception_injected;
    env->exception_pending = e->exception_pending;
    env->exception_nr = e->exception_nr;
    env->nmi_injected = e->nmi_injected;
    env->nmi_pending = e->nmi_pending;
}

static void mixed_x86_clear_stale_events(CPUX86State *env)
{
    MixedvmEvents e;

    mixedvm_events_clear_stale(&e);
    mixed_x86_events_to_env(env, &e);
    env->exception_has_payload = false;
    env->triple_fault_pending = false;
}

/*
 * Events KVM still held when it exited. Mixed never injects, so only an
 * exception KVM raised itself, or an NMI, can be here; TCG takes them over.
 */
static void mixed_x86_take_kvm_events(CPUState *cs)
{
    CPUX86State *env = cpu_env(cs);

    if (env->exception_pending || env->exception_injected) {
        if (env->exception_has_payload) {
            if (env->exception_nr == EXCP01_DB) {
                env->dr[6] = env->exception_payload;
            } else if (env->exception_nr == EXCP0E_PAGE) {
                env->cr[2] = env->exception_payload;
            }
        }
        cs->exception_index = env->exception_nr;
        env->exception_is_int = 0;
        env->exception_next_eip = 0;
        env->old_exception = -1;
    }
    if (env->nmi_injected || env->nmi_pending) {
        env->hflags2 &= ~HF2_NMI_MASK;
        qatomic_or(&cs->interrupt_request, CPU_INTERRUPT_NMI);
    }
    if (env->interrupt_injected >= 0) {
        /* Cannot happen: mixed_kvm_pre_run() never injects. */
        error_report("mixed: vCPU %d left KVM holding interrupt vector %d, "
                     "which is lost", cs->cpu_index, env->interrupt_injected);
    }
    mixed_x86_clear_stale_events(env);
}

/* What KVM sees of the guest's kernel entry points: the PVM tripwire. */
static void mixed_x86_set_tripwire(CPUX86State *env)
{
    env->idt.limit = 0;                     /* any event: #GP, #DF, shutdown */
    env->lstar = MIXEDVM_TRIPWIRE_LSTAR;    /* SYSCALL faults at a sentinel */
    env->cstar = MIXEDVM_TRIPWIRE_CSTAR;
    env->sysenter_cs = 0;                   /* SYSENTER raises #GP */
}

/*
 * x-lazy-put: record what KVM holds, which is env just after a get, except
 * that a user-mode get (x-user-get) left the guest's real entry points in
 * env where KVM holds the tripwire. mixed_x86_disarm_tripwire restores the
 * real ones right after.
 */
static void mixed_x86_note_state_held(CPUState *cs)
{
    if (!mixed_state()->kvm_runs_kernel) {
        mixed_x86_set_tripwire(cpu_env(cs));
    }
    kvm_arch_note_state_held(cs);
}

/* The guest's real entry state, which QEMU keeps while KVM sees the tripwire. */
static void mixed_x86_restore_real(CPUState *cs)
{
    AccelCPUState *mv = cs->accel;
    CPUX86State *env = cpu_env(cs);

    env->idt.limit = mv->real_idt_limit;
    env->lstar = mv->real_lstar;
    env->cstar = mv->real_cstar;
    env->sysenter_cs = mv->real_sysenter_cs;
}

/* A PVM tripwire fired: give the guest back its real state. */
static void mixed_x86_disarm_tripwire(CPUState *cs, bool kernel_entry)
{
    AccelCPUState *mv = cs->accel;
    CPUX86State *env = cpu_env(cs);
    MixedvmTripwireExit exit_state;
    MixedvmUserResume resume;
    bool rewound;

    mixed_x86_restore_real(cs);
    exit_state = (MixedvmTripwireExit) {
        .rip = env->eip, .rcx = env->regs[R_ECX], .r11 = env->regs[11],
        .star = env->star,
    };
    /*
     * Not only after a shutdown exit: a kick can interrupt KVM_RUN after
     * SYSCALL switched to the sentinel and before the fault, and PVM then
     * reports RIP at the sentinel with the user CS.
     */
    rewound = mixedvm_tripwire_rewind_syscall(&exit_state, &resume);
    if (!kernel_entry && !rewound) {
        return;
    }
    mv->kernel_entries++;
    /*
     * What KVM holds now is the tripwire's own fault chain (for SYSCALL, a
     * #PF at the sentinel with CR2 = sentinel). Delivering it would hand the
     * guest a fault it never took. TCG executes the instruction again, which
     * raises any real exception with its real CR2.
     */
    mixed_x86_clear_stale_events(env);
    env->cr[2] = mv->real_cr2;
    if (rewound) {
        /* SYSCALL ran on KVM and faulted at the sentinel: run it again. */
        env->eip = resume.rip;
        env->eflags = resume.rflags;
        cpu_x86_load_seg_cache(env, R_CS, resume.cs_selector, 0, 0xffffffff,
                               DESC_G_MASK | DESC_P_MASK | DESC_S_MASK |
                               (3 << DESC_DPL_SHIFT) | DESC_CS_MASK |
                               DESC_R_MASK | DESC_A_MASK |
                               (resume.cs_long ? DESC_L_MASK : DESC_B_MASK));
        cpu_x86_load_seg_cache(env, R_SS, resume.ss_selector, 0, 0xffffffff,
                               DESC_G_MASK | DESC_B_MASK | DESC_P_MASK |
                               DESC_S_MASK | (3 << DESC_DPL_SHIFT) |
                               DESC_W_MASK | DESC_A_MASK);
    }
    /* Anything else: RIP is the instruction that entered the kernel. */
    trace_mixed_tripwire(cs->cpu_index, exit_state.rip, exit_state.rcx,
                         env->segs[R_CS].selector, env->eip, rewound);
}

/* ------------------------------------------------------------------------
 * MTRRs
 *
 * QEMU's put writes the MTRRs only at reset and full-state levels, so a move
 * into KVM (a RUNTIME put) left KVM with the values of the last reset while
 * the guest wrote its own on TCG (SeaBIOS on the BSP, Linux on each AP it
 * brings up), and the next full get brought KVM's back into env: the guest's
 * MTRR writes were lost at every move off KVM. Found on the emulated AMD-V
 * host by x-user-get=verify (2026-12-05). mixed writes them itself whenever
 * they differ from what KVM was last given or read back.
 */

static void mixed_x86_mtrr_entries(CPUState *cs, struct kvm_msr_entry *e)
{
    X86CPU *cpu = X86_CPU(cs);
    CPUX86State *env = &cpu->env;
    /* KVM refuses mask bits beyond the host's physical limit; as QEMU puts. */
    uint64_t phys_mask = MAKE_64BIT_MASK(0, cpu->phys_bits);
    static const uint32_t fixed[11] = {
        MSR_MTRRfix64K_00000, MSR_MTRRfix16K_80000, MSR_MTRRfix16K_A0000,
        MSR_MTRRfix4K_C0000, MSR_MTRRfix4K_C8000, MSR_MTRRfix4K_D0000,
        MSR_MTRRfix4K_D8000, MSR_MTRRfix4K_E0000, MSR_MTRRfix4K_E8000,
        MSR_MTRRfix4K_F0000, MSR_MTRRfix4K_F8000,
    };
    int i, n = 0;

    QEMU_BUILD_BUG_ON(MIXED_MTRR_MSRS != 1 + 11 + 2 * MSR_MTRRcap_VCNT);
    e[n++] = (struct kvm_msr_entry) { .index = MSR_MTRRdefType,
                                      .data = env->mtrr_deftype };
    for (i = 0; i < 11; i++) {
        e[n++] = (struct kvm_msr_entry) { .index = fixed[i],
                                          .data = env->mtrr_fixed[i] };
    }
    for (i = 0; i < MSR_MTRRcap_VCNT; i++) {
        e[n++] = (struct kvm_msr_entry) { .index = MSR_MTRRphysBase(i),
                                          .data = env->mtrr_var[i].base };
        e[n++] = (struct kvm_msr_entry) { .index = MSR_MTRRphysMask(i),
                                          .data = env->mtrr_var[i].mask &
                                                  phys_mask };
    }
}

/* KVM holds env's MTRRs now (a full get read them, or a reset put them). */
void mixed_x86_note_mtrrs(CPUState *cs)
{
    AccelCPUState *mv = cs->accel;
    struct kvm_msr_entry e[MIXED_MTRR_MSRS];
    int i;

    mixed_x86_mtrr_entries(cs, e);
    for (i = 0; i < MIXED_MTRR_MSRS; i++) {
        mv->kvm_mtrrs[i] = e[i].data;
    }
    mv->kvm_mtrrs_known = true;
}

/*
 * Before a vCPU enters KVM: the MTRRs the guest wrote on TCG, if any. TCG
 * does not check the values the guest writes; should KVM refuse one (a real
 * CPU would have raised #GP at the write), the vCPU still moves, KVM keeps
 * its own MTRRs, and that is said once.
 */
static void mixed_x86_put_mtrrs(CPUState *cs)
{
    AccelCPUState *mv = cs->accel;
    struct {
        struct kvm_msrs info;
        struct kvm_msr_entry e[MIXED_MTRR_MSRS];
    } msrs = { .info.nmsrs = MIXED_MTRR_MSRS };
    int i, ret;

    if (!(cpu_env(cs)->features[FEAT_1_EDX] & CPUID_MTRR)) {
        return;
    }
    mixed_x86_mtrr_entries(cs, msrs.e);
    for (i = 0; mv->kvm_mtrrs_known && i < MIXED_MTRR_MSRS; i++) {
        if (mv->kvm_mtrrs[i] != msrs.e[i].data) {
            break;
        }
    }
    if (mv->kvm_mtrrs_known && i == MIXED_MTRR_MSRS) {
        return;
    }
    ret = kvm_vcpu_ioctl(cs, KVM_SET_MSRS, &msrs);
    if (ret != MIXED_MTRR_MSRS) {
        int bad = ret >= 0 && ret < MIXED_MTRR_MSRS ? ret : 0;

        warn_report_once("mixed: vCPU %d: KVM refused the guest's MTRRs "
                         "(MSR 0x%x = 0x%" PRIx64 ", %s); KVM keeps its own",
                         cs->cpu_index, msrs.e[bad].index, msrs.e[bad].data,
                         ret < 0 ? strerror(-ret) : "invalid value");
    }
    mixed_x86_note_mtrrs(cs);   /* what was asked for: no retry per move */
}

/*
 * x-user-get: can this move's get skip what only guest kernel code changes?
 * When KVM gave the vCPU back only because QEMU kicked it (an event, a
 * placement) and it had entered KVM in user mode (last_put.cpl): where KVM
 * cannot run guest kernel code (PVM), every kernel entry on KVM ends in the
 * tripwire, which hands the vCPU back as a shutdown exit (KVM_EXITED), so
 * such a run stayed in user mode. A VM stop gets everything, for whatever
 * QEMU does next with it.
 */
static bool mixed_x86_kicked_off_kvm(CPUState *cs, MixedKvmLeave why)
{
    return cs->accel->state == MIXED_VCPU_ON_KVM &&
           why != MIXED_LEAVE_VM_STOP && why != MIXED_LEAVE_KVM_FAILURE;
}

/*
 * The fields a full get reads and a user-mode get does not, that a guest
 * could depend on; compared by name for the first mismatch, the rest of env
 * byte for byte.
 */
#define MIXED_USER_GET_FIELD(f) { #f, offsetof(CPUX86State, f), \
                                  sizeof(((CPUX86State *)0)->f) }
static const struct {
    const char *name;
    size_t offset, size;
} mixed_user_get_fields[] = {
    MIXED_USER_GET_FIELD(xcr0), MIXED_USER_GET_FIELD(kernelgsbase),
    MIXED_USER_GET_FIELD(star), MIXED_USER_GET_FIELD(lstar),
    MIXED_USER_GET_FIELD(cstar), MIXED_USER_GET_FIELD(fmask),
    MIXED_USER_GET_FIELD(sysenter_cs), MIXED_USER_GET_FIELD(sysenter_esp),
    MIXED_USER_GET_FIELD(sysenter_eip), MIXED_USER_GET_FIELD(pat),
    MIXED_USER_GET_FIELD(tsc_aux), MIXED_USER_GET_FIELD(spec_ctrl),
    MIXED_USER_GET_FIELD(mp_state), MIXED_USER_GET_FIELD(mtrr_deftype),
    MIXED_USER_GET_FIELD(mtrr_fixed), MIXED_USER_GET_FIELD(mtrr_var),
    { "dr0-3", offsetof(CPUX86State, dr), 4 * sizeof(target_ulong) },
    { "dr6", offsetof(CPUX86State, dr[6]), sizeof(target_ulong) },
    { "dr7", offsetof(CPUX86State, dr[7]), sizeof(target_ulong) },
};

/*
 * Where the state of a user-mode get differs from a full get's ("dr6, byte
 * 0: 0x0 against 0xffff0ff0"), or NULL. The caller frees it.
 */
static char *mixed_x86_user_get_mismatch(const CPUX86State *user,
                                         const CPUX86State *full)
{
    /*
     * Not compared: what counts by itself and the guest cannot read under
     * mixed (the TSC MSR, ours being host TSC plus KVM's offset; Hyper-V's
     * VP runtime, without Hyper-V features, see mixed_x86_vcpu_init), the
     * PDPTRs that only SREGS2 carries, and DR4/DR5, which a full get fills
     * as aliases of DR6/DR7 and nothing reads.
     */
    static const struct { size_t offset, size; } volatile_fields[] = {
        { offsetof(CPUX86State, tsc), sizeof(full->tsc) },
        { offsetof(CPUX86State, msr_hv_runtime), sizeof(full->msr_hv_runtime) },
        { offsetof(CPUX86State, dr[4]), 2 * sizeof(target_ulong) },
        { offsetof(CPUX86State, pdptrs_valid), sizeof(full->pdptrs_valid) },
        { offsetof(CPUX86State, pdptrs), sizeof(full->pdptrs) },
    };
    const uint8_t *a = (const uint8_t *)user, *b = (const uint8_t *)full;
    size_t i, j;

    for (i = 0; i < ARRAY_SIZE(mixed_user_get_fields); i++) {
        size_t off = mixed_user_get_fields[i].offset;

        for (j = 0; j < mixed_user_get_fields[i].size; j += 8) {
            uint64_t ua = 0, fa = 0;
            size_t n = MIN(8, mixed_user_get_fields[i].size - j);

            memcpy(&ua, a + off + j, n);
            memcpy(&fa, b + off + j, n);
            if (ua != fa) {
                return g_strdup_printf("%s, byte %zu: 0x%" PRIx64 " against 0x%"
                                       PRIx64, mixed_user_get_fields[i].name,
                                       j, ua, fa);
            }
        }
    }
    for (i = 0; i < sizeof(*full); i++) {
        bool skip = false;

        for (j = 0; j < ARRAY_SIZE(volatile_fields); j++) {
            skip |= i >= volatile_fields[j].offset &&
                    i < volatile_fields[j].offset + volatile_fields[j].size;
        }
        if (!skip && a[i] != b[i]) {
            return g_strdup_printf("CPUX86State byte %zu", i);
        }
    }
    return NULL;
}

static int mixed_x86_full_get(CPUState *cs, Error **errp)
{
    int ret = kvm_arch_get_registers(cs, errp);

    if (ret == 0) {
        mixed_x86_note_mtrrs(cs);
    }
    return ret;
}

/*
 * The get of a move off KVM. With x-user-get, after a run in user mode,
 * only what user mode can change (target/i386/kvm: kvm_get_user_state);
 * with verify, that and then the full get, compared.
 */
static int mixed_x86_get(CPUState *cs, MixedKvmLeave why, Error **errp)
{
    MixedState *s = mixed_state();
    AccelCPUState *mv = cs->accel;
    X86CPU *cpu = X86_CPU(cs);
    g_autofree CPUX86State *user = NULL;
    g_autofree char *mismatch = NULL;
    bool entered_user;
    int ret;

    if (s->user_get_mode == MIXED_USER_GET_OFF ||
        !mixed_x86_kicked_off_kvm(cs, why)) {
        return mixed_x86_full_get(cs, errp);
    }
    entered_user = mv->last_put.cpl == 3;
    if (s->user_get_mode == MIXED_USER_GET_ON) {
        if (!entered_user) {
            return mixed_x86_full_get(cs, errp);
        }
        cpu->kvm_get_user_state = true;
        ret = kvm_arch_get_registers(cs, errp);
        if (ret == 0 && !mixed_x86_in_user_mode(cs)) {
            /* Cannot happen (see above); if it does, read everything. */
            warn_report_once("mixed: vCPU %d left KVM in kernel mode after a "
                             "run entered in user mode; full get",
                             cs->cpu_index);
            return mixed_x86_full_get(cs, errp);
        }
        mv->user_gets += ret == 0;
        return ret;
    }
    /* verify: on any host, any run (counted by the CPL it entered KVM at) */
    cpu->kvm_get_user_state = true;
    ret = kvm_arch_get_registers(cs, errp);
    if (ret) {
        return ret;
    }
    user = g_memdup2(&cpu->env, sizeof(cpu->env));
    ret = mixed_x86_full_get(cs, errp);
    if (ret) {
        return ret;
    }
    if (!s->kvm_runs_kernel) {
        /* env kept the real values at the put; KVM holds the tripwire's. */
        user->lstar = cpu->env.lstar;
        user->cstar = cpu->env.cstar;
        user->sysenter_cs = cpu->env.sysenter_cs;
    }
    mismatch = mixed_x86_user_get_mismatch(user, &cpu->env);
    mv->user_get_checks[entered_user]++;
    if (mismatch) {
        mv->user_get_mismatches[entered_user]++;
        if (!mv->user_get_first_mismatch[entered_user]) {
            mv->user_get_first_mismatch[entered_user] = g_strdup(mismatch);
        }
        trace_mixed_user_get_mismatch(cs->cpu_index, entered_user, mismatch);
    }
    return 0;
}

bool mixed_x86_kvm_to_tcg(CPUState *cs, MixedKvmLeave why, VcpuAccelMove *t,
                          Error **errp)
{
    AccelCPUState *mv = cs->accel;
    X86CPU *cpu = X86_CPU(cs);
    CPUX86State *env = &cpu->env;
    int64_t t0 = mixed_now_ns(), t1, t2;
    target_ulong dr7;

    if (!cs->vcpu_dirty) {
        /*
         * kvm_get_vcpu_events() sets or clears CPU_INTERRUPT_INIT and _SMI
         * after KVM's latched INIT and pending SMI, which KVM keeps only
         * with an in-kernel APIC. Under mixed QEMU's APIC raised them and
         * they are still QEMU's to deliver: without this, an INIT sent to
         * a halted AP on KVM was wiped here, its SIPIs then found it not
         * waiting for one, and the guest could not bring up its other CPUs
         * (seen on the emulated AMD-V host with -smp 2).
         */
        int ours = qatomic_read(&cs->interrupt_request) &
                   (CPU_INTERRUPT_INIT | CPU_INTERRUPT_SMI);

        if (mixed_x86_get(cs, why, errp)) {
            return false;
        }
        /* x-lazy-put: KVM holds what was just read; the put back writes changes */
        if (mixed_state()->lazy_put) {
            mixed_x86_note_state_held(cs);
        }
        qatomic_or(&cs->interrupt_request, ours);
        cs->vcpu_dirty = true;
    }
    t1 = mixed_now_ns();

    if (!mixed_state()->kvm_runs_kernel) {
        /* KVM holds the tripwire in every state on KVM (mixed-internal.h). */
        mixed_x86_disarm_tripwire(cs, mv->state == MIXED_VCPU_KVM_EXITED &&
                                      mv->kvm_exit == MIXED_KVM_EXIT_SHUTDOWN);
    }
    mixed_x86_take_kvm_events(cs);

    env->tr.flags = mixedvm_tr_flags_for_tcg(env->tr.flags);
    env->hflags2 |= HF2_GIF_MASK;
    /* hflags that TCG derives from CR4 and EFER and KVM does not keep. */
    cpu_x86_update_cr4(env, env->cr[4]);
    cpu_load_efer(env, env->efer);
    update_fp_status(env);
    update_mxcsr_status(env);
    /* Debug registers become TCG breakpoints (as cpu_post_load does). */
    cpu_breakpoint_remove_all(cs, BP_CPU);
    cpu_watchpoint_remove_all(cs, BP_CPU);
    dr7 = env->dr[7];
    env->dr[7] = dr7 & ~(DR7_GLOBAL_BP_MASK | DR7_LOCAL_BP_MASK);
    cpu_x86_update_dr7(env, dr7);
    t2 = mixed_now_ns();

    /* The guest changed its page tables while on KVM. */
    tlb_flush(cs);
    tcg_flush_jmp_cache(cs);
    /* ...and maybe code: a move into TCG serialises, like an interrupt. */
    mixed_code_sync_moved(cs);

    t->get_ns = t1 - t0;
    t->put_ns = t2 - t1;
    t->flush_ns = mixed_now_ns() - t2;
    return true;
}

/* ------------------------------------------------------------------------
 * TCG -> KVM
 */

/*
 * After TCG ran, KVM's TLB (VPID/ASID tags on VT-x/AMD-V, the shadow
 * context on PVM) may hold translations the guest invalidated on TCG. A
 * changed CR4.PGE makes KVM_SET_SREGS reset the vCPU's MMU context
 * (kvm_mmu_reset_context via mmu_reset_needed); toggling it twice leaves the
 * guest's value in place. See docs/coherence.md for what this does and does
 * not cover on a shadow-MMU host.
 */
static int mixed_x86_flush_kvm_tlb(CPUState *cs)
{
    struct kvm_sregs sregs;
    int ret;

    ret = kvm_vcpu_ioctl(cs, KVM_GET_SREGS, &sregs);
    if (ret < 0) {
        return ret;
    }
    sregs.cr4 ^= CR4_PGE_MASK;
    ret = kvm_vcpu_ioctl(cs, KVM_SET_SREGS, &sregs);
    if (ret < 0) {
        return ret;
    }
    sregs.cr4 ^= CR4_PGE_MASK;
    return kvm_vcpu_ioctl(cs, KVM_SET_SREGS, &sregs);
}

/*
 * Guest TLB flushes executed on TCG, numbered VM-wide: each flush takes the
 * next number, and each vCPU remembers the number of its own latest one.
 * The number is taken after the guest's page-table stores (program order,
 * and a full barrier), so a zap that starts after reading number N sees
 * every page table that flushes 1..N were about.
 */
static uint64_t mixed_guest_tlb_gen;

void mixed_tlb_flushed(CPUState *cs)
{
    uint64_t gen = qatomic_fetch_inc(&mixed_guest_tlb_gen) + 1;

    if (cs->accel) {
        qatomic_set(&cs->accel->tlb_flush_gen, gen);
    }
}

/*
 * Shadow-MMU hosts: KVM built its shadow page tables from guest page tables
 * it write-protected; TCG vCPUs changed them through QEMU's mapping without
 * KVM noticing. Invalidate every shadow page so that KVM rebuilds them from
 * the guest's page tables, unless a zap since flush number @needed already
 * did. Deleting a memslot makes KVM zap all shadow pages
 * (kvm_arch_flush_shadow_memslot); a one-page slot outside guest memory is
 * added and deleted for that. Measured on PVM (tools/probes/
 * kvm-shadow-invalidate.c): SET_SREGS, a CR4.PGE toggle, KVM_SET_NR_MMU_PAGES
 * and a dirty-log flag toggle leave the stale translation in place; this
 * does not, in about 50 us. The lock keeps two zaps from deleting the slot
 * twice (-EINVAL) should handovers ever run without the BQL.
 */
static int mixed_x86_zap_shadow_mmu(CPUState *cs, uint64_t needed)
{
    MixedState *s = mixed_state();
    struct kvm_userspace_memory_region slot = {
        .slot = s->zap_slot,
        .guest_phys_addr = MIXED_ZAP_SLOT_GPA,
        .memory_size = qemu_real_host_page_size(),
        .userspace_addr = (uintptr_t)s->zap_page,
    };
    uint64_t gen;
    int ret = 0;

    if (!s->shadow_zap || needed <= qatomic_read(&s->shadow_zapped_gen)) {
        return 0;
    }
    QEMU_LOCK_GUARD(&s->zap_lock);
    if (needed <= s->shadow_zapped_gen) {
        return 0;       /* another vCPU's zap covered it meanwhile */
    }
    gen = qatomic_load_acquire(&mixed_guest_tlb_gen);
    ret = kvm_vm_ioctl(kvm_state, KVM_SET_USER_MEMORY_REGION, &slot);
    if (ret < 0) {
        return ret;
    }
    slot.memory_size = 0;
    ret = kvm_vm_ioctl(kvm_state, KVM_SET_USER_MEMORY_REGION, &slot);
    if (ret < 0) {
        return ret;
    }
    qatomic_set(&s->shadow_zapped_gen, gen);
    qatomic_inc(&cs->accel->shadow_zaps);
    return 0;
}

/*
 * What KVM must forget before this vCPU enters it (docs/coherence.md, "Which
 * flushes a vCPU must honour"). A flush on x86 obliges only the processor
 * that executes it, so a vCPU owes KVM a zap only for flushes it executed
 * itself on TCG: the rule for the shadow zap on hosts whose KVM runs no guest
 * kernel code (PVM), where every flush a vCPU executes is executed on TCG.
 * Where KVM runs kernel code on a shadow MMU, a vCPU's own INVLPG on KVM does
 * not re-read page tables that TCG changed (KVM believes them
 * write-protected), so there any flush on TCG since the last zap requires
 * one. On EPT/NPT hosts every entry flushes the vCPU's KVM TLB: the same
 * per-vCPU rule there was followed by triple faults with two vCPUs on the
 * emulated AMD-V host (4 of 16 runs; 0 of 6 with the flush on every entry),
 * unexplained, so it is not used.
 */
static int mixed_x86_sync_kvm_tlb(CPUState *cs)
{
    MixedState *s = mixed_state();
    AccelCPUState *mv = cs->accel;
    int ret;

    if (s->kvm_shadow_mmu) {
        return mixed_x86_zap_shadow_mmu(cs, s->kvm_runs_kernel ?
                                        qatomic_read(&mixed_guest_tlb_gen) :
                                        qatomic_read(&mv->tlb_flush_gen));
    }
    ret = mixed_x86_flush_kvm_tlb(cs);
    if (ret == 0) {
        qatomic_inc(&mv->kvm_tlb_flushes);
    }
    return ret;
}

/*
 * A VM state was loaded (loadvm, an incoming migration) and KVM's put is
 * done. The load wrote guest RAM behind KVM's back, page tables included:
 * KVM must forget what it derived from them before this vCPU enters it (a
 * shadow-MMU zap, or a TLB flush). KVM's put set the guest TSC from
 * env->tsc; a stream from -accel tcg also carries TCG's own TSC offset
 * (mixed-migration.c), which mixed's TCG vCPUs must not add on top.
 */
void mixed_x86_loaded(CPUState *cs)
{
    mixed_tlb_flushed(cs);
    cpu_env(cs)->tsc_offset = 0;
}

static void mixed_x86_arm_tripwire(CPUState *cs)
{
    AccelCPUState *mv = cs->accel;
    CPUX86State *env = cpu_env(cs);

    mv->real_idt_limit = env->idt.limit;
    mv->real_lstar = env->lstar;
    mv->real_cstar = env->cstar;
    mv->real_sysenter_cs = env->sysenter_cs;
    mv->real_cr2 = env->cr[2];
    mixed_x86_set_tripwire(env);
}

bool mixed_x86_tcg_to_kvm(CPUState *cs, VcpuAccelMove *t, Error **errp)
{
    AccelCPUState *mv = cs->accel;
    X86CPU *cpu = X86_CPU(cs);
    CPUX86State *env = &cpu->env;
    int64_t t0 = mixed_now_ns(), t1, t2;
    unsigned cpl = env->hflags & HF_CPL_MASK;
    int i, ret;

    /* x86_cpu_exec_exit folded the lazy flags; make them canonical. */
    env->cc_src = env->eflags & (CC_O | CC_S | CC_Z | CC_A | CC_P | CC_C);
    env->cc_op = CC_OP_EFLAGS;
    env->df = (env->eflags & DF_MASK) ? -1 : 1;
    update_mxcsr_from_sse_status(env);
    env->xstate_bv = mixedvm_xstate_bv_for_kvm(env->xstate_bv, env->xcr0);
    for (i = 0; i < 6; i++) {
        env->segs[i].flags = mixedvm_seg_flags_for_kvm(env->segs[i].flags);
    }
    env->segs[R_SS].flags = mixedvm_ss_flags_for_kvm(env->segs[R_SS].flags, cpl);
    env->tr.flags = mixedvm_tr_flags_for_kvm(env->tr.flags);
    env->pdptrs_valid = false;    /* KVM reloads PDPTEs from CR3 */
    mixed_x86_clear_stale_events(env);
    cs->exception_index = -1;
    if (mixed_state()->user_cpuid_trap &&
        !mixed_x86_cpuid_faulting(cs, true, errp)) {
        return false;
    }
    if (!mixed_state()->kvm_runs_kernel) {
        mixed_x86_arm_tripwire(cs);
    }
    t1 = mixed_now_ns();

    if (unlikely(mv->x_fail_next_put)) {
        /*
         * x-vcpu-fail-kvm: a reserved CR4 bit, which KVM_SET_SREGS (the
         * put's first ioctl) refuses; env keeps the guest's CR4.
         */
        target_ulong real_cr4 = env->cr[4];

        mv->x_fail_next_put = false;
        env->cr[4] |= 1ULL << 63;
        ret = kvm_arch_put_registers(cs, KVM_PUT_RUNTIME_STATE, errp);
        env->cr[4] = real_cr4;
    } else {
        ret = kvm_arch_put_registers(cs, KVM_PUT_RUNTIME_STATE, errp);
    }
    if (!mixed_state()->kvm_runs_kernel) {
        mixed_x86_restore_real(cs);   /* QEMU keeps the real values */
    }
    if (ret) {
        return false;
    }
    mixed_x86_put_mtrrs(cs);
    cs->vcpu_dirty = false;
    mv->kvm_ran_since_put = false;
    t2 = mixed_now_ns();
    mv->last_put.rip = env->eip;
    mv->last_put.rsp = env->regs[R_ESP];
    mv->last_put.rflags = env->eflags;
    mv->last_put.cr0 = env->cr[0];
    mv->last_put.cr3 = env->cr[3];
    mv->last_put.cr4 = env->cr[4];
    mv->last_put.efer = env->efer;
    mv->last_put.cs = env->segs[R_CS].selector;
    mv->last_put.cpl = cpl;
    mv->last_put.shadow = !!(env->hflags & HF_INHIBIT_IRQ_MASK);
    mv->last_put.exception_nr = env->exception_injected ? env->exception_nr : -1;
    mv->last_put.at_ns = t2;

    ret = mixed_x86_sync_kvm_tlb(cs);
    if (ret < 0) {
        error_setg_errno(errp, -ret, "mixed: flushing vCPU %d's KVM TLB",
                         cs->cpu_index);
        return false;
    }
    cs->kvm_run->immediate_exit = 0;

    t->get_ns = t1 - t0;
    t->put_ns = t2 - t1;
    t->flush_ns = mixed_now_ns() - t2;
    return true;
}
