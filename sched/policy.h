// The placement-policy interface. A policy sees, each period, what every vCPU
// did since the last period, and says where each vCPU should be placed next.
//
// Writing a policy: subclass Policy in sched/policy/<name>.cc, open the file
// with an essay (mechanism, when it wins, when it loses), declare its tunable
// parameters in Params(), and add it to the table in sched/policy/table.cc.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "mixedvm/sched.h"

namespace mixedvm {

enum class Backend : uint8_t { kTcg = MIXEDVM_BACKEND_TCG, kKvm = MIXEDVM_BACKEND_KVM };

// What one vCPU did during the last period (differences of two samples).
struct VcpuPeriod {
  Backend placed = Backend::kTcg;   // placement during the period
  Backend running = Backend::kTcg;  // where it executes at the period's end
  double period_s = 0;
  double kvm_s = 0;                 // executing on KVM
  double tcg_s = 0;                 // executing on TCG
  double tcg_user_s = 0;            // the part of tcg_s in guest user mode
  uint64_t tcg_insns = 0;           // guest instructions TCG ran: its progress there
  uint64_t moves = 0;               // backend switches (including automatic ones)
  double move_s = 0;                // time those switches took
  uint64_t kernel_entries = 0;      // guest kernel entries that left KVM (PVM)
  uint64_t tcg_user_returns = 0;    // returns to guest user mode on TCG: kernel stints done there
  double idle_s = 0;                // the part of kvm_s + tcg_s spent halted: no work to do
  uint64_t shadow_zaps = 0;         // VM-wide shadow-MMU zaps its KVM entries needed (PVM)
  uint64_t kvm_exits = 0;
  uint32_t periods_placed = 0;      // periods since the placement last changed
};

struct HostInfo {
  bool kvm_runs_kernel = false;     // VT-x/AMD-V; false on PVM
  unsigned nvcpus = 0;
  double kvm_user_ips = 0;          // KVM's native user-mode instruction rate; 0 = unknown
};

// A tunable: name, current value, bounds, one line of documentation.
struct Param {
  const char* name;
  double* value;
  double min, max;
  const char* doc;
};

class Policy {
 public:
  virtual ~Policy() = default;
  virtual const char* Name() const = 0;

  // Where each vCPU should be placed for the next period.
  // REQUIRES: out.size() == periods.size() == host.nvcpus.
  // out[i] holds the current placement on entry; leaving it means "stay".
  virtual void Decide(const HostInfo& host, std::span<const VcpuPeriod> periods,
                      std::span<Backend> out) = 0;

  // The policy's tunables; empty for policies without any.
  virtual std::vector<Param> Params() { return {}; }

  // "key=value:key=value"; on error nothing is changed and *error says why.
  bool SetParams(std::string_view spec, std::string* error);
  std::string DescribeParams();
};

struct PolicyEntry {
  const char* name;
  const char* summary;
  std::unique_ptr<Policy> (*make)();
};

// The one table of policies (sched/policy/table.cc). No static-constructor
// registration: a static archive would drop it.
std::span<const PolicyEntry> PolicyTable();
std::unique_ptr<Policy> MakePolicy(std::string_view name);

}  // namespace mixedvm
