// sample: every vCPU spends at least `share` of every window on TCG.
//
// For analysis users who instrument TCG (plugins, tracing) and want every vCPU
// covered while the workload mostly runs at native speed.
//
// The guarantee. Time is cut into windows of `window` periods. In each window
// every vCPU is placed on TCG for a stint of ceil(share x window) consecutive
// periods, and on KVM for the rest. The stints are staggered (vCPU i's starts
// at period floor(i x window / n) of the window), so about share x n vCPUs are
// on TCG at any time. The schedule repeats every `window` periods, so ANY
// `window` consecutive periods, not only aligned ones, hold exactly one stint
// of every vCPU. Placed on TCG, a vCPU executes only on TCG, and a plugin sees
// all it runs; on a host whose KVM cannot run guest kernel code a vCPU placed
// on KVM also runs its kernel on TCG, which adds coverage and never removes it.
// Stated for a user: "each vCPU is observable for at least share x window x
// period-ms of every window x period-ms", with the window that
// query-mixed-policy reports.
//
// The budget. A stint costs its vCPU two moves per window (in and out),
// whatever the share. When two of the VM's recent mean move latencies exceed
// `budget` of a window's time, the window doubles until they no longer do;
// it never shrinks below the window the user asked for. So the guarantee
// holds, over a longer window, whatever moves cost. It is the one in force:
// the window reported in the params.
//
// Where it is weaker than stated:
// - across a change of window (the budget, or a user's set-policy), the
//   schedule restarts at the change: the window that spans it may hold a
//   stint less or more;
// - a period is the policy timer's, in virtual time; a vCPU reaches its new
//   placement at its next safe point (on PVM, its next return to user mode
//   for a move to KVM), so a stint's edges are late by about one move;
// - a halted vCPU executes nothing wherever it is placed: coverage is of the
//   time it runs, and a plugin sees no instructions from an idle vCPU.
//
// Loses: the sampled vCPUs run slower while on TCG, which stretches barrier-
// synchronised parallel code by the slowest vCPU.
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
        {"share", &share_, 0.0, 1.0, "least share of every window each vCPU spends on TCG"},
        {"window", &window_, 1, 10000,
         "periods per window; grows while two moves cost more than budget of it"},
        {"budget", &budget_, 0.0, 1.0, "largest share of a window its two moves may take"},
    };
  }

  void Decide(const HostInfo&, std::span<const VcpuPeriod> periods,
              std::span<Backend> out) override {
    const size_t n = periods.size();
    if (n == 0) return;
    if (window_ != last_window_) {
      asked_window_ = window_;    // a user's new window: restart the schedule
      phase_ = 0;
    }
    double move_s = 0, moves = 0, period_s = 0;
    for (const VcpuPeriod& p : periods) {
      move_s += p.move_s;
      moves += double(p.moves);
      period_s = std::max(period_s, p.period_s);
    }
    if (moves > 0) {
      const double latency = move_s / moves;
      move_latency_s_ = move_latency_s_ > 0 ? 0.7 * move_latency_s_ + 0.3 * latency : latency;
    }
    // Two moves per window within budget; back towards the user's window when
    // they would fit in half of it (hysteresis against flapping).
    const auto two_moves_fit = [&](double window, double share_of_budget) {
      return 2 * move_latency_s_ <= share_of_budget * budget_ * window * period_s;
    };
    if (period_s > 0) {
      while (!two_moves_fit(window_, 1) && window_ < 10000) {
        window_ = std::min(window_ * 2, 10000.0);
        phase_ = 0;
      }
      while (window_ > asked_window_ && two_moves_fit(window_ / 2, 0.5)) {
        window_ = std::max(window_ / 2, asked_window_);
        phase_ = 0;
      }
    }
    last_window_ = window_;
    const size_t w = size_t(std::llround(window_));
    const size_t stint = size_t(std::ceil(share_ * double(w) - 1e-9));
    for (size_t i = 0; i < n; ++i) {
      const size_t offset = i * w / n;
      const size_t t = (phase_ + w - offset) % w;
      out[i] = t < stint ? Backend::kTcg : Backend::kKvm;
    }
    phase_ = (phase_ + 1) % w;
  }

 private:
  double share_ = 0.25;
  double window_ = 20;
  double budget_ = 0.05;
  double asked_window_ = 20;      // the user's window, before the budget grew it
  double last_window_ = 20;       // window_ as the last decision left it
  double move_latency_s_ = 0;     // the VM's recent mean move latency
  size_t phase_ = 0;              // period of the window the next decision is for
};

}  // namespace

std::unique_ptr<Policy> MakeSamplePolicy() { return std::make_unique<SamplePolicy>(); }

}  // namespace mixedvm
