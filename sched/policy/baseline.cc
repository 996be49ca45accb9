// kvm-only and tcg-only: every vCPU on one backend, the baselines of every
// experiment.
//
// Mechanism: each period, place every vCPU on the one backend (a QMP move is
// undone at the next period). On a host whose KVM cannot run guest kernel
// code (PVM), "kvm-only" means every vCPU on KVM whenever it is in guest user
// mode; its kernel code runs on TCG, because nothing else can run it there.
//
// Wins: as reference points. kvm-only is the best case for user-mode compute
// with few kernel entries; tcg-only is what plain MTTCG gives.
// Loses: kvm-only on PVM pays two moves per kernel entry, so syscall- and
// interrupt-heavy vCPUs crawl; tcg-only never uses the hardware.
#include "policy.h"

namespace mixedvm {
namespace {

class OneBackendPolicy final : public Policy {
 public:
  OneBackendPolicy(const char* name, Backend backend) : name_(name), backend_(backend) {}
  const char* Name() const override { return name_; }
  void Decide(const HostInfo&, std::span<const VcpuPeriod>, std::span<Backend> out) override {
    for (Backend& b : out) b = backend_;
  }

 private:
  const char* name_;
  Backend backend_;
};

}  // namespace

std::unique_ptr<Policy> MakeKvmOnlyPolicy() {
  return std::make_unique<OneBackendPolicy>("kvm-only", Backend::kKvm);
}
std::unique_ptr<Policy> MakeTcgOnlyPolicy() {
  return std::make_unique<OneBackendPolicy>("tcg-only", Backend::kTcg);
}

}  // namespace mixedvm
