/*
 * mixed accelerator: x86 vCPU state handover between KVM and TCG
 *
 * QEMU's CPUX86State is the meeting point. KVM -> TCG: get everything from
 * KVM, then rebuild what only TCG keeps (hflags, softfloat status, TCG
 * breakpoints, TLB). TCG -> KVM: canonicalise what only TCG keeps lazily
 * (flags, MXCSR, XSTATE_BV), fix what VMX/PVM require (TR busy, accessed
 * bits, SS.DPL), drop stale events, then put. The conventions that differ are
 * pure functions in libmixedvm (include/mixedvm/mixedvm.h), unit-tested.
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or later.
 * See the COPYING file in the top-level directory.
 */

#include "qemu/osdep.h"
#include "qemu/error-report.h"
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
#include "kvm/kvm_i386.h"
#include "mixed-internal.h"
#include "mixedvm/mixedvm.h"
#include "trace.h"

#define TYPE_MIXED_X86_CPU_ACCEL ACCEL_CPU_NAME("mixed")

static AccelCPUClass *accel_cpu_class(const char *accel)
{
    g_autofree char *name = g_strdup_printf(ACCEL_CPU_NAME("%s"), accel);

    return ACCEL_CPU_CLASS(object_class_by_name(name));
}

/* ------------------------------------------------------------------------
 * CPU model: one guest-visible CPU for both backends
 */

/*
 * Applied after KVM's defaults. CPUID is already the intersection of what KVM
 * and TCG support (x86_cpu_get_supported_feature_word); these also hide the
 * paravirtual interfaces only KVM implements and the signature leaf only TCG
 * shows, so that CPUID reads the same on both backends.
 */
static PropValue mixed_default_props[] = {
    { "kvmclock", "off" },
    { "kvm-nopiodelay", "off" },
    { "kvm-asyncpf", "off" },
    { "kvm-steal-time", "off" },
    { "kvm-pv-eoi", "off" },
    { "kvmclock-stable-bit", "off" },
    { "tcg-cpuid", "off" },    /* no TCG signature leaf */
    { "vme", "off" },
    { NULL, NULL },
};

/*
 * The guest clock and the APIC, on every model unless the user says
 * otherwise (docs/mixed.md, "The guest CPU"):
 * - "kvm": the KVM signature leaf, with no paravirtual feature in it. It is
 *   true (the VM runs on KVM), TCG vCPUs show the same leaves
 *   (mixed_x86_cpuid), and Linux enables x2APIC without interrupt remapping
 *   only under a hypervisor it knows (x86_init.hyper.x2apic_available).
 * - "x2apic": QEMU's APIC serves x2APIC MSRs on TCG, and on KVM through
 *   user-space MSR exits (mixed_kvm_handle_msr).
 * - "invtsc": where the host's TSC is invariant. Both backends read the host
 *   TSC plus KVM's offset (mixed_cpu_get_tsc), so the guest's TSC is as
 *   invariant as the host's. Linux then trusts it: constant and nonstop,
 *   no "TSCs unsynchronized", and the tsc clocksource with a vDSO.
 */
static PropValue mixed_guest_clock_props[] = {
    { "kvm", "on" },
    { "x2apic", "on" },
    { "invtsc", "on" },
    { NULL, NULL },
};

/*
 * Instructions that unprivileged code can use, by feature word. Where KVM
 * cannot run guest kernel code (PVM), it runs guest user code natively
 * without intercepting CPUID or XGETBV (tools/probes/ shows both return the
 * host's values at CPL3), so user code picks its instructions from the host
 * CPU whatever model QEMU shows. TCG must then accept every one of these that
 * it implements, or a process would get #UD after a move.
 */
static const struct {
    FeatureWord w;
    uint64_t bits;
} mixed_user_isa[] = {
    { FEAT_1_ECX, CPUID_EXT_SSE3 | CPUID_EXT_PCLMULQDQ | CPUID_EXT_SSSE3 |
                  CPUID_EXT_FMA | CPUID_EXT_CX16 | CPUID_EXT_SSE41 |
                  CPUID_EXT_SSE42 | CPUID_EXT_MOVBE | CPUID_EXT_POPCNT |
                  CPUID_EXT_AES | CPUID_EXT_XSAVE | CPUID_EXT_AVX |
                  CPUID_EXT_F16C | CPUID_EXT_RDRAND },
    { FEAT_7_0_EBX, CPUID_7_0_EBX_BMI1 | CPUID_7_0_EBX_AVX2 |
                    CPUID_7_0_EBX_BMI2 | CPUID_7_0_EBX_ERMS |
                    CPUID_7_0_EBX_ADX | CPUID_7_0_EBX_RDSEED |
                    CPUID_7_0_EBX_CLFLUSHOPT | CPUID_7_0_EBX_CLWB |
                    CPUID_7_0_EBX_SHA_NI },
    { FEAT_7_0_ECX, CPUID_7_0_ECX_VAES | CPUID_7_0_ECX_VPCLMULQDQ |
                    CPUID_7_0_ECX_GFNI | CPUID_7_0_ECX_RDPID |
                    CPUID_7_0_ECX_MOVDIRI | CPUID_7_0_ECX_MOVDIR64B },
    { FEAT_7_0_EDX, CPUID_7_0_EDX_FSRM },
    { FEAT_8000_0001_ECX, CPUID_EXT3_LAHF_LM | CPUID_EXT3_ABM |
                          CPUID_EXT3_SSE4A | CPUID_EXT3_3DNOWPREFETCH |
                          CPUID_EXT3_MISALIGNSSE | CPUID_EXT3_XOP |
                          CPUID_EXT3_FMA4 | CPUID_EXT3_TBM },
    { FEAT_8000_0001_EDX, CPUID_EXT2_RDTSCP | CPUID_EXT2_FFXSR },
    { FEAT_XSAVE, CPUID_XSAVE_XSAVEOPT | CPUID_XSAVE_XSAVEC |
                  CPUID_XSAVE_XGETBV1 },
};

static uint64_t mixed_host_cpuid_word(FeatureWordInfo *wi)
{
    uint32_t regs[4];

    host_cpuid(wi->cpuid.eax, wi->cpuid.ecx, &regs[R_EAX], &regs[R_EBX],
               &regs[R_ECX], &regs[R_EDX]);
    return regs[wi->cpuid.reg];
}

/* The host's user-mode instructions of word @w, when KVM shows them anyway. */
static uint64_t mixed_native_user_isa(FeatureWord w)
{
    int i;

    if (mixed_state()->kvm_runs_kernel) {
        return 0;   /* KVM intercepts CPUID: its table is what user code sees */
    }
    for (i = 0; i < ARRAY_SIZE(mixed_user_isa); i++) {
        if (mixed_user_isa[i].w == w) {
            return mixed_host_cpuid_word(&feature_word_info[w]) &
                   mixed_user_isa[i].bits;
        }
    }
    return 0;
}

/* Is the host's TSC invariant (constant rate, running in every C-state)? */
static bool mixed_host_tsc_invariant(void)
{
    uint32_t eax, ebx, ecx, edx;

    host_cpuid(0x80000000, 0, &eax, &ebx, &ecx, &edx);
    if (eax < 0x80000007) {
        return false;
    }
    host_cpuid(0x80000007, 0, &eax, &ebx, &ecx, &edx);
    return edx & CPUID_APM_INVTSC;
}

/*
 * Features that mixed itself provides on TCG although plain TCG does not
 * offer them, or offers them where KVM without its irqchip does not.
 */
static uint64_t mixed_own_features(FeatureWord w)
{
    switch (w) {
    case FEAT_1_ECX:
        /*
         * QEMU's APIC implements x2APIC. TCG reaches it through its MSR
         * helpers; KVM, which drops x2APIC without its in-kernel irqchip,
         * through user-space MSR exits (mixed_init_machine). On PVM guest
         * kernel code, the only code that may touch the APIC, always runs
         * on TCG.
         */
        return mixed_state()->kvm_apic_msr_exits ||
               !mixed_state()->kvm_runs_kernel ? CPUID_EXT_X2APIC : 0;
    case FEAT_8000_0007_EDX:
        /* TCG's TSC is the host's (mixed_cpu_get_tsc), as KVM's is. */
        return mixed_host_tsc_invariant() ? CPUID_APM_INVTSC : 0;
    default:
        return 0;
    }
}

uint64_t mixed_x86_supported_feature_word(int w, uint64_t kvm_word)
{
    uint64_t own = mixed_own_features(w);

    /* KVM's own report still decides invtsc: it masks it with the host's. */
    if (w == FEAT_8000_0007_EDX) {
        own &= kvm_word;
    }
    return ((kvm_word | mixed_native_user_isa(w)) &
            feature_word_info[w].tcg_features) | own;
}

static void mixed_cpu_instance_init(CPUState *cs)
{
    X86CPU *cpu = X86_CPU(cs);
    int i;

    /* KVM's defaults and KVM's XSAVE layout (KVM get/put uses it). */
    accel_cpu_class("kvm")->cpu_instance_init(cs);
    if (X86_CPU_GET_CLASS(cpu)->model) {
        x86_cpu_apply_props(cpu, mixed_default_props);
    }
    /*
     * Also for -cpu max, where invtsc is never enabled on its own (it blocks
     * migration, which mixed blocks anyway). Set before the user's -cpu
     * options, so "-cpu qemu64,-invtsc" still wins.
     */
    for (i = 0; mixed_guest_clock_props[i].prop; i++) {
        PropValue *pv = &mixed_guest_clock_props[i];

        if (!strcmp(pv->prop, "invtsc") && !mixed_host_tsc_invariant()) {
            continue;
        }
        object_property_parse(OBJECT(cpu), pv->prop, pv->value, &error_abort);
    }
    for (i = 0; i < ARRAY_SIZE(mixed_user_isa); i++) {
        FeatureWord w = mixed_user_isa[i].w;

        cpu->env.features[w] |= mixed_native_user_isa(w) &
                                feature_word_info[w].tcg_features;
    }
}

/*
 * Host instructions that guest user code can see on a PVM-like host but TCG
 * cannot execute: they cannot be hidden, so say which.
 */
static void mixed_report_unhidable_features(void)
{
    g_autoptr(GString) names = g_string_new(NULL);
    FeatureWord w;
    int bit;

    if (mixed_state()->kvm_runs_kernel) {
        return;
    }
    for (w = 0; w < FEATURE_WORDS; w++) {
        FeatureWordInfo *wi = &feature_word_info[w];
        uint64_t missing;

        if (wi->type != CPUID_FEATURE_WORD ||
            (w != FEAT_7_0_EBX && w != FEAT_7_0_ECX && w != FEAT_7_0_EDX &&
             w != FEAT_7_1_EAX)) {
            continue;
        }
        missing = mixed_host_cpuid_word(wi) & ~wi->tcg_features;
        for (bit = 0; bit < 64; bit++) {
            const char *name = wi->feat_names[bit];

            if ((missing & BIT_ULL(bit)) && name &&
                (g_str_has_prefix(name, "avx512") || g_str_has_prefix(name, "amx"))) {
                g_string_append_printf(names, " %s", name);
            }
        }
    }
    if (names->len) {
        warn_report("mixed: this host's KVM shows guest user code the host "
                    "CPU's CPUID, and TCG cannot run:%s. Guest software must "
                    "not use them (for glibc: GLIBC_TUNABLES=glibc.cpu.hwcaps="
                    "-AVX512F,...); see docs/design.md", names->str);
    }
}

static void mixed_report_filtered_features(X86CPU *cpu)
{
    static bool reported;
    g_autoptr(GString) names = g_string_new(NULL);
    FeatureWord w;
    int bit;

    if (reported) {
        return;
    }
    reported = true;
    mixed_report_unhidable_features();
    for (w = 0; w < FEATURE_WORDS; w++) {
        FeatureWordInfo *wi = &feature_word_info[w];
        uint64_t dropped = cpu->filtered_features[w];

        /*
         * -cpu max asks for nothing it cannot get, so nothing is filtered:
         * what it loses against KVM alone is what TCG cannot do.
         */
        if (cpu->max_features && wi->type == CPUID_FEATURE_WORD) {
            dropped |= kvm_arch_get_supported_cpuid(kvm_state, wi->cpuid.eax,
                                                    wi->cpuid.ecx,
                                                    wi->cpuid.reg) &
                       ~cpu->env.features[w] & ~wi->no_autoenable_flags;
        }
        for (bit = 0; bit < 64; bit++) {
            const char *name = wi->feat_names[bit];

            if ((dropped & BIT_ULL(bit)) && name) {
                g_string_append_printf(names, " %s", name);
            }
        }
    }
    if (names->len) {
        warn_report("mixed: hiding CPU features that KVM or TCG cannot "
                    "provide on this host:%s", names->str);
    }
}

bool mixed_x86_check_cpu(CPUState *cs, Error **errp)
{
    X86CPU *cpu = X86_CPU(cs);
    CPUX86State *env = &cpu->env;

    if (X86_CPU_GET_CLASS(cpu)->host_cpuid_required) {
        error_setg(errp, "mixed: -cpu host is not supported: it passes the "
                   "host CPU through as it is, and TCG cannot run all of it "
                   "(nor reproduce its model-specific MSRs); use -cpu max for "
                   "every feature both KVM and TCG provide on this host, or a "
                   "named model such as qemu64 (the default)");
        return false;
    }
    /* Asked for, even if filtered out as unsupported: refuse, do not drop. */
    if (((env->features[FEAT_1_ECX] | cpu->filtered_features[FEAT_1_ECX]) &
         CPUID_EXT_VMX) ||
        ((env->features[FEAT_8000_0001_ECX] |
          cpu->filtered_features[FEAT_8000_0001_ECX]) & CPUID_EXT3_SVM)) {
        error_setg(errp, "mixed: nested virtualisation (vmx/svm) is not "
                   "supported; remove +vmx/+svm from -cpu");
        return false;
    }
    mixed_report_filtered_features(cpu);
    return true;
}

static bool mixed_cpu_realizefn(CPUState *cs, Error **errp)
{
    /*
     * TCG's address spaces (memory + SMM overlay, as the softmmu expects);
     * KVM maps guest memory through the system address space and, with SMM
     * refused, needs nothing per CPU. Then the host's physical address size.
     */
    if (!accel_cpu_class("tcg")->cpu_target_realize(cs, errp)) {
        return false;
    }
    if (!host_cpu_realizefn(cs, errp)) {
        return false;
    }
    return mixed_x86_check_cpu(cs, errp);
}

static void mixed_cpu_accel_class_init(ObjectClass *oc, void *data)
{
    AccelCPUClass *acc = ACCEL_CPU_CLASS(oc);

    /* TCG's class hook installs x86_tcg_ops for every CPU model. */
    acc->cpu_class_init = accel_cpu_class("tcg")->cpu_class_init;
    acc->cpu_instance_init = mixed_cpu_instance_init;
    acc->cpu_target_realize = mixed_cpu_realizefn;
}

static const TypeInfo mixed_cpu_accel_type_info = {
    .name = TYPE_MIXED_X86_CPU_ACCEL,
    .parent = TYPE_ACCEL_CPU,
    .class_init = mixed_cpu_accel_class_init,
    .abstract = true,
};

static void mixed_cpu_accel_register_types(void)
{
    type_register_static(&mixed_cpu_accel_type_info);
}
type_init(mixed_cpu_accel_register_types);

/* ------------------------------------------------------------------------
 * CPUID leaves a TCG vCPU answers from its KVM table
 */

/*
 * kvm_arch_init_vcpu builds the hypervisor leaves (0x40000000: the KVM
 * signature, its features, 0x40000010: TSC and APIC bus kHz) straight into
 * KVM's table, not through cpu_x86_cpuid. Keep the vCPU's own copy, read back
 * from KVM, so that TCG answers exactly what KVM does.
 */
bool mixed_x86_vcpu_init(CPUState *cs, Error **errp)
{
    AccelCPUState *mv = cs->accel;
    g_autofree struct kvm_cpuid2 *table =
        g_malloc0(sizeof(*table) + 256 * sizeof(table->entries[0]));
    int i, ret;

    table->nent = 256;
    ret = kvm_vcpu_ioctl(cs, KVM_GET_CPUID2, table);
    if (ret < 0) {
        error_setg_errno(errp, -ret, "mixed: reading vCPU %d's CPUID from KVM",
                         cs->cpu_index);
        return false;
    }
    for (i = 0; i < table->nent; i++) {
        struct kvm_cpuid_entry2 *e = &table->entries[i];

        if (e->function >= 0x40000000 && e->function <= 0x4fffffff &&
            mv->nr_hv_leaves < ARRAY_SIZE(mv->hv_leaves)) {
            mv->hv_leaves[mv->nr_hv_leaves++] = *e;
        }
    }
    return true;
}

/*
 * Leaf 0x15, where the model is Intel's and the TSC invariant: the guest
 * learns its TSC frequency without calibrating (Linux sets
 * X86_FEATURE_TSC_KNOWN_FREQ), and its APIC timer's: the crystal is the APIC
 * bus, 1 GHz in both QEMU's APIC and KVM's. TSC Hz = ECX * EBX / EAX.
 * AMD guests have no such leaf and calibrate against the PIT/HPET.
 */
static bool mixed_x86_tsc_leaf(CPUX86State *env, uint32_t *eax, uint32_t *ebx,
                               uint32_t *ecx, uint32_t *edx)
{
    if (!IS_INTEL_CPU(env) || env->cpuid_level < 0x15 || !env->tsc_khz ||
        !env->apic_bus_freq ||
        !(env->features[FEAT_8000_0007_EDX] & CPUID_APM_INVTSC)) {
        return false;
    }
    *eax = env->apic_bus_freq / 1000;   /* crystal kHz */
    *ebx = env->tsc_khz;
    *ecx = env->apic_bus_freq;
    *edx = 0;
    return true;
}

bool mixed_x86_cpuid(CPUState *cs, uint32_t index, uint32_t count,
                     uint32_t *eax, uint32_t *ebx, uint32_t *ecx, uint32_t *edx)
{
    AccelCPUState *mv = cs->accel;
    int i;

    if (index == 0x15) {
        return mixed_x86_tsc_leaf(cpu_env(cs), eax, ebx, ecx, edx);
    }
    if (index < 0x40000000 || index > 0x4fffffff) {
        return false;
    }
    *eax = *ebx = *ecx = *edx = 0;
    for (i = 0; mv && i < mv->nr_hv_leaves; i++) {
        struct kvm_cpuid_entry2 *e = &mv->hv_leaves[i];

        if (e->function == index &&
            (!(e->flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX) || e->index == count)) {
            *eax = e->eax;
            *ebx = e->ebx;
            *ecx = e->ecx;
            *edx = e->edx;
            break;
        }
    }
    return true;
}

/* ------------------------------------------------------------------------
 * x2APIC MSRs of a vCPU on KVM
 */

int mixed_kvm_handle_msr(CPUState *cs, struct kvm_run *run)
{
    bool write = run->exit_reason == KVM_EXIT_X86_WRMSR;
    uint32_t msr = run->msr.index;
    int ret = -1;

    if (msr >= MSR_APIC_START && msr <= MSR_APIC_END) {
        uint64_t val = run->msr.data;

        /* As TCG's MSR helpers do; current_cpu is this vCPU. */
        bql_lock();
        ret = write ? apic_msr_write(msr - MSR_APIC_START, val)
                    : apic_msr_read(msr - MSR_APIC_START, &val);
        bql_unlock();
        if (!write) {
            run->msr.data = val;
        }
    }
    /* Anything else KVM refused: the #GP it would have raised itself. */
    run->msr.error = ret < 0;
    trace_mixed_kvm_msr(cs->cpu_index, msr, write, run->msr.data, ret < 0);
    return 0;
}

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

void mixed_kvm_pre_run(CPUState *cs, struct kvm_run *run)
{
    X86CPU *cpu = X86_CPU(cs);
    bool deliverable;

    bql_lock();
    run->request_interrupt_window = 0;
    if (mixed_state()->event_exit && mixed_x86_event_pending(cs, &deliverable)) {
        /*
         * env's interrupt shadow is the one of the last put or get, and stays
         * stale while KVM runs guest kernel code: trust KVM, which says after
         * every exit whether the guest can take an interrupt now. Asking for
         * a window that is already open would exit at once, forever (seen on
         * an emulated AMD-V host: 690k window exits, no progress). Stale
         * before the first run after a put, this costs one extra exit at most.
         */
        if (run->ready_for_interrupt_injection) {
            deliverable = true;
        }
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
 * TSC: one timeline, KVM's (host TSC + the vCPU's KVM offset)
 */

void mixed_x86_read_tsc_offset(CPUState *cs)
{
    AccelCPUState *mv = cs->accel;
    uint64_t offset;
    struct kvm_device_attr attr = {
        .group = KVM_VCPU_TSC_CTRL,
        .attr = KVM_VCPU_TSC_OFFSET,
        .addr = (uintptr_t)&offset,
    };
    struct {
        struct kvm_msrs info;
        struct kvm_msr_entry entry;
    } msr = { .info.nmsrs = 1, .entry.index = MSR_IA32_TSC };
    uint64_t before, after;

    if (kvm_vcpu_ioctl(cs, KVM_GET_DEVICE_ATTR, &attr) == 0) {
        mv->kvm_tsc_offset = offset;
        return;
    }
    /* Older KVM: bracket a read of the guest TSC with host TSC reads. */
    before = cpu_get_host_ticks();
    if (kvm_vcpu_ioctl(cs, KVM_GET_MSRS, &msr) != 1) {
        error_report("mixed: cannot read vCPU %d's TSC from KVM", cs->cpu_index);
        return;
    }
    after = cpu_get_host_ticks();
    mv->kvm_tsc_offset = msr.entry.data - (before + (after - before) / 2);
}

uint64_t mixed_cpu_get_tsc(CPUState *cs)
{
    /*
     * RDTSC is not ordered with earlier loads. A guest orders it with LFENCE,
     * which TCG turns into nothing on an x86 host (loads are already ordered
     * there), so the host RDTSC below could run early and return a time
     * older than what another vCPU already published: order it here.
     * Measured without it: reads up to ~2000 cycles behind (tsccheck).
     */
    if (!mixed_state()->tsc_sync) {
        return cpus_get_elapsed_ticks();    /* TCG's own timeline */
    }
    asm volatile("lfence" ::: "memory");
    return cpu_get_host_ticks() + cs->accel->kvm_tsc_offset;
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
        cs->interrupt_request |= CPU_INTERRUPT_NMI;
    }
    if (env->interrupt_injected >= 0) {
        /* Cannot happen: mixed_kvm_pre_run() never injects. */
        error_report("mixed: vCPU %d left KVM holding interrupt vector %d, "
                     "which is lost", cs->cpu_index, env->interrupt_injected);
    }
    mixed_x86_clear_stale_events(env);
}

/* A PVM tripwire fired: give the guest back its real state. */
static void mixed_x86_disarm_tripwire(CPUState *cs, bool kernel_entry)
{
    AccelCPUState *mv = cs->accel;
    CPUX86State *env = cpu_env(cs);
    MixedvmTripwireExit exit_state;
    MixedvmUserResume resume;
    bool rewound;

    env->idt.limit = mv->real_idt_limit;
    env->lstar = mv->real_lstar;
    env->cstar = mv->real_cstar;
    env->sysenter_cs = mv->real_sysenter_cs;
    mv->tripwire_armed = false;
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

void mixed_x86_kvm_to_tcg(CPUState *cs, VcpuAccelMove *t, Error **errp)
{
    AccelCPUState *mv = cs->accel;
    X86CPU *cpu = X86_CPU(cs);
    CPUX86State *env = &cpu->env;
    int64_t t0 = mixed_now_ns(), t1, t2;
    target_ulong dr7;

    if (!cs->vcpu_dirty) {
        if (kvm_arch_get_registers(cs, errp)) {
            return;
        }
        cs->vcpu_dirty = true;
    }
    t1 = mixed_now_ns();

    if (mv->tripwire_armed) {
        mixed_x86_disarm_tripwire(cs, mv->kvm_exit_pending &&
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
 * Shadow-MMU hosts: KVM built its shadow page tables from guest page tables
 * it write-protected; TCG vCPUs changed them through QEMU's mapping without
 * KVM noticing. If the guest flushed its TLB on TCG since the last zap,
 * invalidate every shadow page so that KVM rebuilds them from the guest's
 * page tables. Deleting a memslot makes KVM zap all shadow pages
 * (kvm_arch_flush_shadow_memslot); a one-page slot outside guest memory is
 * added and deleted for that. Measured on PVM (tools/probes/
 * kvm-shadow-invalidate.c): SET_SREGS, a CR4.PGE toggle, KVM_SET_NR_MMU_PAGES
 * and a dirty-log flag toggle leave the stale translation in place; this
 * does not, in about 50 us.
 */
static int mixed_x86_zap_shadow_mmu(void)
{
    MixedState *s = mixed_state();
    uint64_t gen = qatomic_read(&mixed_guest_tlb_gen);
    struct kvm_userspace_memory_region slot = {
        .slot = s->zap_slot,
        .guest_phys_addr = MIXED_ZAP_SLOT_GPA,
        .memory_size = qemu_real_host_page_size(),
        .userspace_addr = (uintptr_t)s->zap_page,
    };
    int ret;

    if (!s->shadow_zap || qatomic_read(&s->shadow_zapped_gen) == gen) {
        return 0;
    }
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
    qatomic_inc(&s->shadow_zaps);
    return 0;
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
    env->idt.limit = 0;                     /* any event: #GP, #DF, shutdown */
    env->lstar = MIXEDVM_TRIPWIRE_LSTAR;    /* SYSCALL faults at a sentinel */
    env->cstar = MIXEDVM_TRIPWIRE_CSTAR;
    env->sysenter_cs = 0;                   /* SYSENTER raises #GP */
    mv->tripwire_armed = true;
}

static void mixed_x86_restore_real(CPUState *cs)
{
    AccelCPUState *mv = cs->accel;
    CPUX86State *env = cpu_env(cs);

    env->idt.limit = mv->real_idt_limit;
    env->lstar = mv->real_lstar;
    env->cstar = mv->real_cstar;
    env->sysenter_cs = mv->real_sysenter_cs;
}

void mixed_x86_tcg_to_kvm(CPUState *cs, VcpuAccelMove *t, Error **errp)
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
    if (!mixed_state()->kvm_runs_kernel) {
        mixed_x86_arm_tripwire(cs);
    }
    t1 = mixed_now_ns();

    ret = kvm_arch_put_registers(cs, KVM_PUT_RUNTIME_STATE, errp);
    if (mv->tripwire_armed) {
        mixed_x86_restore_real(cs);   /* QEMU keeps the real values */
    }
    if (ret) {
        mv->tripwire_armed = false;
        return;
    }
    cs->vcpu_dirty = false;
    t2 = mixed_now_ns();

    if (mixed_state()->kvm_shadow_mmu) {
        ret = mixed_x86_zap_shadow_mmu();
    } else {
        ret = mixed_x86_flush_kvm_tlb(cs);
    }
    if (ret < 0) {
        error_setg_errno(errp, -ret, "mixed: flushing vCPU %d's KVM TLB",
                         cs->cpu_index);
        return;
    }
    cs->kvm_run->immediate_exit = 0;

    t->get_ns = t1 - t0;
    t->put_ns = t2 - t1;
    t->flush_ns = mixed_now_ns() - t2;
}
