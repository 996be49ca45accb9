// The C boundary. Every entry point is noexcept and catches everything:
// QEMU is C and unwinds with siglongjmp, so no C++ exception may leave here.
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>

#include "cpu_list.h"
#include "kvm_probe.h"
#include "mixedvm/kvm_probe.h"
#include "mixedvm/mixedvm.h"
#include "topology.h"

namespace {

void WriteError(char* err, std::size_t errlen, const std::string& message) {
  if (err == nullptr || errlen == 0) return;
  std::snprintf(err, errlen, "%s", message.c_str());
}

// Runs fn (which returns true on success, or writes err and returns false),
// turning any exception into an error message.
template <typename Fn>
bool Guarded(char* err, std::size_t errlen, Fn&& fn) noexcept {
  try {
    return fn();
  } catch (const std::exception& e) {
    WriteError(err, errlen, std::string("internal error: ") + e.what());
  } catch (...) {
    WriteError(err, errlen, "internal error: unknown exception");
  }
  return false;
}

}  // namespace

extern "C" {

const char* mixedvm_version(void) noexcept { return MIXEDVM_VERSION; }

bool mixedvm_parse_cpu_list(const char* text, bool* selected, size_t n,
                            char* err, size_t errlen) noexcept {
  return Guarded(err, errlen, [&] {
    auto r = mixedvm::ParseCpuList(text ? text : "", n);
    if (!r.ok) {
      WriteError(err, errlen, r.error);
      return false;
    }
    for (std::size_t i = 0; i < n; ++i) selected[i] = r.selected[i];
    return true;
  });
}

bool mixedvm_topology_discover(const char* xml_path, MixedvmTopology* out,
                               char* err, size_t errlen) noexcept {
  return Guarded(err, errlen, [&] {
    auto r = mixedvm::DiscoverTopology(xml_path ? xml_path : "");
    if (!r.topology) {
      WriteError(err, errlen, r.error);
      return false;
    }
    *out = *r.topology;
    return true;
  });
}

bool mixedvm_kvm_probe(const char* dev_path, MixedvmKvmProbe* out, char* err,
                       size_t errlen) noexcept {
  return Guarded(err, errlen, [&] {
    if (out == nullptr) {
      WriteError(err, errlen, "mixedvm_kvm_probe: out is NULL");
      return false;
    }
    *out = MixedvmKvmProbe{};
    auto r = mixedvm::ProbeKvm(dev_path ? dev_path : "");
    if (!r.probe) {
      WriteError(err, errlen, r.error);
      return false;
    }
    *out = *r.probe;
    return true;
  });
}

}  // extern "C"
