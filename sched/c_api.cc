// The C boundary of the scheduler side of libmixedvm: the scheduler and its
// telemetry record, host topology and pinning, the vCPU list syntax. The KVM
// and x86 helpers QEMU calls (sched/kvm/) keep their C entry points beside
// their code. Every entry point is noexcept (sched/c_boundary.h).
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>

#include "cpu_list.h"
#include "c_boundary.h"
#include "mixedvm/cpu_list.h"
#include "mixedvm/mixedvm.h"
#include "mixedvm/pinning.h"
#include "mixedvm/sched.h"
#include "scheduler.h"
#include "topology.h"
#include "trace_record.h"

#include <urcu/urcu-memb.h>

using mixedvm::Guarded;
using mixedvm::WriteError;

// The opaque handles of the C API.
struct MixedvmPinner {
  std::unique_ptr<mixedvm::Pinner> pinner;
};

struct MixedvmScheduler {
  mixedvm::Scheduler scheduler;
};

namespace {

std::unique_ptr<mixedvm::Policy> MakeConfiguredPolicy(const char* name, const char* params,
                                                      char* err, std::size_t errlen) {
  auto policy = mixedvm::MakePolicy(name ? name : "");
  if (!policy) {
    std::string known;
    for (const auto& e : mixedvm::PolicyTable()) known += std::string(known.empty() ? "" : ", ") + e.name;
    WriteError(err, errlen, std::string("unknown policy '") + (name ? name : "") + "' (known: " + known + ")");
    return nullptr;
  }
  std::string error;
  if (params && *params && !policy->SetParams(params, &error)) {
    WriteError(err, errlen, std::string("policy ") + name + ": " + error);
    return nullptr;
  }
  return policy;
}

// Runs change(scheduler) for vCPU i if it exists; otherwise says so in err.
template <typename Change>
bool ChangeVcpu(MixedvmScheduler* s, unsigned i, char* err, size_t errlen, Change change) {
  return Guarded(err, errlen, [&] {
    if (i >= s->scheduler.size()) {
      WriteError(err, errlen, "vCPU " + std::to_string(i) + " does not exist");
      return false;
    }
    change(s->scheduler);
    return true;
  });
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

size_t mixedvm_sched_policies(const MixedvmPolicyInfo** out) noexcept {
  static const std::vector<MixedvmPolicyInfo> infos = [] {
    std::vector<MixedvmPolicyInfo> v;
    for (const auto& e : mixedvm::PolicyTable()) v.push_back({e.name, e.summary});
    return v;
  }();
  *out = infos.data();
  return infos.size();
}

MixedvmScheduler* mixedvm_sched_new(const char* policy, const char* params, unsigned n,
                                    const MixedvmBackend* initial, bool kvm_runs_kernel,
                                    char* err, size_t errlen) noexcept {
  MixedvmScheduler* s = nullptr;
  Guarded(err, errlen, [&] {
    auto p = MakeConfiguredPolicy(policy, params, err, errlen);
    if (!p) return false;
    std::vector<mixedvm::Backend> placed(n);
    for (unsigned i = 0; i < n; ++i) placed[i] = mixedvm::Backend(initial[i]);
    s = new MixedvmScheduler{mixedvm::Scheduler(std::move(p), std::move(placed), kvm_runs_kernel)};
    return true;
  });
  return s;
}

void mixedvm_sched_free(MixedvmScheduler* s) noexcept { delete s; }

void mixedvm_sched_set_kvm_user_ips(MixedvmScheduler* s, double ips) noexcept {
  s->scheduler.SetKvmUserIps(ips);
}

bool mixedvm_sched_set_policy(MixedvmScheduler* s, const char* policy, const char* params,
                              char* err, size_t errlen) noexcept {
  return Guarded(err, errlen, [&] {
    auto p = MakeConfiguredPolicy(policy, params, err, errlen);
    if (!p) return false;
    s->scheduler.SetPolicy(std::move(p));
    return true;
  });
}

const char* mixedvm_sched_policy(MixedvmScheduler* s) noexcept { return s->scheduler.policy().Name(); }

size_t mixedvm_sched_params(MixedvmScheduler* s, char* buf, size_t len) noexcept {
  std::string d;
  Guarded(nullptr, 0, [&] {
    d = s->scheduler.policy().DescribeParams();
    return true;
  });
  if (buf && len) std::snprintf(buf, len, "%s", d.c_str());
  return d.size();
}

unsigned mixedvm_sched_decide(MixedvmScheduler* s, const MixedvmVcpuSample* samples, unsigned n,
                              MixedvmBackend* out) noexcept {
  unsigned changed = 0;
  Guarded(nullptr, 0, [&] {
    std::vector<mixedvm::Backend> placed(n);
    changed = s->scheduler.Decide(std::span(samples, n), placed);
    for (unsigned i = 0; i < n; ++i) out[i] = MixedvmBackend(placed[i]);
    return true;
  });
  return changed;
}

bool mixedvm_sched_take_ejection(MixedvmScheduler* s, char* why, size_t len) noexcept {
  const std::string reason = s->scheduler.TakeEjection();
  if (reason.empty()) return false;
  WriteError(why, len, reason);
  return true;
}

bool mixedvm_sched_request(MixedvmScheduler* s, unsigned i, MixedvmBackend b, char* err,
                           size_t errlen) noexcept {
  return ChangeVcpu(s, i, err, errlen,
                    [&](mixedvm::Scheduler& sched) { sched.Request(i, mixedvm::Backend(b)); });
}

bool mixedvm_sched_set_hold(MixedvmScheduler* s, unsigned i, bool hold, char* err,
                            size_t errlen) noexcept {
  return ChangeVcpu(s, i, err, errlen,
                    [&](mixedvm::Scheduler& sched) { sched.SetHold(i, hold); });
}

bool mixedvm_sched_held(MixedvmScheduler* s, unsigned i) noexcept {
  return s->scheduler.Held(i);
}

namespace {
bool CopyLine(const std::string& line, char* buf, size_t len) {
  if (buf == nullptr || line.size() + 1 > len) return false;
  std::memcpy(buf, line.c_str(), line.size() + 1);
  return true;
}
}  // namespace

bool mixedvm_trace_header(char* buf, size_t len) noexcept {
  return Guarded(nullptr, 0, [&] { return CopyLine(mixedvm::TraceHeader(), buf, len); });
}

bool mixedvm_trace_line(const MixedvmVcpuSample* sample, unsigned vcpu, MixedvmBackend placed,
                        char* buf, size_t len) noexcept {
  return Guarded(nullptr, 0, [&] {
    return CopyLine(mixedvm::FormatTraceRecord({*sample, vcpu, placed}), buf, len);
  });
}

MixedvmBackend mixedvm_sched_placement(MixedvmScheduler* s, unsigned i) noexcept {
  return MixedvmBackend(s->scheduler.Placement(i));
}

void mixedvm_sched_register_thread(void) noexcept { urcu_memb_register_thread(); }
void mixedvm_sched_unregister_thread(void) noexcept { urcu_memb_unregister_thread(); }

bool mixedvm_pin_mode_parse(const char* name, MixedvmPinMode* out, char* err,
                            size_t errlen) noexcept {
  const std::string n = name ? name : "";
  if (n == "off") *out = MIXEDVM_PIN_OFF;
  else if (n == "compact") *out = MIXEDVM_PIN_COMPACT;
  else if (n == "split") *out = MIXEDVM_PIN_SPLIT;
  else {
    WriteError(err, errlen, "unknown pin mode '" + n + "' (off, compact, split)");
    return false;
  }
  return true;
}

MixedvmPinner* mixedvm_pinner_new(MixedvmPinMode mode, const char* xml_path, unsigned nvcpus,
                                  char* err, size_t errlen) noexcept {
  MixedvmPinner* p = nullptr;
  Guarded(err, errlen, [&] {
    std::string error;
    auto pinner = mixedvm::Pinner::Create(mode, xml_path ? xml_path : "", nvcpus, &error);
    if (!pinner) {
      WriteError(err, errlen, error);
      return false;
    }
    p = new MixedvmPinner{std::move(pinner)};
    return true;
  });
  return p;
}

void mixedvm_pinner_free(MixedvmPinner* p) noexcept { delete p; }

int mixedvm_pinner_cpus(MixedvmPinner* p, unsigned vcpu, bool on_kvm, int* cpus,
                        int max) noexcept {
  const auto& v = p->pinner->Cpus(vcpu, on_kvm);
  for (int i = 0; i < max && size_t(i) < v.size(); ++i) cpus[i] = v[size_t(i)];
  return int(v.size());
}

bool mixedvm_pinner_apply(MixedvmPinner* p, unsigned vcpu, bool on_kvm, char* err,
                          size_t errlen) noexcept {
  return Guarded(err, errlen, [&] {
    std::string error;
    if (!p->pinner->Apply(vcpu, on_kvm, &error)) {
      WriteError(err, errlen, error);
      return false;
    }
    return true;
  });
}

}  // extern "C"
