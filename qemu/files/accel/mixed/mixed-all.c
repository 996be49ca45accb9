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
#include "qemu/error-report.h"
#include "qemu/cutils.h"
#include "qemu/memalign.h"
#include "qapi/error.h"
#include "qom/object.h"
#include "hw/boards.h"
#include "hw/i386/x86.h"
#include "migration/blocker.h"
#include "system/kvm.h"
#include "system/tcg.h"
#include "system/replay.h"
#include "system/cpu-timers.h"
#include "mixed-internal.h"
#include "../tcg/internal-common.h"
#include "mixedvm/kvm_probe.h"
#include "mixedvm/mixedvm.h"
#include "trace.h"

bool mixed_allowed;
uint64_t mixed_guest_tlb_gen;
static Error *mixed_migration_blocker;

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

MixedState *mixed_state(void)
{
    return MIXED_STATE(current_accel());
}

static const char *const mixed_policies[] = { "static", NULL };

static bool mixed_check_options(MachineState *ms, MixedState *s, Error **errp)
{
    KVMState *kvm = &s->kvm;
    int i;

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
    for (i = 0; mixed_policies[i]; i++) {
        if (!strcmp(s->policy, mixed_policies[i])) {
            return true;
        }
    }
    error_setg(errp, "mixed: unknown policy '%s' (known: static)", s->policy);
    return false;
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

static bool *mixed_placement;

bool mixed_initial_on_kvm(unsigned cpu_index)
{
    return mixed_placement && mixed_placement[cpu_index];
}

static int mixed_init_machine(MachineState *ms)
{
    MixedState *s = MIXED_STATE(current_accel());
    AccelClass *kvm_ac = ACCEL_CLASS(object_class_by_name(TYPE_KVM_ACCEL));
    const char *dev = s->kvm.device ? s->kvm.device : "/dev/kvm";
    MixedvmKvmProbe probe;
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
    s->kvm_runs_kernel = probe.kernel_code_native;
    s->kvm_shadow_mmu = mixed_host_has_shadow_mmu();
    pstrcpy(s->kvm_probe, sizeof(s->kvm_probe), probe.summary);
    trace_mixed_probe(s->kvm_runs_kernel, s->kvm_probe);

    mixed_placement = g_new0(bool, ms->smp.max_cpus);
    if (!mixed_initial_placement(ms, s, mixed_placement, &err)) {
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
    if (!kvm_check_extension(kvm_state, KVM_CAP_IMMEDIATE_EXIT)) {
        error_report("mixed: this host's KVM lacks KVM_CAP_IMMEDIATE_EXIT, "
                     "which mixed needs to kick vCPUs between backends");
        return -ENOSYS;
    }

    /*
     * MTTCG, always: KVM vCPUs run concurrently with TCG ones, so TCG code
     * must use host atomics (CF_PARALLEL) whatever the vCPU count.
     */
    tcg_accel_init_machine(true, 0, 0, ms->smp.max_cpus);
    mixed_allowed = true;

    error_setg(&mixed_migration_blocker,
               "mixed: migration and snapshots are not supported yet");
    if (migrate_add_blocker(&mixed_migration_blocker, &err) < 0) {
        error_report_err(err);
        return -EINVAL;
    }
    return 0;
}

static char *mixed_get_tcg_cpus(Object *obj, Error **errp)
{
    return g_strdup(MIXED_STATE(obj)->tcg_cpus);
}

static void mixed_set_tcg_cpus(Object *obj, const char *value, Error **errp)
{
    MixedState *s = MIXED_STATE(obj);

    g_free(s->tcg_cpus);
    s->tcg_cpus = g_strdup(value);
}

static char *mixed_get_kvm_cpus(Object *obj, Error **errp)
{
    return g_strdup(MIXED_STATE(obj)->kvm_cpus);
}

static void mixed_set_kvm_cpus(Object *obj, const char *value, Error **errp)
{
    MixedState *s = MIXED_STATE(obj);

    g_free(s->kvm_cpus);
    s->kvm_cpus = g_strdup(value);
}

static char *mixed_get_policy(Object *obj, Error **errp)
{
    return g_strdup(MIXED_STATE(obj)->policy);
}

static void mixed_set_policy(Object *obj, const char *value, Error **errp)
{
    MixedState *s = MIXED_STATE(obj);

    g_free(s->policy);
    s->policy = g_strdup(value);
}

static void mixed_accel_instance_init(Object *obj)
{
    MixedState *s = MIXED_STATE(obj);

    /* kvm_accel_instance_init ran first; the irqchip is ours to choose. */
    s->kvm.kernel_irqchip_allowed = false;
    s->kvm.kernel_irqchip_required = false;
    s->kvm.kernel_irqchip_split = ON_OFF_AUTO_OFF;
    s->policy = g_strdup("static");
    s->shadow_zap = true;
}

static bool mixed_get_shadow_zap(Object *obj, Error **errp)
{
    return MIXED_STATE(obj)->shadow_zap;
}

static void mixed_set_shadow_zap(Object *obj, bool value, Error **errp)
{
    MIXED_STATE(obj)->shadow_zap = value;
}

static int mixed_gdbstub_sstep_flags(void)
{
    return 0;
}

static void mixed_accel_class_init(ObjectClass *oc, void *data)
{
    AccelClass *ac = ACCEL_CLASS(oc);

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
        "placement policy (static: keep the initial placement)");
    object_class_property_add_bool(oc, "x-shadow-zap", mixed_get_shadow_zap,
                                   mixed_set_shadow_zap);
    object_class_property_set_description(oc, "x-shadow-zap",
        "debug: invalidate KVM's shadow MMU after guest TLB flushes on TCG "
        "(default on; off corrupts guests on shadow-MMU hosts and exists only "
        "for the negative-control tests)");
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
