/*
 * mixed accelerator: the vCPU thread and the per-vCPU accel-ops hooks
 *
 * Every vCPU has one host thread, a KVM vCPU fd and a TCG context for its
 * whole life. The thread runs kvm_cpu_exec() or the MTTCG loop; between the
 * two it reaches a safe point, where it may move to the other backend.
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or later.
 * See the COPYING file in the top-level directory.
 */

#include "qemu/osdep.h"
#include "qemu/error-report.h"
#include "qemu/guest-random.h"
#include "qemu/main-loop.h"
#include "qemu/rcu.h"
#include "qemu/timer.h"
#include "qapi/error.h"
#include "qapi/qapi-events-machine-target.h"
#include "system/accel-ops.h"
#include "system/cpus.h"
#include "system/kvm.h"
#include "system/runstate.h"
#include "system/tcg.h"
#include "exec/cputlb.h"
#include "exec/tb-flush.h"
#include "hw/boards.h"
#include "hw/core/cpu.h"
#include "tcg/startup.h"
#include "mixed-internal.h"
#include "../kvm/kvm-cpus.h"
#include "../tcg/tcg-accel-ops.h"
#include "trace.h"

/*
 * The legal transitions of the table in mixed-internal.h. Anything else is a
 * bug in mixed, caught where it happens rather than as a guest that runs on
 * the wrong backend later.
 */
static const bool mixed_vcpu_transition_ok[MIXED_VCPU__MAX][MIXED_VCPU__MAX] = {
    [MIXED_VCPU_ON_TCG] = {
        [MIXED_VCPU_ON_KVM] = true, [MIXED_VCPU_TCG_ONLY] = true,
    },
    [MIXED_VCPU_ON_KVM] = {
        [MIXED_VCPU_ON_TCG] = true, [MIXED_VCPU_KVM_EXITED] = true,
    },
    [MIXED_VCPU_KVM_EXITED] = {
        [MIXED_VCPU_ON_TCG] = true,
    },
};

static const char *const mixed_vcpu_state_name[MIXED_VCPU__MAX] = {
    [MIXED_VCPU_ON_TCG] = "on-tcg",
    [MIXED_VCPU_ON_KVM] = "on-kvm",
    [MIXED_VCPU_KVM_EXITED] = "kvm-exited",
    [MIXED_VCPU_TCG_ONLY] = "tcg-only",
};

void mixed_vcpu_enter_state(CPUState *cpu, MixedVcpuState next)
{
    AccelCPUState *mv = cpu->accel;

    assert(qemu_cpu_is_self(cpu));
    if (!mixed_vcpu_transition_ok[mv->state][next]) {
        error_report("mixed: vCPU %d: illegal state change %s -> %s",
                     cpu->cpu_index, mixed_vcpu_state_name[mv->state],
                     mixed_vcpu_state_name[next]);
        abort();
    }
    if (mv->cpuid_faulting &&
        (next == MIXED_VCPU_ON_TCG || next == MIXED_VCPU_TCG_ONLY)) {
        /* QEMU's own code may run CPUID on this thread from now on. */
        mixed_x86_cpuid_faulting(cpu, false, &error_abort);
    }
    /* Pairs with mixed_vcpu_running_on() on other threads. */
    qatomic_store_release(&mv->state, next);
}

bool mixed_vcpu_may_place(CPUState *cpu, VcpuAccel target, Error **errp)
{
    if (target == VCPU_ACCEL_TCG) {
        return true;    /* every vCPU can run on TCG, in every state */
    }
    if (qatomic_load_acquire(&cpu->accel->state) == MIXED_VCPU_TCG_ONLY) {
        error_setg(errp, "vCPU %d cannot run on KVM any more: it fell back "
                   "to TCG after a KVM failure", cpu->cpu_index);
        return false;
    }
    if (qatomic_read(&mixed_state()->gdb_attached)) {
        error_setg(errp, "vCPU %d stays on TCG while gdb is attached "
                   "(gdb's breakpoints are TCG's); detach gdb first",
                   cpu->cpu_index);
        return false;
    }
    return true;
}

/*
 * The user-mode clock on TCG runs from a return to user mode to the next
 * kernel entry, so a vCPU's TCG time splits into user and kernel time
 * exactly, at the instructions that change privilege. KVM needs no clock:
 * on hosts whose KVM runs only user mode, KVM time is all user time.
 */
static void mixed_tcg_user_clock_start(AccelCPUState *mv, int64_t now)
{
    if (!mv->tcg_user_since_ns) {
        qatomic_set(&mv->tcg_user_since_ns, now);
    }
}

static void mixed_tcg_user_clock_stop(AccelCPUState *mv, int64_t now)
{
    if (mv->tcg_user_since_ns) {
        qatomic_set(&mv->tcg_user_ns,
                    mv->tcg_user_ns + now - mv->tcg_user_since_ns);
        qatomic_set(&mv->tcg_user_since_ns, 0);
    }
}

/* Time on the backend the vCPU is leaving, up to now. */
static void mixed_account(CPUState *cpu, int64_t now)
{
    AccelCPUState *mv = cpu->accel;
    VcpuAccel leaving = mixed_vcpu_state_backend(mv->state);

    mv->ns_on[leaving] += now - mv->since_ns;
    mv->since_ns = now;
    if (leaving == VCPU_ACCEL_TCG) {
        mixed_tcg_user_clock_stop(mv, now);
    } else if (mixed_x86_in_user_mode(cpu)) {
        mixed_tcg_user_clock_start(mv, now);
    }
}

/*
 * The times so far, for readers on other threads (QMP, the policy timer):
 * the vCPU thread updates the counters without a lock, so the open stretch
 * may be a moment stale, never negative.
 */
void mixed_vcpu_times(CPUState *cpu, int64_t now, int64_t *kvm_ns,
                      int64_t *tcg_ns, int64_t *tcg_user_ns, int64_t *idle_ns)
{
    AccelCPUState *mv = cpu->accel;
    VcpuAccel current = mixed_vcpu_running_on(cpu);
    int64_t open = MAX(now - qatomic_read(&mv->since_ns), 0);
    int64_t user_since = qatomic_read(&mv->tcg_user_since_ns);
    int64_t idle_since = qatomic_read(&mv->idle_since_ns);

    *idle_ns = qatomic_read(&mv->idle_ns) +
               (idle_since ? MAX(now - idle_since, 0) : 0);

    *kvm_ns = mv->ns_on[VCPU_ACCEL_KVM] + (current == VCPU_ACCEL_KVM ? open : 0);
    *tcg_ns = mv->ns_on[VCPU_ACCEL_TCG] + (current == VCPU_ACCEL_TCG ? open : 0);
    *tcg_user_ns = qatomic_read(&mv->tcg_user_ns) +
                   (user_since ? MAX(now - user_since, 0) : 0);
}

/*
 * Change what QMP or a fallback wants for this vCPU. BQL held (the
 * scheduler's writers are serialised by it). The vCPU acts on it at its next
 * safe point; the kick makes that soon.
 */
bool mixed_vcpu_set_target(CPUState *cpu, VcpuAccel target,
                           VcpuAccelMoveReason reason, const char *detail,
                           Error **errp)
{
    char err[256];

    if (mixed_vcpu_target(cpu) != target) {
        if (!mixedvm_sched_request(mixed_state()->sched, cpu->cpu_index,
                                   target == VCPU_ACCEL_KVM ?
                                   MIXEDVM_BACKEND_KVM : MIXEDVM_BACKEND_TCG,
                                   err, sizeof(err))) {
            error_setg(errp, "mixed: cannot place vCPU %d: %s",
                       cpu->cpu_index, err);
            return false;
        }
        mixed_vcpu_placed(cpu, target, reason, detail);
        return true;
    }
    qemu_cpu_kick(cpu);
    return true;
}

/*
 * A new placement took effect (QMP, a fallback or the policy): the one place
 * that announces it and sends the vCPU to its safe point.
 */
void mixed_vcpu_placed(CPUState *cpu, VcpuAccel target,
                       VcpuAccelMoveReason reason, const char *detail)
{
    qapi_event_send_vcpu_accel_changed(cpu->cpu_index, target, reason, detail);
    qemu_cpu_kick(cpu);
}

/*
 * Kept on TCG whatever its placement: KVM failed it, or gdb is attached
 * (mixed_gdb_hold).
 */
static bool mixed_vcpu_held_on_tcg(CPUState *cpu)
{
    return cpu->accel->state == MIXED_VCPU_TCG_ONLY ||
           qatomic_read(&mixed_state()->gdb_attached);
}

const char *const mixed_kvm_leave_names[MIXED_LEAVE__MAX] = {
    [MIXED_LEAVE_TIMER] = "timer",
    [MIXED_LEAVE_INTERRUPT] = "interrupt",
    [MIXED_LEAVE_EXTINT] = "extint",
    [MIXED_LEAVE_NMI] = "nmi",
    [MIXED_LEAVE_OTHER_EVENT] = "other-event",
    [MIXED_LEAVE_KERNEL_ENTRY] = "kernel-entry",
    [MIXED_LEAVE_PLACEMENT] = "placement",
    [MIXED_LEAVE_VM_STOP] = "vm-stop",
    [MIXED_LEAVE_KVM_FAILURE] = "kvm-failure",
};

/*
 * Where this vCPU should execute right now. For TCG, *why says what takes it
 * off KVM, and *vector the interrupt's vector where that is one (else -1).
 */
static VcpuAccel mixed_wanted_backend(CPUState *cpu, MixedKvmLeave *why,
                                      int *vector)
{
    bool runs_kernel = mixed_state()->kvm_runs_kernel;
    AccelCPUState *mv = cpu->accel;
    bool deliverable;

    *why = MIXED_LEAVE_PLACEMENT;
    *vector = -1;
    if (mixed_vcpu_target(cpu) == VCPU_ACCEL_TCG || mixed_vcpu_held_on_tcg(cpu)) {
        return VCPU_ACCEL_TCG;
    }
    if (mixed_state()->event_exit && mixed_x86_event_pending(cpu, &deliverable) &&
        (deliverable || !runs_kernel)) {
        *why = mixed_x86_event_cause(cpu, vector);
        return VCPU_ACCEL_TCG;          /* TCG delivers every event */
    }
    if (!runs_kernel && mv->state == MIXED_VCPU_ON_TCG &&
        !mixed_x86_in_user_mode(cpu)) {
        return VCPU_ACCEL_TCG;          /* PVM: guest kernel code on TCG */
    }
    return VCPU_ACCEL_KVM;
}

/* KVM could not go on with this vCPU: it stays on TCG from now on. */
static void mixed_fall_back(CPUState *cpu, const char *why)
{
    AccelCPUState *mv = cpu->accel;

    mixed_vcpu_enter_state(cpu, MIXED_VCPU_TCG_ONLY);
    mv->fallbacks++;
    warn_report("mixed: vCPU %d moved to TCG for good: %s", cpu->cpu_index, why);
    /* TCG_ONLY keeps it on TCG even if the placement cannot be updated. */
    mixed_vcpu_set_target(cpu, VCPU_ACCEL_TCG, VCPU_ACCEL_MOVE_REASON_FALLBACK,
                          why, &error_warn);
}

static void mixed_pin_self(CPUState *cpu, VcpuAccel on)
{
    MixedState *s = mixed_state();
    char err[256];

    if (s->pinner && !mixedvm_pinner_apply(s->pinner, cpu->cpu_index,
                                           on == VCPU_ACCEL_KVM, err,
                                           sizeof(err))) {
        warn_report_once("mixed: cannot pin vCPU %d: %s", cpu->cpu_index, err);
    }
}

/*
 * The handover runs under the BQL. It touches only this vCPU's own state
 * and VM-wide state with locks of its own, so it could run without it (stock
 * QEMU puts registers without the BQL). Two versions that did were tried on
 * the emulated AMD-V host: one hung once at boot, the other delivered
 * interrupts about three times more slowly there; neither was measured on
 * PVM, so both were withdrawn (docs/mixed.md, "State handover").
 */
/*
 * Moves the vCPU to the other backend; false if it did not move. For a move
 * to TCG, why and vector say what takes it off KVM (mixed_wanted_backend).
 */
static bool mixed_move(CPUState *cpu, VcpuAccel to, MixedKvmLeave why,
                       int vector)
{
    AccelCPUState *mv = cpu->accel;
    VcpuAccelMove timing = { .to = to };
    Error *err = NULL;
    int64_t t0 = mixed_now_ns();
    bool ok;

    if (to == VCPU_ACCEL_TCG) {
        ok = mixed_x86_kvm_to_tcg(cpu, why, &timing, &err);
    } else {
        ok = mixed_x86_tcg_to_kvm(cpu, &timing, &err);
    }
    if (ok && mixed_state()->pin_mode == MIXEDVM_PIN_SPLIT) {
        mixed_pin_self(cpu, to);   /* KVM and TCG threads on different cores */
    }
    if (!ok && to == VCPU_ACCEL_TCG) {
        /* QEMU cannot know the guest's state: nothing safe to run. */
        error_report_err(err);
        vm_stop(RUN_STATE_INTERNAL_ERROR);
        return false;
    }
    if (!ok) {
        /* env is intact: the guest goes on, on TCG. */
        mixed_fall_back(cpu, error_get_pretty(err));
        error_free(err);
        return false;
    }
    mixed_account(cpu, t0);
    timing.latency_ns = mixed_now_ns() - t0;
    mv->last_move = timing;
    mv->has_last_move = true;
    mv->moves++;
    mv->move_ns += timing.latency_ns;
    if (to == VCPU_ACCEL_TCG) {
        mv->leaves[why]++;
        if ((why == MIXED_LEAVE_TIMER || why == MIXED_LEAVE_INTERRUPT) &&
            vector >= 0 && vector < 256) {
            mv->leave_vectors[why == MIXED_LEAVE_TIMER ? 0 : 1][vector]++;
        }
    }
    mixed_vcpu_enter_state(cpu, to == VCPU_ACCEL_KVM ? MIXED_VCPU_ON_KVM
                                                     : MIXED_VCPU_ON_TCG);
    trace_mixed_move(cpu->cpu_index, VcpuAccel_str(to), timing.latency_ns,
                     timing.get_ns, timing.put_ns, timing.flush_ns,
                     to == VCPU_ACCEL_TCG ? mixed_kvm_leave_names[why] : "-");
    return true;
}

/*
 * The safe point: BQL held, cpu->running == false, on the vCPU's thread,
 * outside any exclusive section; both backends' state is architecturally
 * consistent here (kvm_cpu_exec and cpu_exec have returned).
 */
void mixed_safe_point(CPUState *cpu)
{
    AccelCPUState *mv = cpu->accel;
    bool kvm_failed;

    if (mv->state != MIXED_VCPU_KVM_EXITED) {
        MixedKvmLeave why;
        VcpuAccel want;
        int vector;

        if (!cpu_can_run(cpu)) {
            return;
        }
        want = mixed_wanted_backend(cpu, &why, &vector);
        if (want != mixed_vcpu_state_backend(mv->state)) {
            mixed_move(cpu, want, why, vector);
        }
        return;
    }
    /*
     * KVM handed the vCPU back. A shutdown exit is the PVM tripwire (a
     * kernel entry) where KVM cannot run kernel code, and a failure where
     * it can; an emulation failure is always one.
     */
    kvm_failed = mv->kvm_exit == MIXED_KVM_EXIT_EMULATION_FAILURE ||
                 (mv->kvm_exit == MIXED_KVM_EXIT_SHUTDOWN &&
                  mixed_state()->kvm_runs_kernel);
    if (mixed_move(cpu, VCPU_ACCEL_TCG, kvm_failed ? MIXED_LEAVE_KVM_FAILURE
                                                   : MIXED_LEAVE_KERNEL_ENTRY,
                   -1)) {
        if (kvm_failed) {
            error_report("mixed: vCPU %d: KVM failed %.3f ms after the last "
                         "TCG -> KVM put of rip 0x%" PRIx64 " cs 0x%x cpl %u "
                         "rsp 0x%" PRIx64 " rflags 0x%" PRIx64 " cr0 0x%" PRIx64
                         " cr3 0x%" PRIx64 " cr4 0x%" PRIx64 " efer 0x%" PRIx64
                         " shadow %u exception %d; %" PRIu64 " moves so far",
                         cpu->cpu_index,
                         (mixed_now_ns() - mv->last_put.at_ns) / 1e6,
                         mv->last_put.rip, mv->last_put.cs, mv->last_put.cpl,
                         mv->last_put.rsp, mv->last_put.rflags,
                         mv->last_put.cr0, mv->last_put.cr3, mv->last_put.cr4,
                         mv->last_put.efer, mv->last_put.shadow,
                         mv->last_put.exception_nr, mv->moves);
            mixed_fall_back(cpu, mv->kvm_exit == MIXED_KVM_EXIT_SHUTDOWN ?
                            "unexpected shutdown exit from KVM" :
                            "KVM failed to emulate an instruction");
        }
    }
}

/*
 * The VM stopped (mixed-migration.c): a vCPU on KVM leaves it, so that env
 * is authoritative and holds the guest's real values, never the PVM
 * tripwire. Whatever then reads the vCPU's state (a snapshot, a migration,
 * gdb) reads env, and QEMU's later put is the state it read. vCPU thread,
 * BQL held, the vCPU stopped: as good a safe point as mixed_safe_point's.
 * The first safe point after the VM resumes moves it back to its placement.
 */
void mixed_vcpu_park(CPUState *cpu)
{
    switch (cpu->accel->state) {
    case MIXED_VCPU_KVM_EXITED:
        mixed_safe_point(cpu);      /* moves to TCG in any run state */
        break;
    case MIXED_VCPU_ON_KVM:
        mixed_move(cpu, VCPU_ACCEL_TCG, MIXED_LEAVE_VM_STOP, -1);
        break;
    default:
        break;
    }
}

bool mixed_kvm_joins_exclusive(void)
{
    return mixed_state()->kvm_exclusive;
}

void mixed_kvm_exit_to_tcg(CPUState *cpu, MixedKvmExit reason)
{
    cpu->accel->kvm_exit = reason;
    mixed_vcpu_enter_state(cpu, MIXED_VCPU_KVM_EXITED);
}

void mixed_tcg_user_mode_entered(CPUState *cpu)
{
    AccelCPUState *mv = cpu->accel;

    /* TCG progress: each return is a system call, interrupt or fault done. */
    mv->tcg_user_returns++;
    mixed_tcg_user_clock_start(mv, mixed_now_ns());
    /* PVM: user mode is where KVM runs the guest natively; go there. */
    if (mixed_vcpu_target(cpu) == VCPU_ACCEL_KVM && !mixed_vcpu_held_on_tcg(cpu)) {
        cpu_exit(cpu);
    }
}

void mixed_tcg_kernel_entered(CPUState *cpu)
{
    mixed_tcg_user_clock_stop(cpu->accel, mixed_now_ns());
}

/*
 * qemu_wait_io_event(), with the time a halted vCPU waits for an event
 * counted apart: it is neither backend's work, so a policy must not weigh
 * it for or against either (docs/scheduler.md). It counts in the time of
 * the backend the vCPU is on, like any other time.
 */
static void mixed_wait_io_event(CPUState *cpu)
{
    AccelCPUState *mv = cpu->accel;
    int64_t since;

    if (!cpu->halted) {
        qemu_wait_io_event(cpu);
        return;
    }
    since = mixed_now_ns();
    qatomic_set(&mv->idle_since_ns, since);
    qemu_wait_io_event(cpu);
    qatomic_set(&mv->idle_ns, mv->idle_ns + mixed_now_ns() - since);
    qatomic_set(&mv->idle_since_ns, 0);
}

/*
 * gdb attached or detached (gdbstub, main loop, BQL held). While it is
 * attached every vCPU runs on TCG: each leaves KVM at its next safe point,
 * so gdb's breakpoints, watchpoints and single steps are TCG's own
 * (cpu->breakpoints, checked as TCG translates and executes) and nothing
 * writes int3 into guest RAM. gdbstub stops the VM when gdb attaches, so
 * no guest instruction runs on KVM between attaching and the first stop
 * report. Detaching gives every vCPU back to its placement.
 */
void mixed_gdb_hold(bool attached)
{
    MixedState *s = mixed_state();
    CPUState *cpu;

    if (qatomic_read(&s->gdb_attached) == attached) {
        return;
    }
    qatomic_set(&s->gdb_attached, attached);
    info_report("mixed: gdb %s: %s", attached ? "attached" : "detached",
                attached ? "every vCPU runs on TCG until it detaches"
                         : "vCPUs return to their placement");
    CPU_FOREACH(cpu) {
        qemu_cpu_kick(cpu);
    }
}

typedef struct MixedForceRcu {
    Notifier notifier;
    CPUState *cpu;
} MixedForceRcu;

static void mixed_do_nothing(CPUState *cpu, run_on_cpu_data d)
{
}

static void mixed_force_rcu(Notifier *notify, void *data)
{
    CPUState *cpu = container_of(notify, MixedForceRcu, notifier)->cpu;

    /* TCG holds the RCU read lock while it runs TBs. */
    async_run_on_cpu(cpu, mixed_do_nothing, RUN_ON_CPU_NULL);
}

static void *mixed_vcpu_thread_fn(void *arg)
{
    CPUState *cpu = arg;
    AccelCPUState *mv = cpu->accel;
    MixedForceRcu force_rcu = { .notifier.notify = mixed_force_rcu, .cpu = cpu };
    int r;

    rcu_register_thread();
    rcu_add_force_rcu_notifier(&force_rcu.notifier);
    tcg_register_thread();
    mixedvm_sched_register_thread();   /* reads its placement through RCU */

    bql_lock();
    qemu_thread_get_self(cpu->thread);
    cpu->thread_id = qemu_get_thread_id();
    cpu->neg.can_do_io = true;
    current_cpu = cpu;

    kvm_init_vcpu(cpu, &error_fatal);
    mixed_x86_vcpu_init(cpu, &error_fatal);
    kvm_init_cpu_signals(cpu);
    if (cpu->kvm_vcpu_stats_fd >= 0) {
        char err[256];

        mv->kvm_stats = mixedvm_kvm_stats_open(cpu->kvm_vcpu_stats_fd, err,
                                               sizeof(err));
        if (!mv->kvm_stats) {
            warn_report_once("mixed: no KVM exit statistics: %s", err);
        }
    }
    /* env is authoritative until the first move; KVM is loaded then. */
    mv->state = MIXED_VCPU_ON_TCG;
    mv->since_ns = mixed_now_ns();
    mixed_pin_self(cpu, VCPU_ACCEL_TCG);

    cpu_thread_signal_created(cpu);
    qemu_guest_random_seed_thread_part2(cpu->random_seed);
    cpu->exit_request = 1;

    do {
        mixed_safe_point(cpu);
        if (cpu_can_run(cpu)) {
            if (mv->state == MIXED_VCPU_ON_KVM) {
                mixed_code_kvm_entering();
                r = kvm_cpu_exec(cpu);
                mixed_code_kvm_left();
            } else {
                /*
                 * Where KVM runs kernel code, TCG only delivers events for a
                 * vCPU that belongs on KVM: deliver, run nothing, return.
                 */
                if (mixed_state()->kvm_runs_kernel &&
                    mixed_vcpu_target(cpu) == VCPU_ACCEL_KVM &&
                    !mixed_vcpu_held_on_tcg(cpu)) {
                    qatomic_set(&cpu->exit_request, 1);
                }
                bql_unlock();
                r = tcg_cpu_exec(cpu);
                bql_lock();
                if (r == EXCP_ATOMIC) {
                    bql_unlock();
                    cpu_exec_step_atomic(cpu);
                    bql_lock();
                }
            }
            if (r == EXCP_DEBUG) {
                cpu_handle_guest_debug(cpu);
            }
        }
        qatomic_set_mb(&cpu->exit_request, 0);
        mixed_wait_io_event(cpu);
    } while (!cpu->unplug || cpu_can_run(cpu));

    mixedvm_kvm_stats_free(mv->kvm_stats);
    mv->kvm_stats = NULL;
    kvm_destroy_vcpu(cpu);
    cpu_thread_signal_destroyed(cpu);
    bql_unlock();
    mixedvm_sched_unregister_thread();
    rcu_remove_force_rcu_notifier(&force_rcu.notifier);
    rcu_unregister_thread();
    return NULL;
}

static void mixed_start_vcpu_thread(CPUState *cpu)
{
    char thread_name[VCPU_THREAD_NAME_SIZE];
    AccelCPUState *mv = g_new0(AccelCPUState, 1);

    mv->cpu = cpu;
    cpu->accel = mv;
    /* CF_PARALLEL always: KVM vCPUs run beside TCG ones. */
    tcg_cpu_init_cflags(cpu, mixed_state()->tcg_atomics);

    snprintf(thread_name, VCPU_THREAD_NAME_SIZE, "CPU %d/mixed",
             cpu->cpu_index);
    qemu_thread_create(cpu->thread, thread_name, mixed_vcpu_thread_fn, cpu,
                       QEMU_THREAD_JOINABLE);
}

/*
 * Both: cpu_exit() ends a TCG TB loop, SIG_IPI ends KVM_RUN. Before the
 * thread exists (realize queues TCG work, which kicks) there is nothing to
 * signal, and the thread starts with exit_request set anyway.
 */
static void mixed_kick_vcpu_thread(CPUState *cpu)
{
    cpu_exit(cpu);
    if (qatomic_read(&cpu->created)) {
        cpus_kick_thread(cpu);
    }
}

/* Like tcg_handle_interrupt(), without its BQL assertion: KVM paths call
 * cpu_interrupt() without the BQL (kvm_get_vcpu_events). */
static void mixed_handle_interrupt(CPUState *cpu, int mask)
{
    qatomic_or(&cpu->interrupt_request, mask);
    if (!qemu_cpu_is_self(cpu)) {
        qemu_cpu_kick(cpu);
    } else if (mixed_vcpu_running_on(cpu) == VCPU_ACCEL_TCG) {
        qatomic_set(&cpu->neg.icount_decr.u16.high, -1);
    }
}

static void mixed_cpu_reset_hold(CPUState *cpu)
{
    tcg_flush_jmp_cache(cpu);
    tlb_flush(cpu);
}

/*
 * After KVM's post-reset/post-init put, KVM and env agree. The vCPU is put on
 * TCG (env authoritative, vcpu_dirty set): a reset vCPU is in real mode,
 * which only TCG runs everywhere; the next safe point moves it if wanted.
 */
static void mixed_do_after_put(CPUState *cpu, run_on_cpu_data loaded)
{
    AccelCPUState *mv = cpu->accel;

    mixed_x86_read_tsc_offset(cpu);
    mixed_x86_note_mtrrs(cpu);      /* a reset or full put writes them */
    if (loaded.host_int) {
        mixed_x86_loaded(cpu);
    }
    if (mixed_vcpu_state_backend(mv->state) == VCPU_ACCEL_KVM) {
        /* KVM now holds the reset state, without any tripwire. */
        mixed_account(cpu, mixed_now_ns());
        mixed_vcpu_enter_state(cpu, MIXED_VCPU_ON_TCG);
    }
    cpu->vcpu_dirty = true;
}

static void mixed_synchronize_post_reset(CPUState *cpu)
{
    kvm_cpu_synchronize_post_reset(cpu);
    run_on_cpu(cpu, mixed_do_after_put, RUN_ON_CPU_HOST_INT(false));
}

static void mixed_synchronize_post_init(CPUState *cpu)
{
    /* Also at start-up; a load runs in one of these two states. */
    bool loaded = runstate_check(RUN_STATE_INMIGRATE) ||
                  runstate_check(RUN_STATE_RESTORE_VM);

    if (loaded && cpu == first_cpu) {
        mixed_migration_loaded();
    }
    kvm_cpu_synchronize_post_init(cpu);
    run_on_cpu(cpu, mixed_do_after_put, RUN_ON_CPU_HOST_INT(loaded));
}

static bool mixed_supports_guest_debug(void)
{
    return true;
}

static bool mixed_cpus_are_resettable(void)
{
    return true;
}

static void mixed_accel_ops_class_init(ObjectClass *oc, void *data)
{
    AccelOpsClass *ops = ACCEL_OPS_CLASS(oc);

    ops->create_vcpu_thread = mixed_start_vcpu_thread;
    ops->kick_vcpu_thread = mixed_kick_vcpu_thread;
    ops->handle_interrupt = mixed_handle_interrupt;
    ops->cpu_reset_hold = mixed_cpu_reset_hold;
    ops->cpus_are_resettable = mixed_cpus_are_resettable;
    /*
     * TCG mode keeps vcpu_dirty set, so KVM's synchronize_state is a no-op
     * there and a real get on KVM.
     */
    ops->synchronize_state = kvm_cpu_synchronize_state;
    ops->synchronize_post_reset = mixed_synchronize_post_reset;
    ops->synchronize_post_init = mixed_synchronize_post_init;
    ops->synchronize_pre_loadvm = kvm_cpu_synchronize_pre_loadvm;
    /* gdb: TCG's breakpoints, every vCPU on TCG meanwhile (mixed_gdb_hold). */
    ops->supports_guest_debug = mixed_supports_guest_debug;
    ops->insert_breakpoint = tcg_insert_breakpoint;
    ops->remove_breakpoint = tcg_remove_breakpoint;
    ops->remove_all_breakpoints = tcg_remove_all_breakpoints;
}

static const TypeInfo mixed_accel_ops_type = {
    .name = ACCEL_OPS_NAME("mixed"),
    .parent = TYPE_ACCEL_OPS,
    .class_init = mixed_accel_ops_class_init,
    .abstract = true,
};

static void mixed_accel_ops_register_types(void)
{
    type_register_static(&mixed_accel_ops_type);
}
type_init(mixed_accel_ops_register_types);
