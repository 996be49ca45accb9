// The one table of placement policies. Add a policy here and in
// sched/meson.build; its file opens with an essay on when it wins and loses.
#include <array>

#include "policy.h"

namespace mixedvm {

std::unique_ptr<Policy> MakeStaticPolicy();
std::unique_ptr<Policy> MakeKvmOnlyPolicy();
std::unique_ptr<Policy> MakeTcgOnlyPolicy();
std::unique_ptr<Policy> MakeHotTcgPolicy();
std::unique_ptr<Policy> MakeSamplePolicy();

namespace {

constexpr std::array kPolicies = {
    PolicyEntry{"static", "keep the command-line or QMP placement", MakeStaticPolicy},
    PolicyEntry{"kvm-only", "every vCPU on KVM (on PVM: whenever in user mode)", MakeKvmOnlyPolicy},
    PolicyEntry{"tcg-only", "every vCPU on TCG", MakeTcgOnlyPolicy},
    PolicyEntry{"hot-tcg", "vCPUs busy in the kernel, exits or moves go to TCG; compute to KVM",
                MakeHotTcgPolicy},
    PolicyEntry{"sample", "every vCPU on TCG for at least share of every window, in turn", MakeSamplePolicy},
};

}  // namespace

std::span<const PolicyEntry> PolicyTable() { return kPolicies; }

std::unique_ptr<Policy> MakePolicy(std::string_view name) {
  for (const PolicyEntry& e : kPolicies) {
    if (name == e.name) return e.make();
  }
  return nullptr;
}

}  // namespace mixedvm
