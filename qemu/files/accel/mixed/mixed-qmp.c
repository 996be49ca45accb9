/*
 * mixed accelerator: QMP and HMP commands
 *
 * query-vcpu-accel, vcpu-set-accel; HMP info vcpu-accel, vcpu_set_accel.
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or later.
 * See the COPYING file in the top-level directory.
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qapi/qapi-commands-machine-target.h"
#include "qobject/qdict.h"
#include "qapi/clone-visitor.h"
#include "qapi/qapi-visit-machine-target.h"
#include "monitor/hmp.h"
#include "monitor/monitor.h"
#include "system/runstate.h"
#include "hw/core/cpu.h"
#include "hw/boards.h"
#include "qemu/main-loop.h"
#include "mixed-internal.h"

static bool mixed_check_enabled(Error **errp)
{
    if (!mixed_enabled()) {
        error_setg(errp, "this command needs -accel mixed");
        return false;
    }
    return true;
}

/* Every statistic KVM keeps for the vCPU (query-vcpu-accel kvm-stats=true). */
static void mixed_qmp_kvm_stats(AccelCPUState *mv, VcpuAccelInfo *v)
{
    size_t n = mixedvm_kvm_stats_count(mv->kvm_stats);
    g_autofree MixedvmKvmStat *stats = g_new0(MixedvmKvmStat, n);
    VcpuKvmStatList **tail = &v->kvm_stats;
    int got = mixedvm_kvm_stats_read_all(mv->kvm_stats, stats, n);
    int i;

    for (i = 0; i < got; i++) {
        VcpuKvmStat *st = g_new0(VcpuKvmStat, 1);

        st->name = g_strdup(stats[i].name);
        st->value = stats[i].value;
        QAPI_LIST_APPEND(tail, st);
    }
    v->has_kvm_stats = got >= 0;
}

/* The vCPU's moves off KVM by cause; interrupts by vector, timer first. */
static VcpuKvmLeaveList *mixed_qmp_kvm_leaves(AccelCPUState *mv)
{
    VcpuKvmLeaveList *list = NULL, **tail = &list;
    int why, vector;

    for (why = 0; why < MIXED_LEAVE__MAX; why++) {
        bool by_vector = why == MIXED_LEAVE_TIMER || why == MIXED_LEAVE_INTERRUPT;

        for (vector = 0; vector < (by_vector ? 256 : 1); vector++) {
            uint64_t n = by_vector ?
                mv->leave_vectors[why == MIXED_LEAVE_TIMER ? 0 : 1][vector] :
                mv->leaves[why];
            VcpuKvmLeave *l;

            if (!n) {
                continue;
            }
            l = g_new0(VcpuKvmLeave, 1);
            l->cause = g_strdup(mixed_kvm_leave_names[why]);
            l->has_vector = by_vector;
            l->vector = vector;
            l->count = n;
            QAPI_LIST_APPEND(tail, l);
        }
    }
    return list;
}

MixedAccelInfo *qmp_query_vcpu_accel(bool has_kvm_stats, bool kvm_stats,
                                     Error **errp)
{
    MixedState *s;
    MixedAccelInfo *info;
    VcpuAccelInfoList **tail;
    CPUState *cpu;
    int64_t now = mixed_now_ns();

    if (!mixed_check_enabled(errp)) {
        return NULL;
    }
    s = mixed_state();
    info = g_new0(MixedAccelInfo, 1);
    info->kvm_runs_kernel = s->kvm_runs_kernel;
    info->gdb_attached = qatomic_read(&s->gdb_attached);
    info->kvm_probe = g_strdup(s->kvm_probe);
    info->user_cpuid = g_strdup(s->kvm_runs_kernel ? "intercepted" :
                                s->user_cpuid_trap ? "trap" : "host");
    info->policy = g_strdup(mixedvm_sched_policy(s->sched));
    info->loads = mixed_loads;
    info->tcg_cpu = g_strdup(mixed_x86_tcg_cpu_option(first_cpu));
    tail = &info->vcpus;
    CPU_FOREACH(cpu) {
        AccelCPUState *mv = cpu->accel;
        VcpuAccelInfo *v = g_new0(VcpuAccelInfo, 1);
        MixedVcpuState state = qatomic_load_acquire(&mv->state);

        v->cpu_index = cpu->cpu_index;
        v->accel = mixed_vcpu_target(cpu);
        v->running_on = mixed_vcpu_state_backend(state);
        v->thread_id = cpu->thread_id;
        v->moves = mv->moves;
        v->kernel_entries = mv->kernel_entries;
        v->tcg_user_returns = mv->tcg_user_returns;
        v->kvm_failed = state == MIXED_VCPU_TCG_ONLY;
        v->held = mixedvm_sched_held(s->sched, cpu->cpu_index);
        v->code_syncs = mv->code_syncs;
        v->code_sync_ns = mv->code_sync_ns;
        v->code_pages_invalidated = mv->code_pages_invalidated;
        v->tcg_insns = qatomic_read(&cpu->neg.mixed_tcg_insns);
        v->kvm_tlb_flushes = qatomic_read(&mv->kvm_tlb_flushes);
        v->shadow_zaps = qatomic_read(&mv->shadow_zaps);
        v->kvm_leaves = mixed_qmp_kvm_leaves(mv);
        v->user_gets = mv->user_gets;
        if (s->user_get_mode == MIXED_USER_GET_VERIFY) {
            VcpuUserGetChecks *c = g_new0(VcpuUserGetChecks, 1);

            c->user_entries = mv->user_get_checks[1];
            c->user_entry_mismatches = mv->user_get_mismatches[1];
            c->kernel_entries = mv->user_get_checks[0];
            c->kernel_entry_mismatches = mv->user_get_mismatches[0];
            c->first_user_entry_mismatch =
                g_strdup(mv->user_get_first_mismatch[1]);
            c->first_kernel_entry_mismatch =
                g_strdup(mv->user_get_first_mismatch[0]);
            v->user_get_checks = c;
        }
        mixed_vcpu_times(cpu, now, &v->kvm_ns, &v->tcg_ns, &v->tcg_user_ns,
                         &v->idle_ns);
        v->tcg_share = v->kvm_ns + v->tcg_ns > 0 ?
                       (double)v->tcg_ns / (v->kvm_ns + v->tcg_ns) : 0;
        if (mv->has_last_move) {
            v->last_move = QAPI_CLONE(VcpuAccelMove, &mv->last_move);
        }
        if (mv->kvm_stats) {
            uint64_t exits[MIXEDVM_KVM_EXIT_STATS];

            if (mixedvm_kvm_stats_read(mv->kvm_stats, exits)) {
                VcpuKvmExitsList **etail = &v->kvm_exits;
                int k;

                v->has_kvm_exits = true;
                for (k = 0; k < MIXEDVM_KVM_EXIT_STATS; k++) {
                    VcpuKvmExits *e = g_new0(VcpuKvmExits, 1);

                    e->reason = g_strdup(mixedvm_kvm_exit_stat_names[k]);
                    e->count = exits[k];
                    QAPI_LIST_APPEND(etail, e);
                }
            }
            if (has_kvm_stats && kvm_stats) {
                mixed_qmp_kvm_stats(mv, v);
            }
        }
        QAPI_LIST_APPEND(tail, v);
    }
    return info;
}

/*
 * Runs on the vCPU's thread from process_queued_cpu_work(): BQL held, no
 * backend executing, so this is a safe point (see mixed_safe_point).
 */
static void mixed_do_settle(CPUState *cpu, run_on_cpu_data data)
{
    mixed_safe_point(cpu);
}

static CPUState *mixed_lookup_cpu(int64_t cpu_index, Error **errp)
{
    CPUState *cpu = cpu_index >= 0 && cpu_index < INT_MAX ?
                    qemu_get_cpu(cpu_index) : NULL;

    if (!cpu) {
        error_setg(errp, "vCPU %" PRId64 " does not exist (the guest has %u "
                   "vCPUs, 0-%u)", cpu_index, current_machine->smp.cpus,
                   current_machine->smp.cpus - 1);
    }
    return cpu;
}

VcpuSetAccelResult *qmp_vcpu_set_accel(int64_t cpu_index, VcpuAccel accel,
                                       bool has_wait, bool wait,
                                       bool has_hold, bool hold, Error **errp)
{
    VcpuSetAccelResult *r;
    CPUState *cpu;

    if (!mixed_check_enabled(errp)) {
        return NULL;
    }
    cpu = mixed_lookup_cpu(cpu_index, errp);
    if (!cpu) {
        return NULL;
    }
    if (!mixed_vcpu_may_place(cpu, accel, errp)) {
        return NULL;
    }
    if (!runstate_is_running()) {
        error_setg(errp, "the VM is not running (%s): vCPUs move only while "
                   "the guest runs", RunState_str(runstate_get()));
        return NULL;
    }

    if (!mixed_vcpu_set_target(cpu, accel, VCPU_ACCEL_MOVE_REASON_QMP, NULL,
                               errp)) {
        return NULL;
    }
    if (has_hold) {
        char err[256];

        if (!mixedvm_sched_set_hold(mixed_state()->sched, cpu->cpu_index, hold,
                                    err, sizeof(err))) {
            error_setg(errp, "mixed: cannot hold vCPU %" PRId64 ": %s",
                       cpu_index, err);
            return NULL;
        }
    }
    if (!has_wait || wait) {
        run_on_cpu(cpu, mixed_do_settle, RUN_ON_CPU_NULL);
    }

    r = g_new0(VcpuSetAccelResult, 1);
    r->accel = accel;
    r->running_on = mixed_vcpu_running_on(cpu);
    r->status = r->running_on == accel ? VCPU_SET_ACCEL_STATUS_DONE
                                       : VCPU_SET_ACCEL_STATUS_SCHEDULED;
    return r;
}

void hmp_info_vcpu_accel(Monitor *mon, const QDict *qdict)
{
    Error *err = NULL;
    g_autoptr(MixedAccelInfo) info = qmp_query_vcpu_accel(false, false, &err);
    VcpuAccelInfoList *l;

    if (hmp_handle_error(mon, err)) {
        return;
    }
    monitor_printf(mon, "KVM: %s\nuser-mode CPUID: %s\npolicy: %s\n",
                   info->kvm_probe, info->user_cpuid, info->policy);
    monitor_printf(mon, "vCPU  accel  running  thread     moves  kernel-entries"
                   "     kvm-ms     tcg-ms  tcg-user-%%  last-move-us\n");
    for (l = info->vcpus; l; l = l->next) {
        VcpuAccelInfo *v = l->value;

        monitor_printf(mon, "%4" PRId64 "  %-5s  %-7s  %-9" PRId64 "  %5" PRIu64
                       "  %14" PRIu64 "  %9.1f  %9.1f  %10.1f  %12.1f%s\n",
                       v->cpu_index, VcpuAccel_str(v->accel),
                       VcpuAccel_str(v->running_on), v->thread_id, v->moves,
                       v->kernel_entries, v->kvm_ns / 1e6, v->tcg_ns / 1e6,
                       v->tcg_ns ? 100.0 * v->tcg_user_ns / v->tcg_ns : 0.0,
                       v->last_move ? v->last_move->latency_ns / 1e3 : 0.0,
                       v->kvm_failed ? "  (KVM failed: TCG only)" : "");
        if (v->kvm_leaves) {
            VcpuKvmLeaveList *k;

            monitor_printf(mon, "      left KVM for:");
            for (k = v->kvm_leaves; k; k = k->next) {
                VcpuKvmLeave *l = k->value;

                if (l->has_vector) {
                    monitor_printf(mon, " %s(0x%02x) %" PRIu64, l->cause,
                                   l->vector, l->count);
                } else {
                    monitor_printf(mon, " %s %" PRIu64, l->cause, l->count);
                }
            }
            monitor_printf(mon, "\n");
        }
        if (v->user_gets) {
            monitor_printf(mon, "      user-mode gets: %" PRIu64 "\n",
                           v->user_gets);
        }
        if (v->user_get_checks) {
            VcpuUserGetChecks *c = v->user_get_checks;

            monitor_printf(mon, "      x-user-get=verify: entered in user mode "
                           "%" PRIu64 " checked, %" PRIu64 " differed%s%s; in "
                           "kernel mode %" PRIu64 " checked, %" PRIu64
                           " differed\n", c->user_entries,
                           c->user_entry_mismatches,
                           c->first_user_entry_mismatch ? ", first: " : "",
                           c->first_user_entry_mismatch ?: "",
                           c->kernel_entries, c->kernel_entry_mismatches);
        }
    }
}

void hmp_vcpu_set_accel(Monitor *mon, const QDict *qdict)
{
    int64_t cpu_index = qdict_get_int(qdict, "cpu");
    const char *name = qdict_get_str(qdict, "accel");
    Error *err = NULL;
    g_autoptr(VcpuSetAccelResult) r = NULL;
    int accel = qapi_enum_parse(&VcpuAccel_lookup, name, -1, &err);

    if (accel < 0 && !err) {
        error_setg(&err, "unknown accel '%s' (kvm or tcg)", name);
    }
    if (hmp_handle_error(mon, err)) {
        return;
    }
    r = qmp_vcpu_set_accel(cpu_index, accel, false, false, false, false, &err);
    if (hmp_handle_error(mon, err)) {
        return;
    }
    monitor_printf(mon, "vCPU %" PRId64 ": %s (running on %s)\n", cpu_index,
                   r->status == VCPU_SET_ACCEL_STATUS_DONE ? "moved" :
                   "move scheduled", VcpuAccel_str(r->running_on));
}

MixedPolicyState *qmp_query_mixed_policy(Error **errp)
{
    MixedState *s;
    MixedPolicyState *st;
    MixedPolicyInfoList **tail;
    const MixedvmPolicyInfo *infos;
    size_t i, n;
    char params[512];

    if (!mixed_check_enabled(errp)) {
        return NULL;
    }
    s = mixed_state();
    st = g_new0(MixedPolicyState, 1);
    st->policy = g_strdup(mixedvm_sched_policy(s->sched));
    mixedvm_sched_params(s->sched, params, sizeof(params));
    st->params = g_strdup(params);
    st->period_ms = s->period_ms;
    tail = &st->available;
    n = mixedvm_sched_policies(&infos);
    for (i = 0; i < n; i++) {
        MixedPolicyInfo *info = g_new0(MixedPolicyInfo, 1);

        info->name = g_strdup(infos[i].name);
        info->summary = g_strdup(infos[i].summary);
        QAPI_LIST_APPEND(tail, info);
    }
    return st;
}

void qmp_mixed_set_policy(const char *policy, const char *params, Error **errp)
{
    char err[256];

    if (!mixed_check_enabled(errp)) {
        return;
    }
    if (!mixedvm_sched_set_policy(mixed_state()->sched, policy, params, err,
                                  sizeof(err))) {
        error_setg(errp, "%s", err);
    }
}

void qmp_x_vcpu_fail_kvm(int64_t cpu_index, Error **errp)
{
    CPUState *cpu;

    if (!mixed_check_enabled(errp)) {
        return;
    }
    cpu = mixed_lookup_cpu(cpu_index, errp);
    if (!cpu) {
        return;
    }
    if (qatomic_load_acquire(&cpu->accel->state) == MIXED_VCPU_TCG_ONLY) {
        error_setg(errp, "KVM already failed vCPU %" PRId64 ": it runs on "
                   "TCG for good", cpu_index);
        return;
    }
    /* Read at the vCPU's next TCG -> KVM handover, under the BQL as here. */
    cpu->accel->x_fail_next_put = true;
    qemu_cpu_kick(cpu);
}
