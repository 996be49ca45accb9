/*
 * mixedvm scheduler C API: placement policies for -accel mixed.
 *
 * QEMU pushes cumulative per-vCPU counters once per period; the scheduler
 * runs the selected policy and publishes the placement it wants. vCPU threads
 * read that placement at their safe points through RCU (no lock); QMP moves
 * go through mixedvm_sched_request(). Same rules as mixedvm.h: plain C, no
 * third-party types, nothing throws.
 */
#ifndef MIXEDVM_SCHED_H
#define MIXEDVM_SCHED_H

#include "mixedvm/mixedvm.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum MixedvmBackend {
    MIXEDVM_BACKEND_TCG = 0,
    MIXEDVM_BACKEND_KVM = 1,
} MixedvmBackend;

/* Cumulative counters of one vCPU, as QEMU sees them at now_ns. */
typedef struct MixedvmVcpuSample {
    uint64_t now_ns;
    uint64_t kvm_ns;            /* time executing on KVM */
    uint64_t tcg_ns;            /* time executing on TCG */
    uint64_t moves;             /* backend switches */
    uint64_t move_ns;           /* sum of their latencies */
    uint64_t kernel_entries;    /* guest kernel entries that left KVM (PVM) */
    uint64_t kvm_exits;         /* KVM exits of any kind (binary stats fd) */
    MixedvmBackend running;     /* where it executes now */
    uint64_t tcg_user_ns;       /* part of tcg_ns spent in guest user mode */
    uint64_t tcg_insns;         /* guest instructions executed on TCG */
    uint64_t shadow_zaps;       /* KVM shadow-MMU zaps it made (PVM) */
    uint64_t kvm_tlb_flushes;   /* KVM TLB flushes it needed (EPT/NPT) */
    uint64_t idle_ns;           /* part of kvm_ns + tcg_ns spent halted */
    uint64_t tcg_user_returns;  /* returns to guest user mode executed on TCG */
    uint64_t timer_leaves;      /* moves off KVM for its APIC timer (ticks) */
    uint64_t event_leaves;      /* moves off KVM for any other interrupt or event */
} MixedvmVcpuSample;

typedef struct MixedvmScheduler MixedvmScheduler;

/* One entry per known policy, for -accel mixed,policy= and QMP. */
typedef struct MixedvmPolicyInfo {
    const char *name;
    const char *summary;
} MixedvmPolicyInfo;
size_t mixedvm_sched_policies(const MixedvmPolicyInfo **out) MIXEDVM_NOEXCEPT;

/*
 * A scheduler for n vCPUs starting at initial[] with the named policy.
 * kvm_runs_kernel: the host's KVM runs guest kernel code (VT-x/AMD-V).
 * Returns NULL and fills err for an unknown policy or bad parameters.
 * params: "key=value:key=value" or NULL.
 */
MixedvmScheduler *mixedvm_sched_new(const char *policy, const char *params,
                                    unsigned n, const MixedvmBackend *initial,
                                    bool kvm_runs_kernel,
                                    char *err, size_t errlen) MIXEDVM_NOEXCEPT;
void mixedvm_sched_free(MixedvmScheduler *s) MIXEDVM_NOEXCEPT;
/*
 * How many guest user-mode instructions per second KVM runs natively on this
 * host (the start-up probe's CPL3 loop: 2 instructions per loop), so that
 * policies can compare a vCPU's progress on both backends. 0 = unknown.
 */
void mixedvm_sched_set_kvm_user_ips(MixedvmScheduler *s, double ips) MIXEDVM_NOEXCEPT;

/* Switch policy at runtime (QMP). On failure the old policy stays. */
bool mixedvm_sched_set_policy(MixedvmScheduler *s, const char *policy,
                              const char *params, char *err,
                              size_t errlen) MIXEDVM_NOEXCEPT;

/* The current policy's name and its parameters as "key=value:...". */
const char *mixedvm_sched_policy(MixedvmScheduler *s) MIXEDVM_NOEXCEPT;
size_t mixedvm_sched_params(MixedvmScheduler *s, char *buf,
                            size_t len) MIXEDVM_NOEXCEPT;

/*
 * One period: samples[i] are vCPU i's counters now. Runs the policy and
 * publishes the new placement; out[i] receives it. Returns how many
 * placements changed. A policy that fails (throws) is ejected: the static
 * policy takes over, nothing moves, and mixedvm_sched_take_ejection() says
 * why.
 * REQUIRES: calls to decide, set_policy and request are serialised (QEMU:
 * all three are made with the BQL held).
 */
unsigned mixedvm_sched_decide(MixedvmScheduler *s,
                              const MixedvmVcpuSample *samples, unsigned n,
                              MixedvmBackend *out) MIXEDVM_NOEXCEPT;

/*
 * Why the last decide ejected its policy: true once, with the reason in why.
 * False when no policy was ejected since the last call.
 */
bool mixedvm_sched_take_ejection(MixedvmScheduler *s, char *why,
                                 size_t len) MIXEDVM_NOEXCEPT;

/*
 * Place vCPU i on b now (QMP, or a vCPU that falls back to TCG), bypassing
 * the policy until it decides again. Fails for a vCPU that does not exist.
 * REQUIRES: serialised with decide and set_policy (QEMU: the BQL; QMP calls
 * it from the main loop, the fallback from the vCPU's thread at its safe
 * point, where the vCPU holds the BQL too).
 */
bool mixedvm_sched_request(MixedvmScheduler *s, unsigned i, MixedvmBackend b,
                           char *err, size_t errlen) MIXEDVM_NOEXCEPT;

/*
 * Hold vCPU i where it is placed (hold), or release it: no policy moves a
 * held vCPU; mixedvm_sched_request still does. For "observe vCPU N now" on
 * TCG, with QMP's vcpu-set-accel hold=true. Same rules as _request.
 */
bool mixedvm_sched_set_hold(MixedvmScheduler *s, unsigned i, bool hold,
                            char *err, size_t errlen) MIXEDVM_NOEXCEPT;
bool mixedvm_sched_held(MixedvmScheduler *s, unsigned i) MIXEDVM_NOEXCEPT;

/*
 * Where vCPU i is placed. Lock-free (an RCU read-side critical section);
 * callable from any thread that called mixedvm_sched_register_thread().
 */
/*
 * The telemetry record of -accel mixed,trace-file=, defined once in
 * sched/trace_record.h: the CSV header, and vCPU vcpu's line for one period
 * (placed: where the policy had it). Each writes a NUL-terminated line
 * without a newline into buf and returns false if it did not fit in len.
 */
bool mixedvm_trace_header(char *buf, size_t len) MIXEDVM_NOEXCEPT;
bool mixedvm_trace_line(const MixedvmVcpuSample *sample, unsigned vcpu,
                        MixedvmBackend placed, char *buf,
                        size_t len) MIXEDVM_NOEXCEPT;

MixedvmBackend mixedvm_sched_placement(MixedvmScheduler *s,
                                       unsigned i) MIXEDVM_NOEXCEPT;
void mixedvm_sched_register_thread(void) MIXEDVM_NOEXCEPT;
void mixedvm_sched_unregister_thread(void) MIXEDVM_NOEXCEPT;

#ifdef __cplusplus
}
#endif

#endif /* MIXEDVM_SCHED_H */
