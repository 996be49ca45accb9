// static: keep the placement the vCPUs have.
//
// Mechanism: none. Whatever the command line (tcg-cpus=/kvm-cpus=) or a QMP
// vcpu-set-accel placed stays placed.
//
// Wins: experiments that must control placement exactly (the static mixes
// of the NPB runs), and debugging, where a moving vCPU hides the cause.
// Loses: whenever the workload changes phase; nothing adapts.
#include "policy.h"

namespace mixedvm {
namespace {

class StaticPolicy final : public Policy {
 public:
  const char* Name() const override { return "static"; }
  void Decide(const HostInfo&, std::span<const VcpuPeriod>, std::span<Backend>) override {}
};

}  // namespace

std::unique_ptr<Policy> MakeStaticPolicy() { return std::make_unique<StaticPolicy>(); }

}  // namespace mixedvm
