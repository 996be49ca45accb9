/*
 * mixedvm KVM start-up probe: can this host's KVM run guest kernel code?
 *
 * On VT-x/AMD-V hosts KVM runs guest code natively at every privilege level.
 * On hosts whose /dev/kvm is PVM (kvm_pvm, no hardware virtualization) only
 * guest user code (CPL3) runs natively; guest kernel code (CPL0) is emulated
 * in the host kernel, about 5000x slower, and real kernels soon hit
 * instructions the emulator rejects (docs/host-kvm.md).
 * A mixed guest on such a host must keep its kernel code on TCG.
 *
 * QEMU calls this once at start-up. The probe creates a throw-away VM per
 * measurement, times a 64-bit countdown loop at CPL3 and at CPL0, and closes
 * everything before it returns. Guest execution is bounded by a timer
 * (about 20 ms per privilege level), so a pathologically slow KVM cannot
 * stall start-up; on this project's PVM hosts the whole probe takes about
 * 10 ms.
 *
 * While it runs, the probe blocks one real-time signal in the calling thread
 * (SIGRTMAX, or a lower one if that is already pending), uses it as a timer
 * signal that can only interrupt KVM_RUN, and restores the thread's signal
 * mask before returning. It installs no signal handler. An instance of that
 * signal that another party sends to the process during the probe may be
 * consumed by it.
 *
 * Same rules as mixedvm.h: plain C, never throws, never prints.
 */
#ifndef MIXEDVM_KVM_PROBE_H
#define MIXEDVM_KVM_PROBE_H

#include <stdbool.h>
#include <stddef.h>

#include "mixedvm/mixedvm.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct MixedvmKvmProbe {
    /* /dev/kvm opened, a VM and a vCPU were created and ran */
    bool kvm_usable;
    /* CPL0 runs at a rate comparable to CPL3 (decision rule below) */
    bool kernel_code_native;
    /* 0 if the CPL3 loop could not run */
    double cpl3_loops_per_sec;
    /* 0 if CPL0 could not run (emulation failure etc.) */
    double cpl0_loops_per_sec;
    /* KVM exit reason of the CPL0 run (KVM_EXIT_HLT expected); KVM_EXIT_INTR
     * if the run hit the time bound, -1 if no CPL0 run happened (VM set-up
     * or KVM_RUN itself failed) */
    int cpl0_exit_reason;
    /* One human-readable line, NUL-terminated, e.g. "KVM runs CPL3 at
     * 4.1e+09 loops/s; CPL0 is 5162x slower (7.9e+05 loops/s, emulated):
     * guest kernel code must run on TCG" */
    char summary[200];
} MixedvmKvmProbe;

/*
 * Probes the KVM device dev_path (NULL means "/dev/kvm").
 *
 * Returns false, with a message in err (if errlen > 0) such as
 * "cannot open /dev/kvm: No such file or directory", only when KVM cannot be
 * used at all: the device cannot be opened or is not KVM, no VM or vCPU can
 * be created or run, or the probe cannot bound its own run time. *out is then
 * zeroed (if out is not NULL).
 *
 * Otherwise returns true and fills *out, with kvm_usable = true.
 *
 * Decision rule:
 *     kernel_code_native = cpl0_exit_reason == KVM_EXIT_HLT
 *                          && cpl0_loops_per_sec >= cpl3_loops_per_sec / 10
 * The CPL0 loop ends with HLT, so any other exit means the kernel-mode code
 * did not run to completion (emulation failure, time bound). The factor 10
 * absorbs measurement noise: native CPL0 runs at about the CPL3 rate, while
 * the PVM emulator is three orders of magnitude slower.
 */
bool mixedvm_kvm_probe(const char *dev_path, MixedvmKvmProbe *out,
                       char *err, size_t errlen) MIXEDVM_NOEXCEPT;

#ifdef __cplusplus
}
#endif

#endif /* MIXEDVM_KVM_PROBE_H */
