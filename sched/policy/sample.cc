// sample: every vCPU spends a share of its time on TCG, in turn.
//
// Mechanism. The vCPUs live on KVM; a window of ceil(share x n) of them is on
// TCG, and it rotates to the next vCPUs every `slot` periods, so over time
// each vCPU spends about `share` of its time on TCG. The moves this causes
// are measured: if they take more than `budget` of the vCPUs' time, the slot
// doubles (fewer rotations); if far less, it halves again, down to 1.
//
// Wins: analysis users who instrument TCG (plugins, tracing) and want every
// vCPU covered while the workload mostly runs at native speed.
// Loses: the sampled vCPUs run slower while on TCG, which stretches barrier-
// synchronised parallel code by the slowest vCPU; and the sample is of
// wall-clock time, not of instructions.
#include <algorithm>
#include <cmath>

#include "policy.h"

namespace mixedvm {
namespace {

class SamplePolicy final : public Policy {
 public:
  const char* Name() const override { return "sample"; }

  std::vector<Param> Params() override {
    return {
        {"share", &share_, 0.0, 1.0, "share of each vCPU's time on TCG"},
        {"slot", &slot_, 1, 10000, "periods a window stays before it rotates"},
        {"budget", &budget_, 0.0, 1.0, "largest share of vCPU time spent moving"},
    };
  }

  void Decide(const HostInfo&, std::span<const VcpuPeriod> periods,
              std::span<Backend> out) override {
    const size_t n = periods.size();
    if (n == 0) return;
    double move_s = 0, total_s = 0;
    for (const VcpuPeriod& p : periods) {
      move_s += p.move_s;
      total_s += p.period_s;
    }
    if (total_s > 0) {
      const double overhead = move_s / total_s;
      if (overhead > budget_) {
        slot_ = std::min(slot_ * 2, 10000.0);
      } else if (overhead < budget_ / 4 && slot_ > slot_min_) {
        slot_ = std::max(slot_ / 2, slot_min_);
      }
    }
    const size_t window = share_ <= 0 ? 0 : size_t(std::ceil(share_ * double(n)));
    if (++age_ >= slot_) {
      age_ = 0;
      start_ = (start_ + std::max<size_t>(window, 1)) % n;
    }
    for (size_t i = 0; i < n; ++i) {
      const size_t pos = (i + n - start_) % n;
      out[i] = pos < window ? Backend::kTcg : Backend::kKvm;
    }
  }

 private:
  double share_ = 0.25;
  double slot_ = 5;
  double slot_min_ = 5;
  double budget_ = 0.05;
  double age_ = 0;
  size_t start_ = 0;
};

}  // namespace

std::unique_ptr<Policy> MakeSamplePolicy() { return std::make_unique<SamplePolicy>(); }

}  // namespace mixedvm
