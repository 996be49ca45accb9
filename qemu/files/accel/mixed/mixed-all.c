/*
 * mixed accelerator: one guest, some vCPUs on KVM and the others on MTTCG
 *
 * The accelerator object is a KVMState (QOM child of kvm-accel), because
 * KVM's code casts current_accel() to KVMState in many places. Its
 * init_machine runs KVM's, with the in-kernel irqchip off (one interrupt
 * model for both backends: QEMU's userspace LAPIC, IOAPIC, PIC and PIT), and
 * then sets TCG up, so that both kvm_enabled() and tcg_enabled() are true.
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or later.
 * See the COPYING file in the top-level directory.
 */

#include "qemu/osdep.h"
#include <sched.h>
#include "qemu/error-report.h"
#include "qemu/cutils.h"
#include "qemu/memalign.h"
#include "qapi/visitor.h"
#include "qapi/qapi-events-machine-target.h"
#include "qapi/error.h"
#include "qom/object.h"
#include "hw/boards.h"
#include "hw/i386/x86.h"
#include "system/kvm.h"
#include "system/tcg.h"
#include "system/replay.h"
#include "system/cpu-timers.h"
#include "mixed-internal.h"
#include "../tcg/internal-common.h"
#include "mixedvm/kvm_probe.h"
#include "mixedvm/cpu_list.h"
#include "mixedvm/pinning.h"
#include "trace.h"

bool mixed_allowed;
MixedState *mixed_state_ptr;

/*
 * Does this host's KVM translate guest addresses with a shadow MMU (no EPT
 * or NPT)? Then KVM relies on trapping guest page-table writes, which TCG
 * vCPUs make behind its back.
 */
static bool mixed_host_has_shadow_mmu(void)
{
    static const char *const tdp_params[] = {
        "/sys/module/kvm_intel/parameters/ept",
        "/sys/module/kvm_amd/parameters/npt",
    };
    int i;

    for (i = 0; i < ARRAY_SIZE(tdp_params); i++) {
        g_autofree char *value = NULL;

        if (g_file_get_contents(tdp_params[i], &value, NULL, NULL) &&
            (value[0] == 'Y' || value[0] == '1')) {
            return false;
        }
    }
    return true;
}

static bool mixed_check_options(MachineState *ms, MixedState *s, Error **errp)
{
    KVMState *kvm = &s->kvm;
    char err[256];

    if (kvm->kernel_irqchip_allowed) {
        error_setg(errp, "mixed: kernel-irqchip=on|split is not supported: "
                   "TCG vCPUs need QEMU's userspace APIC, so the irqchip is "
                   "always in userspace (omit kernel-irqchip)");
        return false;
    }
    if (icount_enabled()) {
        error_setg(errp, "mixed: -icount is not supported: instruction "
                   "counting cannot cover vCPUs that run on KVM");
        return false;
    }
    if (replay_mode != REPLAY_MODE_NONE) {
        error_setg(errp, "mixed: record/replay is not supported");
        return false;
    }
    if (object_dynamic_cast(OBJECT(ms), TYPE_X86_MACHINE)) {
        X86MachineState *x86ms = X86_MACHINE(ms);

        if (x86ms->smm == ON_OFF_AUTO_ON) {
            error_setg(errp, "mixed: SMM is not supported (use -machine smm=off)");
            return false;
        }
        /* TCG and KVM would each set up an SMM address space per CPU. */
        x86ms->smm = ON_OFF_AUTO_OFF;
    }
    if (s->tcg_cpus && s->kvm_cpus) {
        error_setg(errp, "mixed: give tcg-cpus or kvm-cpus, not both");
        return false;
    }
    if (!mixedvm_pin_mode_parse(s->pin, &s->pin_mode, err, sizeof(err))) {
        error_setg(errp, "mixed: pin=%s: %s", s->pin, err);
        return false;
    }
    if (s->period_ms < 10 || s->period_ms > 10000) {
        error_setg(errp, "mixed: period-ms=%u is outside [10, 10000]",
                   s->period_ms);
        return false;
    }
    return true;
}

/* The initial backend of each vCPU, from tcg-cpus= / kvm-cpus= / the host. */
static bool mixed_initial_placement(MachineState *ms, MixedState *s,
                                    bool *on_kvm, Error **errp)
{
    unsigned n = ms->smp.max_cpus;
    g_autofree bool *listed = g_new0(bool, n);
    char err[256];
    const char *list = s->tcg_cpus ? s->tcg_cpus : s->kvm_cpus;
    unsigned i;

    if (!list) {
        /*
         * Where KVM runs guest kernel code, KVM is the natural home of every
         * vCPU; where it does not (PVM), the guest must boot on TCG.
         */
        for (i = 0; i < n; i++) {
            on_kvm[i] = s->kvm_runs_kernel;
        }
        return true;
    }
    if (!mixedvm_parse_cpu_list(list, listed, n, err, sizeof(err))) {
        error_setg(errp, "mixed: %s=%s: %s", s->tcg_cpus ? "tcg-cpus" : "kvm-cpus",
                   list, err);
        return false;
    }
    for (i = 0; i < n; i++) {
        on_kvm[i] = s->tcg_cpus ? !listed[i] : listed[i];
    }
    return true;
}

/* Each vCPU's counters now, and where the policy had it placed. */
static void mixed_sample_vcpus(int64_t now, MixedvmVcpuSample *samples,
                               MixedvmBackend *placed)
{
    CPUState *cpu;

    CPU_FOREACH(cpu) {
        AccelCPUState *mv = cpu->accel;
        MixedvmVcpuSample *smp = &samples[cpu->cpu_index];
        VcpuAccel current = mixed_vcpu_running_on(cpu);
        int64_t kvm_ns, tcg_ns, tcg_user_ns, idle_ns;

        mixed_vcpu_times(cpu, now, &kvm_ns, &tcg_ns, &tcg_user_ns, &idle_ns);
        placed[cpu->cpu_index] = mixed_vcpu_target(cpu) == VCPU_ACCEL_KVM ?
                                 MIXEDVM_BACKEND_KVM : MIXEDVM_BACKEND_TCG;
        smp->now_ns = now;
        smp->kvm_ns = kvm_ns;
        smp->tcg_ns = tcg_ns;
        smp->tcg_user_ns = tcg_user_ns;
        smp->idle_ns = idle_ns;
        smp->tcg_user_returns = qatomic_read(&mv->tcg_user_returns);
        smp->tcg_insns = qatomic_read(&cpu->neg.mixed_tcg_insns);
        smp->moves = mv->moves;
        smp->move_ns = mv->move_ns;
        smp->kernel_entries = mv->kernel_entries;
        smp->timer_leaves = mv->leaves[MIXED_LEAVE_TIMER];
        smp->event_leaves = mv->leaves[MIXED_LEAVE_INTERRUPT] +
                            mv->leaves[MIXED_LEAVE_EXTINT] +
                            mv->leaves[MIXED_LEAVE_NMI] +
                            mv->leaves[MIXED_LEAVE_OTHER_EVENT];
        smp->shadow_zaps = qatomic_read(&mv->shadow_zaps);
        smp->kvm_tlb_flushes = qatomic_read(&mv->kvm_tlb_flushes);
        if (mv->kvm_stats) {
            uint64_t exits[MIXEDVM_KVM_EXIT_STATS];

            if (mixedvm_kvm_stats_read(mv->kvm_stats, exits)) {
                smp->kvm_exits = exits[0];
            }
        }
        smp->running = current == VCPU_ACCEL_KVM ? MIXEDVM_BACKEND_KVM
                                                 : MIXEDVM_BACKEND_TCG;
    }
}

/* One line per vCPU per period (sched/trace_record.h): mixedvm-sim replays them. */
static void mixed_trace_period(MixedState *s, const MixedvmVcpuSample *samples,
                               const MixedvmBackend *placed)
{
    CPUState *cpu;

    CPU_FOREACH(cpu) {
        char line[512];

        if (mixedvm_trace_line(&samples[cpu->cpu_index], cpu->cpu_index,
                               placed[cpu->cpu_index], line, sizeof(line))) {
            fprintf(s->trace, "%s\n", line);
        }
    }
    fflush(s->trace);
}

/*
 * Every period (virtual time: nothing is decided while the VM is paused)
 * the policy sees each vCPU's counters and places the vCPUs; vCPUs whose
 * placement changed are told so (VCPU_ACCEL_CHANGED, reason "policy") and
 * kicked to their safe point. Main loop, BQL held.
 */
static void mixed_policy_tick(void *opaque)
{
    MixedState *s = opaque;
    unsigned n = current_machine->smp.max_cpus;
    g_autofree MixedvmVcpuSample *samples = g_new0(MixedvmVcpuSample, n);
    g_autofree MixedvmBackend *before = g_new0(MixedvmBackend, n);
    g_autofree MixedvmBackend *placed = g_new0(MixedvmBackend, n);
    char why[256];
    CPUState *cpu;

    mixed_sample_vcpus(mixed_now_ns(), samples, before);
    if (s->trace) {
        mixed_trace_period(s, samples, before);
    }
    if (mixedvm_sched_decide(s->sched, samples, n, placed)) {
        CPU_FOREACH(cpu) {
            if (placed[cpu->cpu_index] != before[cpu->cpu_index]) {
                mixed_vcpu_placed(cpu, placed[cpu->cpu_index] ==
                                  MIXEDVM_BACKEND_KVM ? VCPU_ACCEL_KVM :
                                  VCPU_ACCEL_TCG,
                                  VCPU_ACCEL_MOVE_REASON_POLICY, NULL);
            }
        }
    }
    if (mixedvm_sched_take_ejection(s->sched, why, sizeof(why))) {
        warn_report("mixed: %s", why);
    }
    timer_mod(s->policy_timer,
              qemu_clock_get_ms(QEMU_CLOCK_VIRTUAL) + s->period_ms);
}

static bool mixed_start_scheduler(MachineState *ms, MixedState *s,
                                  const bool *on_kvm, Error **errp)
{
    unsigned i, n = ms->smp.max_cpus;
    g_autofree MixedvmBackend *initial = g_new(MixedvmBackend, n);
    char err[256];

    for (i = 0; i < n; i++) {
        initial[i] = on_kvm[i] ? MIXEDVM_BACKEND_KVM : MIXEDVM_BACKEND_TCG;
    }
    s->sched = mixedvm_sched_new(s->policy, s->policy_params, n, initial,
                                 s->kvm_runs_kernel, err, sizeof(err));
    if (!s->sched) {
        error_setg(errp, "mixed: %s", err);
        return false;
    }
    mixedvm_sched_set_kvm_user_ips(s->sched, s->kvm_user_ips);
    if (s->trace_file) {
        s->trace = fopen(s->trace_file, "w");
        if (!s->trace) {
            error_setg_errno(errp, errno, "mixed: cannot write trace-file %s",
                             s->trace_file);
            return false;
        }
        char header[512];

        if (!mixedvm_trace_header(header, sizeof(header))) {
            error_setg(errp, "mixed: cannot format the trace header");
            return false;
        }
        fprintf(s->trace, "%s\n", header);
    }
    if (s->pin_mode != MIXEDVM_PIN_OFF) {
        s->pinner = mixedvm_pinner_new(s->pin_mode, NULL, n, err, sizeof(err));
        if (!s->pinner) {
            error_setg(errp, "mixed: pin=%s: %s", s->pin, err);
            return false;
        }
    }
    /* The main loop reads placements too (QMP, HMP, this timer). */
    mixedvm_sched_register_thread();
    s->policy_timer = timer_new_ms(QEMU_CLOCK_VIRTUAL, mixed_policy_tick, s);
    timer_mod(s->policy_timer,
              qemu_clock_get_ms(QEMU_CLOCK_VIRTUAL) + s->period_ms);
    return true;
}

/*
 * More vCPUs than host CPUs: a vCPU that spin-waits in guest user mode on KVM
 * (an OpenMP barrier, a spinlock) keeps a host CPU that the vCPU it waits for
 * may need, and nothing on PVM interrupts it; the guest cannot see that its
 * vCPUs share CPUs. Said once at start, because the figures are otherwise not
 * comparable (docs/mixed.md, "Choosing -smp").
 */
static void mixed_warn_overcommit(MachineState *ms)
{
    cpu_set_t allowed;
    unsigned cpus;

    /* The CPUs this process may run on: taskset and cgroups both narrow it */
    if (sched_getaffinity(0, sizeof(allowed), &allowed)) {
        return;
    }
    cpus = CPU_COUNT(&allowed);
    if (ms->smp.cpus > cpus) {
        warn_report("mixed: %u vCPUs on %u host CPU%s: overcommitted. A vCPU that "
                    "spin-waits on KVM holds a CPU its siblings need, and the guest "
                    "cannot see it: NPB CG took about 10x longer under kvm-only with "
                    "-smp 4 than with -smp 2 on a 2-CPU PVM host (docs/mixed.md, "
                    "\"Choosing -smp\")", ms->smp.cpus, cpus, cpus == 1 ? "" : "s");
    }
}

static int mixed_init_machine(MachineState *ms)
{
    MixedState *s = MIXED_STATE(current_accel());
    AccelClass *kvm_ac = ACCEL_CLASS(object_class_by_name(TYPE_KVM_ACCEL));
    const char *dev = s->kvm.device ? s->kvm.device : "/dev/kvm";
    MixedvmKvmProbe probe;
    g_autofree bool *on_kvm = NULL;
    Error *err = NULL;
    char perr[256];
    int ret;

    if (!mixed_check_options(ms, s, &err)) {
        error_report_err(err);
        return -EINVAL;
    }
    if (!mixedvm_kvm_probe(dev, &probe, perr, sizeof(perr))) {
        error_report("mixed: KVM is needed for -accel mixed: %s", perr);
        return -ENODEV;
    }
    mixed_warn_overcommit(ms);
    s->kvm_runs_kernel = probe.kernel_code_native;
    s->kvm_user_ips = 2 * probe.cpl3_loops_per_sec;    /* dec ecx; jnz */
    s->kvm_shadow_mmu = mixed_host_has_shadow_mmu();
    pstrcpy(s->kvm_probe, sizeof(s->kvm_probe), probe.summary);
    trace_mixed_probe(s->kvm_runs_kernel, s->kvm_probe);
    if (!mixed_x86_choose_user_cpuid(s, &err)) {
        error_report_err(err);
        return -EINVAL;
    }
    if (s->user_get_mode == MIXED_USER_GET_ON && s->kvm_runs_kernel) {
        /* Nothing tells QEMU that such a run stayed in user mode. */
        error_report("mixed: x-user-get=on needs a host whose KVM leaves on "
                     "every guest kernel entry (PVM); this host's KVM runs "
                     "guest kernel code (x-user-get=verify checks the rule "
                     "here without relying on it)");
        return -EINVAL;
    }

    on_kvm = g_new0(bool, ms->smp.max_cpus);
    if (!mixed_initial_placement(ms, s, on_kvm, &err)) {
        error_report_err(err);
        return -EINVAL;
    }
    mixed_state_ptr = s;
    if (!mixed_start_scheduler(ms, s, on_kvm, &err)) {
        error_report_err(err);
        return -EINVAL;
    }

    ret = kvm_ac->init_machine(ms);
    if (ret < 0) {
        return ret;
    }
    /* Keep the last memslot id for the shadow-MMU zap (mixed-x86.c). */
    s->kvm.nr_slots_max--;
    s->zap_slot = s->kvm.nr_slots_max;
    s->zap_page = qemu_memalign(qemu_real_host_page_size(),
                                qemu_real_host_page_size());
    qemu_mutex_init(&s->zap_lock);
    if (!mixed_code_check_host(s, &err)) {
        error_report_err(err);
        return -ENOSYS;
    }
    if (!kvm_check_extension(kvm_state, KVM_CAP_IMMEDIATE_EXIT)) {
        error_report("mixed: this host's KVM lacks KVM_CAP_IMMEDIATE_EXIT, "
                     "which mixed needs to kick vCPUs between backends");
        return -ENOSYS;
    }
    /*
     * Without its irqchip KVM fails x2APIC MSR accesses as invalid; with
     * KVM_MSR_EXIT_REASON_INVAL they exit to QEMU's APIC instead
     * (mixed_kvm_handle_msr). QEMU's MSR filter keeps its own reason.
     */
    s->kvm_apic_msr_exits =
        kvm_vm_check_extension(kvm_state, KVM_CAP_X86_USER_SPACE_MSR) &&
        kvm_vm_enable_cap(kvm_state, KVM_CAP_X86_USER_SPACE_MSR, 0,
                          KVM_MSR_EXIT_REASON_FILTER |
                          KVM_MSR_EXIT_REASON_INVAL) == 0;

    /*
     * MTTCG, always: KVM vCPUs run concurrently with TCG ones, so TCG code
     * must use host atomics (CF_PARALLEL) whatever the vCPU count.
     */
    tcg_accel_init_machine(true, 0, 0, ms->smp.max_cpus);
    mixed_allowed = true;
    mixed_migration_init(s);
    return 0;
}

/* The string options: each keeps a g_strdup'ed copy in MixedState. */
#define MIXED_STR_PROPERTY(field)                                            \
static char *mixed_get_##field(Object *obj, Error **errp)                   \
{                                                                            \
    return g_strdup(MIXED_STATE(obj)->field);                                \
}                                                                            \
static void mixed_set_##field(Object *obj, const char *value, Error **errp)  \
{                                                                            \
    MixedState *s = MIXED_STATE(obj);                                        \
                                                                             \
    g_free(s->field);                                                        \
    s->field = g_strdup(value);                                              \
}

MIXED_STR_PROPERTY(tcg_cpus)
MIXED_STR_PROPERTY(kvm_cpus)
MIXED_STR_PROPERTY(policy)
MIXED_STR_PROPERTY(policy_params)
MIXED_STR_PROPERTY(pin)
MIXED_STR_PROPERTY(trace_file)

static void mixed_get_period_ms(Object *obj, Visitor *v, const char *name,
                                void *opaque, Error **errp)
{
    uint32_t value = MIXED_STATE(obj)->period_ms;

    visit_type_uint32(v, name, &value, errp);
}

static void mixed_set_period_ms(Object *obj, Visitor *v, const char *name,
                                void *opaque, Error **errp)
{
    uint32_t value;

    if (visit_type_uint32(v, name, &value, errp)) {
        MIXED_STATE(obj)->period_ms = value;
    }
}

static char *mixed_get_user_cpuid(Object *obj, Error **errp)
{
    return g_strdup(MIXED_STATE(obj)->user_cpuid);
}

static void mixed_set_user_cpuid(Object *obj, const char *value, Error **errp)
{
    MixedState *s = MIXED_STATE(obj);

    if (strcmp(value, "auto") && strcmp(value, "trap") && strcmp(value, "host")) {
        error_setg(errp, "mixed: user-cpuid=%s: expected auto, trap or host",
                   value);
        return;
    }
    g_free(s->user_cpuid);
    s->user_cpuid = g_strdup(value);
}

static const char *const mixed_user_get_names[] = {
    [MIXED_USER_GET_OFF] = "off",
    [MIXED_USER_GET_ON] = "on",
    [MIXED_USER_GET_VERIFY] = "verify",
};

static char *mixed_get_user_get(Object *obj, Error **errp)
{
    return g_strdup(mixed_user_get_names[MIXED_STATE(obj)->user_get_mode]);
}

static void mixed_set_user_get(Object *obj, const char *value, Error **errp)
{
    MixedState *s = MIXED_STATE(obj);
    int i;

    for (i = 0; i < ARRAY_SIZE(mixed_user_get_names); i++) {
        if (!strcmp(value, mixed_user_get_names[i])) {
            s->user_get_mode = i;
            return;
        }
    }
    error_setg(errp, "mixed: x-user-get=%s: expected off, on or verify", value);
}

static void mixed_accel_instance_init(Object *obj)
{
    MixedState *s = MIXED_STATE(obj);

    /* kvm_accel_instance_init ran first; the irqchip is ours to choose. */
    s->kvm.kernel_irqchip_allowed = false;
    s->kvm.kernel_irqchip_required = false;
    s->kvm.kernel_irqchip_split = ON_OFF_AUTO_OFF;
    s->policy = g_strdup("static");
    s->period_ms = 100;
    s->pin = g_strdup("off");
    s->user_cpuid = g_strdup("auto");
    s->shadow_zap = true;
    s->code_sync = true;
    s->kvm_exclusive = true;
    s->tcg_atomics = true;
    s->tsc_sync = true;
    s->event_exit = true;
}

/* The coherence switches (x-...): on by default, off for negative controls. */
#define MIXED_SWITCH_PROPERTY(field)                                         \
static bool mixed_get_##field(Object *obj, Error **errp)                    \
{                                                                            \
    return MIXED_STATE(obj)->field;                                          \
}                                                                            \
static void mixed_set_##field(Object *obj, bool value, Error **errp)        \
{                                                                            \
    MIXED_STATE(obj)->field = value;                                         \
}

MIXED_SWITCH_PROPERTY(shadow_zap)
MIXED_SWITCH_PROPERTY(code_sync)
MIXED_SWITCH_PROPERTY(kvm_exclusive)
MIXED_SWITCH_PROPERTY(tcg_atomics)
MIXED_SWITCH_PROPERTY(tsc_sync)
MIXED_SWITCH_PROPERTY(event_exit)
MIXED_SWITCH_PROPERTY(lazy_put)
MIXED_SWITCH_PROPERTY(sync_regs)

static const struct {
    const char *name;
    bool (*get)(Object *, Error **);
    void (*set)(Object *, bool, Error **);
    const char *what;
} mixed_switches[] = {
    { "x-shadow-zap", mixed_get_shadow_zap, mixed_set_shadow_zap,
      "invalidate KVM's shadow MMU after guest TLB flushes on TCG" },
    { "x-code-sync", mixed_get_code_sync, mixed_set_code_sync,
      "invalidate TCG's translations of code KVM vCPUs wrote" },
    { "x-kvm-exclusive", mixed_get_kvm_exclusive, mixed_set_kvm_exclusive,
      "stop KVM vCPUs for TCG's exclusive sections (atomic steps, tb_flush)" },
    { "x-tcg-atomics", mixed_get_tcg_atomics, mixed_set_tcg_atomics,
      "translate LOCK-prefixed instructions to host atomics (CF_PARALLEL)" },
    { "x-tsc-sync", mixed_get_tsc_sync, mixed_set_tsc_sync,
      "TCG vCPUs read KVM's TSC timeline" },
    { "x-event-exit", mixed_get_event_exit, mixed_set_event_exit,
      "a pending interrupt takes a vCPU off KVM so that TCG delivers it" },
    { "x-lazy-put", mixed_get_lazy_put, mixed_set_lazy_put,
      "move-path candidate (off by default): a move into KVM writes only the "
      "state TCG changed since it left KVM" },
    { "x-sync-regs", mixed_get_sync_regs, mixed_set_sync_regs,
      "move-path candidate (off by default): registers, segments and events "
      "of a move out of KVM, and registers of a move into it, through "
      "kvm_run (KVM_CAP_SYNC_REGS) instead of ioctls" },
};

/* TCG's: every vCPU runs on TCG while gdb is attached (mixed_gdb_hold). */
static int mixed_gdbstub_sstep_flags(void)
{
    return SSTEP_ENABLE | SSTEP_NOIRQ | SSTEP_NOTIMER;
}

static void mixed_accel_class_init(ObjectClass *oc, void *data)
{
    AccelClass *ac = ACCEL_CLASS(oc);
    int i;

    ac->name = "mixed";
    ac->init_machine = mixed_init_machine;
    ac->allowed = &kvm_allowed;
    /* Every vCPU has a TCG context for its whole life. */
    ac->cpu_common_realize = tcg_exec_realizefn;
    ac->cpu_common_unrealize = tcg_exec_unrealizefn;
    ac->gdbstub_supported_sstep_flags = mixed_gdbstub_sstep_flags;

    object_class_property_add_str(oc, "tcg-cpus", mixed_get_tcg_cpus,
                                  mixed_set_tcg_cpus);
    object_class_property_set_description(oc, "tcg-cpus",
        "vCPUs that start on TCG, e.g. 0-1,3 (the others start on KVM)");
    object_class_property_add_str(oc, "kvm-cpus", mixed_get_kvm_cpus,
                                  mixed_set_kvm_cpus);
    object_class_property_set_description(oc, "kvm-cpus",
        "vCPUs that start on KVM, e.g. 2-3 (the others start on TCG)");
    object_class_property_add_str(oc, "policy", mixed_get_policy,
                                  mixed_set_policy);
    object_class_property_set_description(oc, "policy",
        "placement policy: static, kvm-only, tcg-only, hot-tcg, sample "
        "(docs/mixed.md)");
    object_class_property_add_str(oc, "policy-params", mixed_get_policy_params,
                                  mixed_set_policy_params);
    object_class_property_set_description(oc, "policy-params",
        "the policy's parameters, key=value:key=value");
    object_class_property_add_str(oc, "pin", mixed_get_pin, mixed_set_pin);
    object_class_property_set_description(oc, "pin",
        "pin vCPU threads: off, compact (vCPU i on host thread i), split "
        "(KVM and TCG vCPUs on different cores, re-pinned on moves)");
    object_class_property_add_str(oc, "user-cpuid", mixed_get_user_cpuid,
                                  mixed_set_user_cpuid);
    object_class_property_set_description(oc, "user-cpuid",
        "where KVM runs guest user code natively (PVM): trap (CPUID faults "
        "into KVM, which answers from the guest's CPU model), host (both "
        "backends show guest user code the host's CPUID), or auto (trap "
        "where the host can fault CPUID, else host)");
    object_class_property_add_str(oc, "x-user-get", mixed_get_user_get,
                                  mixed_set_user_get);
    object_class_property_set_description(oc, "x-user-get",
        "move-path candidate (off by default): on a host whose KVM leaves on "
        "every guest kernel entry (PVM), a move off KVM after a run in guest "
        "user mode reads only what user mode can change (registers, "
        "segments, extended state, events); verify reads everything as well "
        "and counts differences, on any host");
    object_class_property_add_str(oc, "trace-file", mixed_get_trace_file,
                                  mixed_set_trace_file);
    object_class_property_set_description(oc, "trace-file",
        "record per-vCPU telemetry every period to this CSV file "
        "(replay it with tools/mixedvm-sim)");
    object_class_property_add(oc, "period-ms", "uint32", mixed_get_period_ms,
                              mixed_set_period_ms, NULL, NULL);
    object_class_property_set_description(oc, "period-ms",
        "how often the policy decides, in ms of virtual time (default 100)");
    for (i = 0; i < ARRAY_SIZE(mixed_switches); i++) {
        g_autofree char *desc = g_strdup_printf(
            "debug: %s (default on; off breaks guests and exists only for "
            "the negative-control tests, docs/coherence.md)",
            mixed_switches[i].what);

        object_class_property_add_bool(oc, mixed_switches[i].name,
                                       mixed_switches[i].get,
                                       mixed_switches[i].set);
        object_class_property_set_description(oc, mixed_switches[i].name,
                                              desc);
    }
}

static const TypeInfo mixed_accel_type = {
    .name = TYPE_MIXED_ACCEL,
    .parent = TYPE_KVM_ACCEL,
    .instance_init = mixed_accel_instance_init,
    .class_init = mixed_accel_class_init,
    .instance_size = sizeof(MixedState),
};

static void mixed_type_init(void)
{
    type_register_static(&mixed_accel_type);
}
type_init(mixed_type_init);
