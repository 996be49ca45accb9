/*
 * mixed accelerator: snapshots and migration
 *
 * A mixed VM's state is an ordinary x86 VM's (CPUX86State, QEMU's APIC,
 * IOAPIC, PIC and PIT, RAM) once every vCPU is off KVM, plus one section of
 * its own, "mixed": where each vCPU is placed and under which policy. So:
 *
 *  - When the VM stops, for whatever reason, every vCPU leaves KVM at its
 *    stop (mixed_vcpu_park): env becomes authoritative, with the guest's real
 *    values rather than the PVM tripwire, and every guest TSC is recorded
 *    from one host TSC reading. savevm, migration and loadvm all stop the VM
 *    before they read or write vCPU state. The first safe point after the VM
 *    resumes moves each vCPU back to its placement.
 *
 *  - The "mixed" section goes ahead of the vCPUs and devices, so a
 *    destination that cannot continue the VM says why before it loads them.
 *    It is registered by this QEMU whatever its accelerator and sent only by
 *    a mixed source: a -accel tcg QEMU of this tree loads a mixed VM (and says
 *    what it drops), a -accel kvm QEMU refuses it, and a mixed destination
 *    restores the placement and the policy. -accel tcg keeps the guest's TSC
 *    timeline across both directions (mixed_tcg_vm_state_change).
 *
 *  - KVM's dirty log serves two readers: QEMU's migration and mixed's code
 *    coherence (mixed-coherence.c, "Sharing KVM's dirty log").
 *
 * Telemetry (query-vcpu-accel's counters) belongs to the QEMU process: it
 * goes on across loadvm in one process and starts at zero in a destination.
 * mixed_loads counts the loads, so that a reader can tell.
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or later.
 * See the COPYING file in the top-level directory.
 */

#include "qemu/osdep.h"
#include "qemu/cutils.h"
#include "qemu/error-report.h"
#include "qapi/error.h"
#include "hw/boards.h"
#include "hw/core/cpu.h"
#include "migration/misc.h"
#include "migration/options.h"
#include "migration/vmstate.h"
#include "system/kvm.h"
#include "system/runstate.h"
#include "system/system.h"
#include "system/tcg.h"
#include "cpu.h"
#include "cpu-internal.h"
#include "mixed-internal.h"
#include "trace.h"

uint64_t mixed_loads;
static bool mixed_load_counted;     /* since the VM last ran */
/* -accel tcg loaded a mixed stream: rebase its TSC at the start (below) */
static bool mixed_tcg_rebase_tsc;

/* ------------------------------------------------------------------------
 * The VM stops: every vCPU off KVM, one TSC reading
 */

static void mixed_do_park(CPUState *cpu, run_on_cpu_data d)
{
    mixed_vcpu_park(cpu);
}

/*
 * A VM state was loaded and put (vCPU 0's post-init). QEMU puts it twice
 * for an incoming migration (qemu_loadvm_state, then
 * process_incoming_migration_bh): count the load once, until the VM runs.
 */
void mixed_migration_loaded(void)
{
    if (!mixed_load_counted) {
        mixed_loads++;
        mixed_load_counted = true;
    }
}

static void mixed_vm_state_change(void *opaque, bool running, RunState state)
{
    MixedState *s = opaque;
    uint64_t host_tsc;
    CPUState *cpu;
    int parked = 0;

    if (running) {
        mixed_load_counted = false;
        return;
    }
    CPU_FOREACH(cpu) {
        if (mixed_vcpu_running_on(cpu) == VCPU_ACCEL_KVM) {
            run_on_cpu(cpu, mixed_do_park, RUN_ON_CPU_NULL);
            parked++;
        }
    }
    /*
     * Every backend reads the TSC as host TSC + the vCPU's KVM offset
     * (mixed_cpu_get_tsc), so this is each vCPU's guest TSC at the stop, all
     * at one instant. A destination's KVM writes it back (its TSC
     * synchronisation matches values this close), and TCG follows KVM's new
     * offset: one timeline across the round trip.
     */
    if (s->tsc_sync) {
        host_tsc = cpu_get_host_ticks();
        CPU_FOREACH(cpu) {
            CPUX86State *env = cpu_env(cpu);

            env->tsc = host_tsc + cpu->accel->kvm_tsc_offset;
            env->tsc_valid = true;
        }
    }
    trace_mixed_vm_stopped(RunState_str(state), parked);
}

/* ------------------------------------------------------------------------
 * What a migration may ask for
 */

static int mixed_migration_notify(NotifierWithReturn *n, MigrationEvent *e,
                                  Error **errp)
{
    if (e->type != MIG_EVENT_PRECOPY_SETUP) {
        return 0;
    }
    if (migrate_postcopy_ram()) {
        error_setg(errp, "mixed: postcopy migration is not supported: the "
                   "destination's KVM and TCG vCPUs would fault on pages that "
                   "have not arrived through two different paths, and only "
                   "precopy is tested (turn the postcopy-ram capability off)");
        return -ENOTSUP;
    }
    if (migrate_background_snapshot()) {
        error_setg(errp, "mixed: background snapshots are not supported: they "
                   "write-protect guest RAM with userfaultfd, which mixed's "
                   "dirty-log sharing does not cover (use savevm or migrate "
                   "to a file)");
        return -ENOTSUP;
    }
    return 0;
}

static NotifierWithReturn mixed_migration_notifier;

/* ------------------------------------------------------------------------
 * The "mixed" section
 */

#define MIXED_STREAM_POLICY_LEN 64
#define MIXED_STREAM_PARAMS_LEN 512

enum {
    MIXED_STREAM_HELD = 1,          /* held by vcpu-set-accel hold=true */
    MIXED_STREAM_FELL_BACK = 2,     /* KVM failed it; placed on TCG since */
};

typedef struct MixedStream {
    uint32_t nr_vcpus;
    uint8_t *placement;             /* MixedvmBackend of each vCPU */
    uint8_t *flags;                 /* MIXED_STREAM_* of each vCPU */
    char policy[MIXED_STREAM_POLICY_LEN];
    char params[MIXED_STREAM_PARAMS_LEN];
    /* vCPU 0's feature words: what the guest was told its CPU can do */
    uint64_t features[FEATURE_WORDS];
    char tcg_cpu[4096];             /* the source's tcg-cpu, for the errors */
} MixedStream;

static MixedStream mixed_stream;

static bool mixed_stream_needed(void *opaque)
{
    return mixed_enabled();
}

static int mixed_stream_pre_save(void *opaque)
{
    MixedStream *st = opaque;
    MixedState *s = mixed_state();
    const char *tcg_cpu = mixed_x86_tcg_cpu_option(first_cpu);
    CPUState *cpu;

    st->nr_vcpus = current_machine->smp.max_cpus;
    g_free(st->placement);
    g_free(st->flags);
    st->placement = g_new0(uint8_t, st->nr_vcpus);
    st->flags = g_new0(uint8_t, st->nr_vcpus);
    CPU_FOREACH(cpu) {
        unsigned i = cpu->cpu_index;

        st->placement[i] = mixed_vcpu_target(cpu) == VCPU_ACCEL_KVM ?
                           MIXEDVM_BACKEND_KVM : MIXEDVM_BACKEND_TCG;
        st->flags[i] = (mixedvm_sched_held(s->sched, i) ? MIXED_STREAM_HELD : 0) |
                       (cpu->accel->state == MIXED_VCPU_TCG_ONLY ?
                        MIXED_STREAM_FELL_BACK : 0);
    }
    memset(st->policy, 0, sizeof(st->policy));
    memset(st->params, 0, sizeof(st->params));
    pstrcpy(st->policy, sizeof(st->policy), mixedvm_sched_policy(s->sched));
    if (mixedvm_sched_params(s->sched, st->params, sizeof(st->params)) >=
        sizeof(st->params)) {
        error_report("mixed: the policy's parameters do not fit in the "
                     "migration stream (%zu bytes at most)", sizeof(st->params));
        return -E2BIG;
    }
    memcpy(st->features, X86_CPU(first_cpu)->env.features, sizeof(st->features));
    memset(st->tcg_cpu, 0, sizeof(st->tcg_cpu));
    pstrcpy(st->tcg_cpu, sizeof(st->tcg_cpu), tcg_cpu);
    return 0;
}

/*
 * Feature words that describe the guest CPU on both backends: CPUID outside
 * the hypervisor range, and IA32_ARCH_CAPABILITIES. VMX/SVM words and the
 * KVM and Hyper-V leaves are off under mixed or answered by KVM alone.
 */
static bool mixed_stream_compared_word(FeatureWord w)
{
    FeatureWordInfo *wi = &feature_word_info[w];

    if (w == FEAT_ARCH_CAPABILITIES) {
        return true;
    }
    return wi->type == CPUID_FEATURE_WORD &&
           (wi->cpuid.eax < 0x40000000 || wi->cpuid.eax > 0x4fffffff);
}

/*
 * Does this QEMU's guest CPU match the stream's? TCG cannot offer a few
 * bits that mixed can (invtsc: TCG's TSC is the host's, and as invariant,
 * but TCG will not say so); a -accel tcg destination without them only
 * reports them.
 */
static bool mixed_stream_check_cpu(MixedStream *st, Error **errp)
{
    CPUX86State *env = &X86_CPU(first_cpu)->env;
    g_autoptr(GString) missing = g_string_new(NULL);
    g_autoptr(GString) extra = g_string_new(NULL);
    g_autoptr(GString) dropped = g_string_new(NULL);
    int w, bit;

    for (w = 0; w < FEATURE_WORDS; w++) {
        FeatureWordInfo *wi = &feature_word_info[w];
        uint64_t lost = st->features[w] & ~env->features[w];
        uint64_t gained = env->features[w] & ~st->features[w];

        if (!mixed_stream_compared_word(w) || !(lost | gained)) {
            continue;
        }
        for (bit = 0; bit < 64; bit++) {
            const char *name = wi->feat_names[bit];
            g_autofree char *label = name ? g_strdup(name) :
                g_strdup_printf("word%d.bit%d", w, bit);

            if (lost & BIT_ULL(bit)) {
                g_string_append_printf(!mixed_enabled() &&
                                       !(wi->tcg_features & BIT_ULL(bit)) ?
                                       dropped : missing, " %s", label);
            } else if (gained & BIT_ULL(bit)) {
                g_string_append_printf(extra, " %s", label);
            }
        }
    }
    if (missing->len || extra->len) {
        error_setg(errp, "mixed: the destination's guest CPU differs from the "
                   "source's:%s%s%s%s. Start it with the same -cpu as the "
                   "source, or, for -accel tcg, with the source's "
                   "query-vcpu-accel tcg-cpu: -cpu %s",
                   missing->len ? " it lacks" : "", missing->str,
                   extra->len ? "; it adds" : "", extra->str, st->tcg_cpu);
        return false;
    }
    if (dropped->len) {
        warn_report("mixed: -accel tcg cannot show the guest these features "
                    "of its mixed CPU, which the guest saw at boot:%s",
                    dropped->str);
    }
    return true;
}

static bool mixed_stream_restore(MixedStream *st, Error **errp)
{
    MixedState *s = mixed_state();
    char err[256];
    CPUState *cpu;

    if (!mixedvm_sched_set_policy(s->sched, st->policy,
                                  st->params[0] ? st->params : NULL, err,
                                  sizeof(err))) {
        error_setg(errp, "mixed: cannot restore the stream's policy %s: %s",
                   st->policy, err);
        return false;
    }
    CPU_FOREACH(cpu) {
        unsigned i = cpu->cpu_index;
        VcpuAccel target = st->placement[i] == MIXEDVM_BACKEND_KVM ?
                           VCPU_ACCEL_KVM : VCPU_ACCEL_TCG;
        Error *local = NULL;

        if (!mixed_vcpu_may_place(cpu, target, &local)) {
            warn_report("mixed: vCPU %u stays on TCG: %s", i,
                        error_get_pretty(local));
            error_free(local);
            target = VCPU_ACCEL_TCG;
        }
        if (!mixedvm_sched_request(s->sched, i, target == VCPU_ACCEL_KVM ?
                                   MIXEDVM_BACKEND_KVM : MIXEDVM_BACKEND_TCG,
                                   err, sizeof(err)) ||
            !mixedvm_sched_set_hold(s->sched, i,
                                    st->flags[i] & MIXED_STREAM_HELD, err,
                                    sizeof(err))) {
            error_setg(errp, "mixed: cannot restore vCPU %u's placement: %s",
                       i, err);
            return false;
        }
        if (st->flags[i] & MIXED_STREAM_FELL_BACK) {
            info_report("mixed: vCPU %u had fallen back to TCG after a KVM "
                        "failure in the source; it stays placed on TCG, and "
                        "may be moved to KVM again", i);
        }
    }
    return true;
}

static int mixed_stream_post_load(void *opaque, int version_id)
{
    MixedStream *st = opaque;
    Error *err = NULL;
    g_autoptr(GString) on_kvm = g_string_new(NULL);
    unsigned i;

    if (st->nr_vcpus != current_machine->smp.max_cpus) {
        error_report("mixed: the stream's VM has %u vCPUs, this one %u: start "
                     "the destination with the source's -smp",
                     st->nr_vcpus, current_machine->smp.max_cpus);
        return -EINVAL;
    }
    if (!memchr(st->policy, 0, sizeof(st->policy)) ||
        !memchr(st->params, 0, sizeof(st->params)) ||
        !memchr(st->tcg_cpu, 0, sizeof(st->tcg_cpu))) {
        error_report("mixed: the stream's mixed section is corrupt "
                     "(unterminated policy, parameters or CPU)");
        return -EINVAL;
    }
    for (i = 0; i < st->nr_vcpus; i++) {
        if (st->placement[i] > MIXEDVM_BACKEND_KVM ||
            st->flags[i] & ~(MIXED_STREAM_HELD | MIXED_STREAM_FELL_BACK)) {
            error_report("mixed: the stream's mixed section is corrupt "
                         "(vCPU %u: placement %u, flags 0x%x)", i,
                         st->placement[i], st->flags[i]);
            return -EINVAL;
        }
        if (st->placement[i] == MIXEDVM_BACKEND_KVM) {
            g_string_append_printf(on_kvm, " %u", i);
        }
    }
    if (kvm_enabled() && !mixed_enabled()) {
        error_report("mixed: -accel kvm cannot continue a VM saved under "
                     "-accel mixed: its interrupt controllers are QEMU's "
                     "(an in-kernel irqchip has other state), and its CPU "
                     "model is mixed's. Load it with -accel mixed, or with "
                     "-accel tcg and the source's tcg-cpu");
        return -EINVAL;
    }
    if (!mixed_stream_check_cpu(st, &err)) {
        error_report_err(err);
        return -EINVAL;
    }
    if (!mixed_enabled()) {
        mixed_tcg_rebase_tsc = true;
        info_report("mixed: this VM ran under -accel mixed, policy %s%s%s%s%s; "
                    "here every vCPU runs on TCG", st->policy,
                    st->params[0] ? " " : "", st->params,
                    on_kvm->len ? ", vCPUs placed on KVM:" : "", on_kvm->str);
        return 0;
    }
    if (!mixed_stream_restore(st, &err)) {
        error_report_err(err);
        return -EINVAL;
    }
    trace_mixed_restored(st->policy, on_kvm->str);
    return 0;
}

static const VMStateDescription vmstate_mixed = {
    .name = "mixed",
    .version_id = 1,
    .minimum_version_id = 1,
    /* ahead of the vCPUs and devices (see the top of this file) */
    .priority = MIG_PRI_IOMMU,
    .needed = mixed_stream_needed,
    .pre_save = mixed_stream_pre_save,
    .post_load = mixed_stream_post_load,
    .fields = (const VMStateField[]) {
        VMSTATE_UINT32(nr_vcpus, MixedStream),
        VMSTATE_VARRAY_UINT32_ALLOC(placement, MixedStream, nr_vcpus, 0,
                                    vmstate_info_uint8, uint8_t),
        VMSTATE_VARRAY_UINT32_ALLOC(flags, MixedStream, nr_vcpus, 0,
                                    vmstate_info_uint8, uint8_t),
        VMSTATE_BUFFER_UNSAFE(policy, MixedStream, 0,
                              sizeof_field(MixedStream, policy)),
        VMSTATE_BUFFER_UNSAFE(params, MixedStream, 0,
                              sizeof_field(MixedStream, params)),
        VMSTATE_UINT64_ARRAY(features, MixedStream, FEATURE_WORDS),
        VMSTATE_BUFFER_UNSAFE(tcg_cpu, MixedStream, 0,
                              sizeof_field(MixedStream, tcg_cpu)),
        VMSTATE_END_OF_LIST()
    },
};

/*
 * -accel tcg of this build, for VMs that move between it and mixed. TCG
 * keeps its guest TSC as its own elapsed ticks (+ env->tsc_offset, which is
 * SVM's and 0 under mixed's models), and migrates those ticks, not env->tsc;
 * mixed keeps it as host TSC + KVM's offset and migrates env->tsc. So TCG
 * records env->tsc when it stops, as mixed does, and a TCG destination of a
 * mixed stream rebases its TSC onto the stream's env->tsc when it starts.
 */
static void mixed_tcg_vm_state_change(void *opaque, bool running,
                                      RunState state)
{
    uint64_t latest = 0;
    CPUState *cpu;

    if (!running) {
        CPU_FOREACH(cpu) {
            CPUX86State *env = cpu_env(cpu);

            env->tsc = cpu_get_tsc(env) + env->tsc_offset;
        }
        return;
    }
    if (!mixed_tcg_rebase_tsc) {
        return;
    }
    /*
     * One offset for every vCPU, from the latest TSC in the stream, as KVM's
     * own TSC synchronisation makes of host writes this close. On a host
     * whose TSC is unstable, the stream's vCPUs can differ by milliseconds
     * (KVM moved its offsets after mixed read them), which a TCG guest
     * would otherwise keep for good.
     */
    CPU_FOREACH(cpu) {
        latest = MAX(latest, cpu_env(cpu)->tsc);
    }
    CPU_FOREACH(cpu) {
        CPUX86State *env = cpu_env(cpu);

        env->tsc_offset = latest - cpu_get_tsc(env);
    }
    mixed_tcg_rebase_tsc = false;
}

static void mixed_register_section(Notifier *n, void *data)
{
    vmstate_register(NULL, 0, &vmstate_mixed, &mixed_stream);
    if (!mixed_enabled() && tcg_enabled()) {
        qemu_add_vm_change_state_handler(mixed_tcg_vm_state_change, NULL);
    }
}

static Notifier mixed_section_notifier = { .notify = mixed_register_section };

/*
 * Every accelerator of this QEMU registers the section, so that a -accel tcg
 * or -accel kvm destination recognises a mixed stream and says what it does
 * with it, instead of "Unknown savevm section".
 */
static void mixed_migration_register(void)
{
    qemu_add_machine_init_done_notifier(&mixed_section_notifier);
}
type_init(mixed_migration_register);

void mixed_migration_init(MixedState *s)
{
    qemu_add_vm_change_state_handler(mixed_vm_state_change, s);
    migration_add_notifier(&mixed_migration_notifier, mixed_migration_notify);
}
