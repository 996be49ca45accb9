/*
 * mixed accelerator: state shared by the files of accel/mixed
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or later.
 * See the COPYING file in the top-level directory.
 */

#ifndef ACCEL_MIXED_INTERNAL_H
#define ACCEL_MIXED_INTERNAL_H

#include "system/kvm_int.h"
#include "system/mixed.h"
#include "qapi/qapi-types-machine-target.h"
#include "qemu/timer.h"
#include "mixedvm/kvm_stats.h"
#include "mixedvm/pinning.h"
#include "mixedvm/sched.h"

#define TYPE_MIXED_ACCEL ACCEL_CLASS_NAME("mixed")

/* MTRRdefType, the 11 fixed-range and 8 variable-range base/mask pairs */
#define MIXED_MTRR_MSRS (1 + 11 + 2 * 8)

/* Beyond any guest-physical address (qemu64: 40 bits) and PCI hole. */
#define MIXED_ZAP_SLOT_GPA (1ULL << 44)

/*
 * x-user-get (docs/mixed.md, "State handover"): after a run on KVM that
 * stayed in guest user mode, a move off KVM reads only what user mode can
 * change. VERIFY reads everything as well and compares, without relying on
 * the shortcut, so it may run on any host.
 */
typedef enum MixedUserGet {
    MIXED_USER_GET_OFF,
    MIXED_USER_GET_ON,
    MIXED_USER_GET_VERIFY,
} MixedUserGet;

typedef struct MixedState {
    KVMState kvm;           /* must be first: KVM code casts to KVMState */

    /* options */
    char *tcg_cpus;         /* vCPU list, or NULL */
    char *kvm_cpus;         /* vCPU list, or NULL */
    char *policy;
    char *policy_params;    /* "key=value:..." */
    uint32_t period_ms;     /* how often the policy decides */
    char *trace_file;       /* per-period telemetry, CSV (tools/mixedvm-sim) */
    FILE *trace;
    /*
     * Coherence mechanisms (docs/coherence.md). Each can be turned off with
     * an x- option only so that a negative-control test can show the guest
     * breaking without it.
     */
    bool shadow_zap;        /* x-shadow-zap: KVM shadow MMU after TCG flushes */
    bool code_sync;         /* x-code-sync: TBs of code KVM vCPUs wrote */
    bool kvm_exclusive;     /* x-kvm-exclusive: KVM stops for exclusive work */
    bool tcg_atomics;       /* x-tcg-atomics: TCG's LOCK ops as host atomics */
    bool tsc_sync;          /* x-tsc-sync: TCG reads KVM's TSC timeline */
    bool event_exit;        /* x-event-exit: pending events pull vCPUs off KVM */
    /*
     * Move-path candidates (docs/mixed.md, "The move path"): off by default
     * until a KVM host has measured them against the default.
     */
    bool lazy_put;          /* x-lazy-put: a put writes only what changed */
    bool sync_regs;         /* x-sync-regs: KVM_CAP_SYNC_REGS through kvm_run */
    MixedUserGet user_get_mode; /* x-user-get */
    bool gdb_attached;      /* every vCPU on TCG while gdb is attached */
    char *pin;              /* off, compact, split */
    MixedvmPinMode pin_mode;
    MixedvmPinner *pinner;  /* NULL when pin=off */

    /* placement: the scheduler owns it; vCPU threads read it through RCU */
    MixedvmScheduler *sched;
    QEMUTimer *policy_timer;

    /* start-up probe of the host's KVM */
    bool kvm_runs_kernel;   /* false on PVM: only guest user mode on KVM */
    double kvm_user_ips;    /* the probe's native user-mode instruction rate */
    char kvm_probe[200];
    bool kvm_shadow_mmu;    /* no EPT/NPT: KVM shadows guest page tables */
    bool kvm_apic_msr_exits;    /* x2APIC MSRs on KVM exit to QEMU's APIC */
    /*
     * CPUID at guest CPL3 where KVM runs user code natively (PVM), option
     * user-cpuid (docs/mixed.md, "One guest-visible CPU"): trapped through
     * the host's CPUID faulting, so that KVM answers from the model; or the
     * host's values on both backends.
     */
    char *user_cpuid;           /* auto, trap, host */
    bool user_cpuid_trap;       /* the vCPU thread faults CPUID while on KVM */
    bool user_cpuid_host;       /* TCG answers CPL3 CPUID as the host does */
    QemuMutex zap_lock;     /* one shadow-MMU zap at a time */
    uint64_t shadow_zapped_gen;   /* guest TLB flushes the last zap covered */
    int zap_slot;           /* a KVM memslot id QEMU never uses */
    void *zap_page;         /* host page behind that slot */
} MixedState;

DECLARE_INSTANCE_CHECKER(MixedState, MIXED_STATE, TYPE_MIXED_ACCEL)

/* Set once by init_machine; read on vCPU hot paths, so no QOM cast. */
extern MixedState *mixed_state_ptr;
static inline MixedState *mixed_state(void)
{
    return mixed_state_ptr;
}

/*
 * A vCPU's state under mixed: where it executes, and what may happen next.
 * Only the vCPU's own thread changes it (mixed_vcpu_enter_state): at its safe
 * point (kvm_cpu_exec() or tcg_cpu_exec() returned, BQL held,
 * cpu->running == false), in KVM's exit handler, or in the reset work item.
 * Any thread may read it (mixed_vcpu_running_on).
 *
 *  state        executes on  may become       when
 *  ON_TCG       TCG          ON_KVM           a move: placed on KVM, no event
 *                                             to deliver, (PVM) guest in user mode
 *                            TCG_ONLY         KVM refused the move's state
 *  ON_KVM       KVM          ON_TCG           a move: placed on TCG, an event
 *                                             to deliver, gdb attached, the VM
 *                                             stopped (mixed_vcpu_park); a reset
 *                            KVM_EXITED       KVM handed it back (kvm_exit says
 *                                             why): a PVM tripwire (kernel
 *                                             entry), an emulation failure, a
 *                                             shutdown
 *  KVM_EXITED   neither      ON_TCG           the next safe point's move; a reset
 *  TCG_ONLY     TCG          (none)           KVM cannot run this vCPU any more
 *
 * KVM_EXITED time counts as KVM time: the vCPU is stopped between KVM_RUN's
 * return and the move. A KVM failure goes KVM_EXITED -> ON_TCG -> TCG_ONLY.
 * On a host whose KVM cannot run guest kernel code (PVM), KVM holds the
 * tripwire (mixed-x86.c) exactly in ON_KVM and KVM_EXITED.
 *
 * The placement (what QMP or the policy asked for) is not part of it: it
 * lives in the scheduler (libmixedvm), published through RCU,
 * mixed_vcpu_target(). On PVM a vCPU placed on KVM executes on KVM only
 * while the guest is in user mode, and on TCG otherwise.
 */
typedef enum MixedVcpuState {
    MIXED_VCPU_ON_TCG,
    MIXED_VCPU_ON_KVM,
    MIXED_VCPU_KVM_EXITED,
    MIXED_VCPU_TCG_ONLY,
    MIXED_VCPU__MAX,
} MixedVcpuState;

/*
 * Why a vCPU left KVM (query-vcpu-accel's kvm-leaves). On hosts where KVM
 * runs only guest user mode, a timer tick is a leave and a return: counting
 * ticks apart from the rest shows what each costs.
 */
typedef enum MixedKvmLeave {
    MIXED_LEAVE_TIMER,          /* its local APIC timer's vector */
    MIXED_LEAVE_INTERRUPT,      /* another APIC vector: an IPI or a device */
    MIXED_LEAVE_EXTINT,         /* the 8259 PIC */
    MIXED_LEAVE_NMI,
    MIXED_LEAVE_OTHER_EVENT,    /* SMI, INIT, SIPI, machine check */
    MIXED_LEAVE_KERNEL_ENTRY,   /* PVM tripwire: guest user mode left */
    MIXED_LEAVE_PLACEMENT,      /* placed on TCG, or held there (gdb) */
    MIXED_LEAVE_VM_STOP,
    MIXED_LEAVE_KVM_FAILURE,
    MIXED_LEAVE__MAX,
} MixedKvmLeave;

extern const char *const mixed_kvm_leave_names[MIXED_LEAVE__MAX];

/* Per-vCPU state, in CPUState::accel. */
struct AccelCPUState {
    CPUState *cpu;

    MixedVcpuState state;       /* see above */
    MixedKvmExit kvm_exit;      /* in KVM_EXITED: why KVM handed it back */

    /* a KVM_RUN happened since the last put: kvm_run's exit fields are fresh */
    bool kvm_ran_since_put;
    /* x-vcpu-fail-kvm: KVM is to refuse the next TCG -> KVM put (BQL) */
    bool x_fail_next_put;
    /* user-cpuid=trap: this thread's CPUID faults (only while on KVM) */
    bool cpuid_faulting;

    /* the guest's real values while KVM sees the tripwire */
    uint32_t real_idt_limit;
    uint64_t real_lstar, real_cstar;
    uint32_t real_sysenter_cs;
    target_ulong real_cr2;

    /* guest TLB flushes (mixed-x86.c, mixed_x86_sync_kvm_tlb) */
    uint64_t tlb_flush_gen;     /* number of its latest flush on TCG */
    uint64_t kvm_tlb_flushes;   /* KVM TLB flushes it needed (EPT/NPT) */
    uint64_t shadow_zaps;       /* shadow-MMU zaps it made (shadow MMU) */

    /* the MTRRs KVM holds, as KVM_SET_MSRS data (mixed_x86_put_mtrrs) */
    uint64_t kvm_mtrrs[MIXED_MTRR_MSRS];
    bool kvm_mtrrs_known;

    /* TSC: KVM's per-vCPU offset; TCG reads host TSC + this */
    int64_t kvm_tsc_offset;

    /* KVM's hypervisor CPUID leaves of this vCPU, which TCG answers too */
    struct kvm_cpuid_entry2 hv_leaves[8];
    int nr_hv_leaves;

    /* telemetry */
    int64_t since_ns;           /* start of the current residency */
    int64_t ns_on[VCPU_ACCEL__MAX];
    uint64_t moves;
    uint64_t move_ns;           /* sum of move latencies */
    uint64_t kernel_entries;    /* PVM tripwire exits */
    uint64_t leaves[MIXED_LEAVE__MAX];      /* moves off KVM, by cause */
    uint64_t leave_vectors[2][256]; /* timer and interrupt leaves by vector */
    uint64_t user_gets;         /* gets of user-mode state only (x-user-get) */
    /* x-user-get=verify, by the CPL the run entered KVM at: [0] kernel, [1] user */
    uint64_t user_get_checks[2], user_get_mismatches[2];
    char *user_get_first_mismatch[2];
    uint64_t tcg_user_returns;  /* returns to user mode executed on TCG */
    int64_t tcg_user_ns;        /* time in guest user mode on TCG */
    int64_t tcg_user_since_ns;  /* start of the current user stretch, or 0 */
    int64_t idle_ns;            /* time halted, waiting for an event */
    int64_t idle_since_ns;      /* start of the current halt, or 0 */
    uint64_t fallbacks;
    uint64_t code_syncs;        /* reads of KVM's dirty log (mixed-coherence.c) */
    uint64_t code_pages_invalidated;
    int64_t code_sync_ns;
    uint64_t code_writes_seen;  /* TCG code writes this vCPU re-invalidated */
    uint64_t code_synced_insns; /* neg.mixed_tcg_insns at the last sync */
    uint64_t *code_log;         /* this vCPU's buffer for KVM's dirty bitmaps */
    size_t code_log_words;
    MixedvmKvmStats *kvm_stats; /* KVM's binary stats of this vCPU, or NULL */
    bool has_last_move;
    VcpuAccelMove last_move;
    /* what the last TCG -> KVM handover put, for the report of a KVM failure */
    struct {
        uint64_t rip, rsp, cr0, cr3, cr4, efer, rflags;
        uint32_t cs, cpl, shadow;
        int exception_nr;
        int64_t at_ns;
    } last_put;
};

/* mixed-accel-ops.c: the vCPU state machine */
void mixed_vcpu_enter_state(CPUState *cpu, MixedVcpuState next);

static inline VcpuAccel mixed_vcpu_state_backend(MixedVcpuState s)
{
    return s == MIXED_VCPU_ON_KVM || s == MIXED_VCPU_KVM_EXITED ?
           VCPU_ACCEL_KVM : VCPU_ACCEL_TCG;
}

/* Where the vCPU executes (or, in KVM_EXITED, last executed), from any thread. */
static inline VcpuAccel mixed_vcpu_running_on(CPUState *cpu)
{
    return mixed_vcpu_state_backend(qatomic_load_acquire(&cpu->accel->state));
}

/*
 * Whether vCPU cpu may be placed on target now; errp says why not. For QMP:
 * a placement that the vCPU's state or the VM's forbids is refused, never
 * accepted and then ignored.
 */
bool mixed_vcpu_may_place(CPUState *cpu, VcpuAccel target, Error **errp);

/* mixed-x86.c: state handover, one direction each */
void mixed_x86_note_mtrrs(CPUState *cpu);
bool mixed_x86_kvm_to_tcg(CPUState *cpu, MixedKvmLeave why, VcpuAccelMove *timing,
                          Error **errp);
bool mixed_x86_tcg_to_kvm(CPUState *cpu, VcpuAccelMove *timing, Error **errp);
bool mixed_x86_in_user_mode(CPUState *cpu);
bool mixed_x86_event_pending(CPUState *cpu, bool *deliverable);
MixedKvmLeave mixed_x86_event_cause(CPUState *cpu, int *vector);
void mixed_x86_read_tsc_offset(CPUState *cpu);
void mixed_x86_loaded(CPUState *cpu);
bool mixed_x86_check_cpu(CPUState *cpu, Error **errp);
bool mixed_x86_vcpu_init(CPUState *cpu, Error **errp);

/* mixed-cpu.c: CPUID at guest CPL3 where KVM runs user code natively */
bool mixed_x86_choose_user_cpuid(MixedState *s, Error **errp);
bool mixed_x86_cpuid_faulting(CPUState *cpu, bool on, Error **errp);

/* mixed-coherence.c: code written on KVM, executed on TCG */
void mixed_code_sync_moved(CPUState *cpu);
void mixed_code_kvm_entering(void);
void mixed_code_kvm_left(void);
bool mixed_code_check_host(MixedState *s, Error **errp);

/* Where the scheduler places this vCPU (lock-free, RCU). */
static inline VcpuAccel mixed_vcpu_target(CPUState *cpu)
{
    return mixedvm_sched_placement(mixed_state()->sched, cpu->cpu_index) ==
           MIXEDVM_BACKEND_KVM ? VCPU_ACCEL_KVM : VCPU_ACCEL_TCG;
}

/* mixed-accel-ops.c */
bool mixed_vcpu_set_target(CPUState *cpu, VcpuAccel target,
                           VcpuAccelMoveReason reason, const char *detail,
                           Error **errp);
void mixed_vcpu_placed(CPUState *cpu, VcpuAccel target,
                       VcpuAccelMoveReason reason, const char *detail);

/* The clock of every mixed timing and telemetry figure (monotonic host ns). */
static inline int64_t mixed_now_ns(void)
{
    return get_clock();
}
void mixed_vcpu_times(CPUState *cpu, int64_t now, int64_t *kvm_ns,
                      int64_t *tcg_ns, int64_t *tcg_user_ns, int64_t *idle_ns);
void mixed_safe_point(CPUState *cpu);
void mixed_vcpu_park(CPUState *cpu);

/* mixed-migration.c: snapshots and migration (docs/mixed.md) */
void mixed_migration_init(MixedState *s);
extern uint64_t mixed_loads;    /* VM states loaded since this QEMU started */
void mixed_migration_loaded(void);

/* mixed-cpu.c: the -cpu option under which -accel tcg shows this guest CPU */
const char *mixed_x86_tcg_cpu_option(CPUState *cpu);
bool mixed_x86_pin_tsc_frequency(CPUState *cpu, Error **errp);

#endif /* ACCEL_MIXED_INTERNAL_H */
