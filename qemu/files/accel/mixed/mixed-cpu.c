/*
 * mixed accelerator: the guest-visible x86 CPU
 *
 * One CPU for both backends: the CPU model and its CPUID rules (what both
 * KVM and TCG run, plus what mixed itself provides), the hypervisor leaves
 * TCG answers from KVM's table, the TSC timeline both read, and x2APIC MSRs
 * of vCPUs on KVM. docs/mixed.md, "The guest CPU", says why each default is
 * what it is.
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
#include "mixedvm/x86_state.h"
#include "trace.h"
#include <asm/prctl.h>
#include <sys/syscall.h>

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

/* ------------------------------------------------------------------------
 * CPUID at guest CPL3 where KVM runs guest user code natively (PVM)
 *
 * PVM runs guest user code on the host CPU without intercepting CPUID, so
 * by default user code reads the host's CPUID while the guest kernel, on
 * TCG, reads the model; and XGETBV reads the host's XCR0 unless the guest set
 * CR4.OSXSAVE, because KVM loads the guest's XCR0 only then. A process then
 * picks instructions (AVX-512, RTM) that TCG cannot run after a move.
 *
 * user-cpuid=trap: the vCPU thread turns on the host's CPUID faulting
 * (arch_prctl(ARCH_SET_CPUID, 0)) while the vCPU is on KVM. PVM leaves the
 * hardware setting of a thread that asked for it alone, and emulates the
 * faulting CPUID from KVM's table, which is the model (KVM_SET_CPUID2): every
 * guest program sees one CPU at every CPL on both backends. QEMU's own code
 * never runs CPUID on a vCPU thread while the vCPU is on KVM.
 *
 * user-cpuid=host, where the host cannot fault CPUID: TCG answers CPL3 CPUID
 * as the host does too (x-user-cpuid-host), the model carries every host
 * user-mode feature TCG implements, and XSAVE so that the guest's XCR0 is in
 * force on KVM. What TCG cannot run is reported at start.
 */
bool mixed_x86_cpuid_faulting(CPUState *cs, bool on, Error **errp)
{
    AccelCPUState *mv = cs->accel;

    if (mv->cpuid_faulting == on) {
        return true;
    }
    if (syscall(SYS_arch_prctl, ARCH_SET_CPUID, on ? 0 : 1)) {
        error_setg_errno(errp, errno, "mixed: vCPU %d: cannot turn CPUID "
                         "faulting %s", cs->cpu_index, on ? "on" : "off");
        return false;
    }
    mv->cpuid_faulting = on;
    return true;
}

/* Can this thread fault CPUID? Leaves it not faulting. */
static bool mixed_host_can_fault_cpuid(void)
{
    if (syscall(SYS_arch_prctl, ARCH_SET_CPUID, 0)) {
        return false;   /* ENODEV: the CPU or the kernel cannot */
    }
    if (syscall(SYS_arch_prctl, ARCH_SET_CPUID, 1)) {
        error_report("mixed: cannot turn CPUID faulting off again: %s",
                     strerror(errno));
        abort();        /* every CPUID of this thread would now fault */
    }
    return true;
}

bool mixed_x86_choose_user_cpuid(MixedState *s, Error **errp)
{
    bool can_fault;

    if (s->kvm_runs_kernel) {
        if (strcmp(s->user_cpuid, "auto")) {
            error_setg(errp, "mixed: user-cpuid=%s: this host's KVM "
                       "intercepts CPUID at every privilege level, so guest "
                       "user code already sees the guest CPU model; remove "
                       "the option", s->user_cpuid);
            return false;
        }
        return true;
    }
    can_fault = mixed_host_can_fault_cpuid();
    if (!strcmp(s->user_cpuid, "trap") && !can_fault) {
        error_setg(errp, "mixed: user-cpuid=trap: this host cannot fault "
                   "CPUID (arch_prctl(ARCH_SET_CPUID) is refused; the CPU "
                   "has no cpuid_fault); use user-cpuid=host");
        return false;
    }
    s->user_cpuid_trap = can_fault && strcmp(s->user_cpuid, "host");
    s->user_cpuid_host = !s->user_cpuid_trap;
    if (s->user_cpuid_host && !strcmp(s->user_cpuid, "auto")) {
        warn_report("mixed: this host cannot fault CPUID, so guest user code "
                    "sees the host's CPUID on both backends (user-cpuid="
                    "host); see docs/mixed.md, \"One guest-visible CPU\"");
    }
    trace_mixed_user_cpuid(s->user_cpuid_trap ? "trap" : "host", can_fault);
    return true;
}

/*
 * Instructions that unprivileged code can use, by feature word. Under
 * user-cpuid=host guest user code picks its instructions from the host CPU
 * whatever model QEMU shows, so TCG must accept every one of these that it
 * implements, or a process would get #UD after a move.
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
                    CPUID_7_0_EBX_HLE | CPUID_7_0_EBX_RTM |
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

    if (!mixed_state()->user_cpuid_host) {
        return 0;   /* CPUID is intercepted: user code sees the model */
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

/*
 * Nested virtualisation: neither handover carries a vCPU's nested state, so
 * mixed offers none of it, even where KVM (nested=1, kvm-amd's default) and
 * TCG both would. -cpu max then leaves it out and says so; an explicit +vmx
 * or +svm is refused (mixed_x86_check_cpu).
 */
static bool mixed_nested_virt_word(FeatureWord w)
{
    switch (w) {
    case FEAT_SVM:
    case FEAT_VMX_PROCBASED_CTLS:
    case FEAT_VMX_SECONDARY_CTLS:
    case FEAT_VMX_PINBASED_CTLS:
    case FEAT_VMX_EXIT_CTLS:
    case FEAT_VMX_ENTRY_CTLS:
    case FEAT_VMX_MISC:
    case FEAT_VMX_EPT_VPID_CAPS:
    case FEAT_VMX_BASIC:
    case FEAT_VMX_VMFUNC:
        return true;
    default:
        return false;
    }
}

uint64_t mixed_x86_supported_feature_word(int w, uint64_t kvm_word)
{
    uint64_t own = mixed_own_features(w);

    if (mixed_nested_virt_word(w)) {
        return 0;
    }
    if (w == FEAT_1_ECX) {
        kvm_word &= ~CPUID_EXT_VMX;
    } else if (w == FEAT_8000_0001_ECX) {
        kvm_word &= ~CPUID_EXT3_SVM;
    }

    /* KVM's own report still decides invtsc: it masks it with the host's. */
    if (w == FEAT_8000_0007_EDX) {
        own &= kvm_word;
    }
    return ((kvm_word | mixed_native_user_isa(w)) &
            feature_word_info[w].tcg_features) | own;
}

/*
 * IA32_ARCH_CAPABILITIES' "not affected" bits, on every model unless the user
 * says otherwise: those that both backends can truly claim. TCG executes
 * nothing speculatively (patch 0017); KVM reports what holds for the host
 * CPU, on which guest code runs when a vCPU is on KVM. A guest that learns it
 * is not affected by Meltdown does not isolate its page tables, whose CR3
 * writes on every kernel entry would otherwise make each move into a
 * shadow-MMU KVM zap it (docs/mixed.md, "The guest CPU").
 */
static void mixed_guest_arch_capabilities(X86CPU *cpu)
{
    uint64_t both = kvm_arch_get_supported_msr_feature(kvm_state,
                                                       MSR_IA32_ARCH_CAPABILITIES) &
                    feature_word_info[FEAT_ARCH_CAPABILITIES].tcg_features;

    if (both) {
        cpu->env.features[FEAT_7_0_EDX] |= CPUID_7_0_EDX_ARCH_CAPABILITIES;
        cpu->env.features[FEAT_ARCH_CAPABILITIES] |= both;
    }
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
    mixed_guest_arch_capabilities(cpu);
    for (i = 0; i < ARRAY_SIZE(mixed_user_isa); i++) {
        FeatureWord w = mixed_user_isa[i].w;

        cpu->env.features[w] |= mixed_native_user_isa(w) &
                                feature_word_info[w].tcg_features;
    }
    cpu->user_cpuid_host = mixed_state()->user_cpuid_host;
}

/*
 * Under user-cpuid=host: host instructions that guest user code sees in
 * CPUID but TCG cannot execute. Those whose state the guest's XCR0 leaves
 * out (AVX-512, AMX) fault on KVM as well; the others run on KVM and raise
 * #UD after a move to TCG, and nothing can hide them: say which.
 */
static void mixed_report_unhidable_features(X86CPU *cpu)
{
    static const FeatureWord words[] = {
        FEAT_1_ECX, FEAT_7_0_EBX, FEAT_7_0_ECX, FEAT_7_0_EDX, FEAT_7_1_EAX,
        FEAT_8000_0001_ECX,
    };
    /* Features of the kernel's, or that the guest kernel must enable. */
    static const char *const kernel_only[] = {
        "fsgsbase", "tsc-adjust", "sgx", "smep", "smap", "invpcid", "mpx",
        "intel-pt", "pcommit", "umip", "la57", "pku", "ospke", "pks", "sgxlc",
        "rdt-m", "rdt-a", "fdp-excptn-only", "zero-fcs-fds", "vmx", "svm",
        NULL
    };
    g_autoptr(GString) gated = g_string_new(NULL);
    g_autoptr(GString) open_ = g_string_new(NULL);
    int i, bit;

    if (!mixed_state()->user_cpuid_host) {
        return;
    }
    for (i = 0; i < ARRAY_SIZE(words); i++) {
        FeatureWordInfo *wi = &feature_word_info[words[i]];
        uint64_t missing = mixed_host_cpuid_word(wi) &
                           ~cpu->env.features[words[i]];

        for (bit = 0; bit < 32; bit++) {
            const char *name = wi->feat_names[bit];

            if (!(missing & BIT_ULL(bit)) || !name ||
                (words[i] == FEAT_1_ECX && bit != 1 && bit != 12 &&
                 bit != 28 && bit != 29) ||
                (words[i] == FEAT_7_0_EDX && !g_str_has_prefix(name, "avx") &&
                 !g_str_has_prefix(name, "amx")) ||
                g_strv_contains(kernel_only, name)) {
                continue;   /* not an instruction set user code would pick */
            }
            g_string_append_printf(g_str_has_prefix(name, "avx512") ||
                                   g_str_has_prefix(name, "amx") ? gated : open_,
                                   " %s", name);
        }
    }
    if (open_->len) {
        warn_report("mixed: user-cpuid=host: guest user code sees these host "
                    "instructions, which TCG cannot run; a process that uses "
                    "them gets #UD after a move to TCG:%s", open_->str);
    }
    if (gated->len) {
        info_report("mixed: user-cpuid=host: guest user code sees%s in the "
                    "host's CPUID, but the guest's XCR0 leaves their state "
                    "out, so software that checks XGETBV does not use them",
                    gated->str);
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
    mixed_report_unhidable_features(cpu);
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
                    "provide on this host, or that mixed cannot hand over "
                    "(vmx, svm):%s", names->str);
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
    if (mixed_state()->user_cpuid_host && !(env->features[FEAT_1_ECX] & CPUID_EXT_XSAVE)) {
        error_setg(errp, "mixed: user-cpuid=host needs xsave in the guest "
                   "CPU: without it the guest never sets CR4.OSXSAVE, KVM "
                   "leaves the host's XCR0 in force for guest user code, and "
                   "the guest kernel would not save the vector state that "
                   "code can then use; add +xsave or use -cpu max");
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
    return mixed_x86_check_cpu(cs, errp) &&
           mixed_x86_pin_tsc_frequency(cs, errp);
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

    /* x-lazy-put: target/i386/kvm keeps what KVM holds of each vCPU */
    kvm_put_only_changes = mixed_state()->lazy_put;
    /* x-sync-regs: registers, segments and events through kvm_run */
    kvm_sync_regs = mixed_state()->sync_regs;
    if (mixed_state()->user_get_mode == MIXED_USER_GET_ON &&
        (X86_CPU(cs)->enable_pmu || X86_CPU(cs)->hyperv_features ||
         X86_CPU(cs)->hyperv_passthrough)) {
        /*
         * Performance counters and Hyper-V's VP runtime count while user
         * mode runs: a user-mode get would leave them behind.
         */
        error_setg(errp, "mixed: x-user-get=on cannot keep a virtual PMU's "
                   "counters or Hyper-V's VP runtime (pmu=on, hv-*)");
        return false;
    }
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
    /* A ratio whose product Linux's 32-bit arithmetic cannot overflow. */
    if (!mixedvm_tsc_leaf_ratio(env->tsc_khz, env->apic_bus_freq / 1000,
                                ebx, eax)) {
        return false;
    }
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
 * The guest CPU elsewhere: migration (mixed-migration.c)
 */

/*
 * With invtsc, QEMU blocks migration unless the TSC frequency is pinned
 * (tsc-frequency=), because a destination on a host with another frequency
 * would change the guest's TSC rate under it. Both backends run the guest
 * TSC at the host's rate, so pin it to that: a destination whose KVM cannot
 * run that rate refuses the stream ("Mismatch between user-specified TSC
 * frequency and migrated TSC frequency", or KVM_SET_TSC_KHZ fails), rather
 * than showing the guest a second clock rate. Before the vCPU exists:
 * kvm_arch_init_vcpu decides on the blocker.
 */
bool mixed_x86_pin_tsc_frequency(CPUState *cs, Error **errp)
{
    CPUX86State *env = cpu_env(cs);
    int khz;

    if (env->user_tsc_khz ||
        !(env->features[FEAT_8000_0007_EDX] & CPUID_APM_INVTSC)) {
        return true;
    }
    khz = kvm_check_extension(kvm_state, KVM_CAP_VM_TSC_CONTROL) ?
          kvm_vm_ioctl(kvm_state, KVM_GET_TSC_KHZ) : -ENOTSUP;
    if (khz <= 0) {
        warn_report_once("mixed: this host's KVM cannot report its TSC "
                         "frequency (KVM_CAP_VM_TSC_CONTROL): without "
                         "tsc-frequency=, QEMU blocks migration and snapshots "
                         "of a guest with invtsc");
        return true;
    }
    env->tsc_khz = env->user_tsc_khz = khz;
    return true;
}

/*
 * The -cpu option under which a -accel tcg QEMU of this tree shows the guest
 * this vCPU's CPU: the model, then every named bit of every feature word the
 * guest sees (mixed_stream_compared_word's), on or off, and the identity.
 * TCG warns about, and drops, the few that it cannot offer (invtsc). Built
 * once: the guest CPU is fixed once realized, and query-vcpu-accel, which
 * benches poll twice a second, returns it.
 */
static char *mixed_x86_build_tcg_cpu_option(CPUState *cs)
{
    X86CPU *cpu = X86_CPU(cs);
    CPUX86State *env = &cpu->env;
    g_autofree char *model =
        cpu_model_from_type(object_class_get_name(object_get_class(OBJECT(cpu))));
    g_autofree char *vendor = object_property_get_str(OBJECT(cpu), "vendor",
                                                      NULL);
    g_autofree char *model_id = object_property_get_str(OBJECT(cpu),
                                                        "model-id", NULL);
    g_auto(GStrv) id_parts = g_strsplit(model_id ? model_id : "", ",", -1);
    g_autofree char *model_id_escaped = g_strjoinv(",,", id_parts);
    GString *opt = g_string_new(model);
    int w, bit;

    for (w = 0; w < FEATURE_WORDS; w++) {
        FeatureWordInfo *wi = &feature_word_info[w];

        if (w != FEAT_ARCH_CAPABILITIES &&
            (wi->type != CPUID_FEATURE_WORD ||
             (wi->cpuid.eax >= 0x40000000 && wi->cpuid.eax <= 0x4fffffff))) {
            continue;
        }
        for (bit = 0; bit < 64; bit++) {
            if (wi->feat_names[bit]) {
                g_string_append_printf(opt, ",%s=%s", wi->feat_names[bit],
                                       env->features[w] & BIT_ULL(bit) ?
                                       "on" : "off");
            }
        }
    }
    g_string_append_printf(opt, ",vendor=%s,family=%" PRId64 ",model=%" PRId64
                           ",stepping=%" PRId64 ",level=%u,xlevel=%u"
                           ",model-id=%s",
                           vendor,
                           object_property_get_int(OBJECT(cpu), "family", NULL),
                           object_property_get_int(OBJECT(cpu), "model", NULL),
                           object_property_get_int(OBJECT(cpu), "stepping",
                                                   NULL),
                           env->cpuid_level, env->cpuid_xlevel,
                           model_id_escaped);
    if (env->tsc_khz) {
        g_string_append_printf(opt, ",tsc-frequency=%" PRId64,
                               env->tsc_khz * 1000);
    }
    return g_string_free(opt, false);
}

const char *mixed_x86_tcg_cpu_option(CPUState *cs)
{
    static char *option;

    if (!option) {
        option = mixed_x86_build_tcg_cpu_option(cs);
    }
    return option;
}
