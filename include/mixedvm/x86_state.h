/*
 * mixedvm x86 state conventions that differ between KVM and TCG: one pure
 * function per known difference (sched/kvm/x86_state.cc), each unit-tested, and the
 * PVM kernel-entry tripwire.
 *
 * Same rules as mixedvm/mixedvm.h: plain C, no third-party types, nothing
 * throws, errors go into a caller's buffer.
 */
#ifndef MIXEDVM_X86_STATE_H
#define MIXEDVM_X86_STATE_H

#include "mixedvm/mixedvm.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * ---------------------------------------------------------------------------
 * x86 state fix-ups for moving a vCPU between KVM and TCG.
 *
 * KVM (VMX/SVM and PVM) and QEMU's TCG keep the same architectural state with
 * small differences of convention. Each function below fixes one known
 * discrepancy; they are pure and each has its own unit test. Segment "flags"
 * are the high dword of a descriptor as x86 defines it (and as QEMU's
 * SegmentCache.flags keeps it): type in bits 8-11, S bit 12, DPL 13-14, P 15,
 * L 21, D/B 22, G 23.
 * ---------------------------------------------------------------------------
 */
#define MIXEDVM_DESC_TYPE_SHIFT 8
#define MIXEDVM_DESC_TYPE_MASK  (0xfu << MIXEDVM_DESC_TYPE_SHIFT)
#define MIXEDVM_DESC_A_MASK     (1u << 8)    /* accessed (code/data) */
#define MIXEDVM_DESC_CS_MASK    (1u << 11)   /* code segment (code/data) */
#define MIXEDVM_DESC_S_MASK     (1u << 12)   /* code/data, not system */
#define MIXEDVM_DESC_DPL_SHIFT  13
#define MIXEDVM_DESC_DPL_MASK   (3u << MIXEDVM_DESC_DPL_SHIFT)
#define MIXEDVM_DESC_P_MASK     (1u << 15)

/*
 * TR must hold a *busy* TSS for a VM entry (SDM 26.3.1.2), while TCG keeps the
 * *available* type it loaded (LTR), and its I/O-bitmap check accepts only
 * that. Types: 16-bit TSS 1 (available) / 3 (busy); 32/64-bit 9 / 11.
 */
uint32_t mixedvm_tr_flags_for_kvm(uint32_t flags) MIXEDVM_NOEXCEPT;
uint32_t mixedvm_tr_flags_for_tcg(uint32_t flags) MIXEDVM_NOEXCEPT;

/*
 * A usable code or data segment must have its accessed bit set for a VM
 * entry (CS types 9/11/13/15; SS/DS/ES/FS/GS accessed if usable). TCG only
 * sets the bit when it loads a descriptor from memory, so a segment loaded by
 * a fast path (SYSRET, SYSEXIT, interrupt to 64-bit) can lack it. System
 * segments and unusable (not present) segments are returned unchanged.
 */
uint32_t mixedvm_seg_flags_for_kvm(uint32_t flags) MIXEDVM_NOEXCEPT;

/*
 * VMX derives the CPL from SS.DPL, TCG from its hflags. A null SS loaded in
 * 64-bit mode can carry a DPL that differs from the CPL; force SS.DPL = cpl.
 */
uint32_t mixedvm_ss_flags_for_kvm(uint32_t ss_flags, unsigned cpl) MIXEDVM_NOEXCEPT;

/*
 * The XSAVE header's XSTATE_BV tells KVM which components to load; a clear
 * bit loads the component's init state. TCG never maintains it, so a stale
 * value would silently reset x87/SSE/AVX registers on the way into KVM. Every
 * component the guest enabled in XCR0, plus x87 and SSE (which FXSAVE-era
 * guests use without XCR0), is marked as holding state.
 */
#define MIXEDVM_XSTATE_FP  (1ull << 0)
#define MIXEDVM_XSTATE_SSE (1ull << 1)
uint64_t mixedvm_xstate_bv_for_kvm(uint64_t xstate_bv, uint64_t xcr0) MIXEDVM_NOEXCEPT;

/*
 * The interrupt shadow (after STI or MOV SS). TCG has one bit; KVM has two
 * causes, and a VM entry refuses "blocked by STI" when RFLAGS.IF = 0, so the
 * cause is chosen from IF. Values are KVM_X86_SHADOW_INT_MOV_SS (1) and
 * KVM_X86_SHADOW_INT_STI (2).
 */
#define MIXEDVM_SHADOW_MOV_SS 1u
#define MIXEDVM_SHADOW_STI    2u
unsigned mixedvm_shadow_for_kvm(bool tcg_inhibit_irq, bool rflags_if) MIXEDVM_NOEXCEPT;
bool mixedvm_inhibit_irq_from_kvm(unsigned kvm_shadow) MIXEDVM_NOEXCEPT;

/*
 * Event state KVM reported at the last exit. After the vCPU ran on TCG, these
 * fields are stale: TCG delivered or dropped those events itself. Putting
 * them back into KVM would inject an interrupt or exception a second time.
 */
typedef struct MixedvmEvents {
    int interrupt_injected;    /* vector, or -1 */
    bool soft_interrupt;
    bool exception_injected;
    bool exception_pending;
    int exception_nr;          /* -1 when none */
    bool nmi_injected;
    bool nmi_pending;
} MixedvmEvents;
void mixedvm_events_clear_stale(MixedvmEvents *events) MIXEDVM_NOEXCEPT;

/*
 * Hosts whose KVM cannot run guest kernel code (PVM) run only guest user mode
 * on KVM, and must leave KVM on every kernel entry. KVM gets IDTR.limit = 0
 * and sentinels in the SYSCALL target MSRs, so any kernel entry becomes a
 * triple fault (KVM_EXIT_SHUTDOWN); QEMU's state keeps the real values.
 * Exceptions and INT n leave RIP on the faulting instruction, which TCG
 * re-executes. SYSCALL has already executed when the sentinel faults; this
 * rewinds it so that TCG executes it again with the real LSTAR/CSTAR.
 */
#define MIXEDVM_TRIPWIRE_LSTAR 0x1000ull   /* below vm.mmap_min_addr */
#define MIXEDVM_TRIPWIRE_CSTAR 0x2000ull

typedef struct MixedvmTripwireExit {
    uint64_t rip;      /* after the exit */
    uint64_t rcx;      /* SYSCALL stored the return RIP here */
    uint64_t r11;      /* SYSCALL stored RFLAGS here */
    uint64_t star;     /* the guest's real MSR_STAR */
} MixedvmTripwireExit;

typedef struct MixedvmUserResume {
    uint64_t rip;            /* the SYSCALL instruction itself */
    uint64_t rflags;
    uint16_t cs_selector, ss_selector;
    bool cs_long;            /* 64-bit code segment (else 32-bit compat) */
} MixedvmUserResume;

/*
 * Returns true and fills *out when the exit is a SYSCALL tripwire (RIP at one
 * of the sentinels); false when it is any other kernel entry, which is
 * replayed by re-executing the instruction at RIP.
 */
bool mixedvm_tripwire_rewind_syscall(const MixedvmTripwireExit *exit_state,
                                     MixedvmUserResume *out) MIXEDVM_NOEXCEPT;

/*
 * CPUID leaf 0x15 (TSC/crystal ratio): TSC Hz = crystal Hz * EBX / EAX.
 * Linux (native_calibrate_tsc, at least 4.x to 6.1) computes
 * crystal_khz * EBX / EAX in 32-bit unsigned arithmetic, so EBX must keep
 * crystal_khz * EBX below 2^32: with a 1 GHz crystal (the APIC bus, as the
 * guest's APIC timer needs) the plain ratio EBX = tsc_khz, EAX = crystal_khz
 * overflows and a 2.6 GHz TSC reads as 1.544 MHz. This picks the best
 * rational approximation of tsc_khz / crystal_khz whose terms keep that
 * product in range (continued fractions). Returns false, leaving the
 * outputs untouched, for a zero frequency or a crystal above 4.29 GHz.
 */
bool mixedvm_tsc_leaf_ratio(uint32_t tsc_khz, uint32_t crystal_khz,
                            uint32_t *numerator, uint32_t *denominator) MIXEDVM_NOEXCEPT;

#ifdef __cplusplus
}
#endif

#endif /* MIXEDVM_X86_STATE_H */
