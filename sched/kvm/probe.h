// The KVM start-up probe behind mixedvm_kvm_probe(). The C entry point lives
// in probe.cc next to it; this header exists so tests and tools can use
// the C++ form with its own limits.
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include "mixedvm/kvm_probe.h"

namespace mixedvm {

// How long the probe may execute guest code. The defaults keep the whole
// probe in the tens of milliseconds on every host: each timed run aims at
// run_target (long enough that the ~10 us cost of entering KVM is noise), and
// a timer cuts KVM_RUN off once a privilege level has used level_budget.
struct KvmProbeLimits {
  std::chrono::nanoseconds run_target = std::chrono::milliseconds(2);
  std::chrono::nanoseconds level_budget = std::chrono::milliseconds(20);
};

struct KvmProbeResult {
  std::optional<MixedvmKvmProbe> probe;  // set when KVM was usable
  std::string error;                     // set when it was not
};

// Probes the KVM device at dev_path (empty means "/dev/kvm").
KvmProbeResult ProbeKvm(const std::string& dev_path,
                        const KvmProbeLimits& limits = {});

// The decision rule documented in mixedvm/kvm_probe.h.
bool KernelCodeNative(double cpl3_loops_per_sec, double cpl0_loops_per_sec,
                      int cpl0_exit_reason);

}  // namespace mixedvm
