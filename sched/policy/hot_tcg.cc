// hot-tcg: vCPUs whose recent work KVM does badly go to TCG; the rest to KVM.
//
// Mechanism. A vCPU placed on KVM reports, per period, how its wall time
// split: executing on KVM (kvm_s), executing on TCG (tcg_s: guest kernel code
// on a PVM host, event delivery everywhere) and moving between them (move_s,
// each move's measured latency). Its "heat" is the share of the period KVM
// did not run it natively: (tcg_s + move_s) / period. A syscall-, interrupt-
// or exit-heavy vCPU on PVM spends most of its time on TCG and in moves: hot,
// so it goes to TCG, where kernel entries cost nothing extra. A vCPU doing
// user-mode compute spends most of its time on KVM: cold, so it stays.
// A vCPU placed on TCG cannot be measured on KVM from there, so it gets a
// trial placement on KVM every probe-every periods, unless its own TCG time
// already proves it hot: on a host whose KVM runs only user mode, its heat
// on KVM is at least the kernel share of its TCG time (measured at the
// privilege changes), so a vCPU above `hot` there is not tried. If the trial shows it
// hot, it goes back and the interval doubles (up to probe-max); if cold, it
// stays on KVM. Decisions use hysteresis (heat above hot to leave KVM, below
// cold to stay after a trial), a minimum residency in periods, and a budget
// of placement changes per period for the whole VM, so nothing ping-pongs.
// Every cost is measured on the running host: move latency and time on each
// backend come from the vCPU's own counters.
//
// Progress. Time alone would send a vCPU to TCG whose user code TCG runs
// far slower than KVM (floating point: 10x and more), although it gets more
// done on KVM even with its moves. So heat is a necessary condition, not a
// sufficient one: a hot vCPU leaves KVM only if it would progress faster on
// TCG. On TCG it would get its KVM time plus the time its moves took, at
// its TCG instruction rate (guest instructions per TCG second, counted by
// TCG and remembered from its last stretch there); on KVM it got its KVM
// time at KVM's native rate (the start-up probe's user-mode loop, a
// best-case rate, which leans towards keeping vCPUs on KVM). Without both
// rates, heat decides alone.
//
// Wins: mixed workloads, where compute threads and I/O or syscall threads
// sit on different vCPUs: the compute gets native speed, and the rest
// avoids paying two moves per kernel entry. Phase changes are followed
// within a few periods.
// Loses: a vCPU that alternates faster than the period (heat averages out),
// and very short trials on PVM, which pay a move per kernel entry while they
// last. KVM's rate is the host's, not the vCPU's (no PMU in the guests this
// runs on), and TCG's rate mixes the vCPU's kernel and user code, so the
// progress comparison is an estimate.
#include <algorithm>
#include <vector>

#include "policy.h"

namespace mixedvm {
namespace {

class HotTcgPolicy final : public Policy {
 public:
  const char* Name() const override { return "hot-tcg"; }

  std::vector<Param> Params() override {
    return {
        {"hot", &hot_, 0.0, 1.0, "heat above which a KVM-placed vCPU goes to TCG"},
        {"cold", &cold_, 0.0, 1.0, "heat below which a trial on KVM is kept"},
        {"min-residency", &min_residency_, 1, 1000, "periods before a placement may change"},
        {"budget", &budget_, 1, 1024, "placement changes per period, whole VM"},
        {"probe-every", &probe_every_, 1, 10000, "periods between trials of a TCG vCPU on KVM"},
        {"probe-max", &probe_max_, 1, 100000, "longest interval between trials"},
        {"progress", &progress_, 0, 1, "1: leave KVM only where TCG gets more done; 0: heat alone"},
    };
  }

  void Decide(const HostInfo& host, std::span<const VcpuPeriod> periods,
              std::span<Backend> out) override {
    if (state_.size() != periods.size()) state_.assign(periods.size(), VcpuState{probe_every_});
    struct Candidate {
      unsigned vcpu;
      Backend to;
      double priority;  // higher first
    };
    std::vector<Candidate> candidates;
    for (unsigned i = 0; i < periods.size(); ++i) {
      const VcpuPeriod& p = periods[i];
      VcpuState& st = state_[i];
      if (p.period_s <= 0) continue;
      if (p.placed == Backend::kKvm) {
        const double heat = std::clamp((p.tcg_s + p.move_s) / p.period_s, 0.0, 1.0);
        const bool tcg_is_slower = progress_ >= 0.5 && ProgressesFasterOnKvm(host, p, st);
        if (st.on_trial) {
          st.on_trial = false;
          if (heat < cold_ || tcg_is_slower) {
            st.interval = probe_every_;   // it belongs on KVM
          } else {
            st.interval = std::min(st.interval * 2, probe_max_);
            st.wait = st.interval;
            candidates.push_back({i, Backend::kTcg, 1.0 + heat});
          }
          continue;
        }
        if (heat > hot_ && p.periods_placed >= min_residency_ && !tcg_is_slower) {
          st.wait = st.interval;
          candidates.push_back({i, Backend::kTcg, heat});
        }
      } else {
        if (p.tcg_s >= kMinRateSample && p.tcg_insns > 0) {
          const double rate = double(p.tcg_insns) / p.tcg_s;
          st.tcg_ips = st.tcg_ips > 0 ? 0.7 * st.tcg_ips + 0.3 * rate : rate;
        }
        if (p.periods_placed < min_residency_) continue;
        // Where KVM runs only user mode, a vCPU's heat on KVM is at least its
        // kernel share of TCG time: the kernel work stays on TCG, and KVM can
        // only shrink the user part and add moves. A vCPU already hotter than
        // that on TCG would fail its trial, so it does not get one.
        if (!host.kvm_runs_kernel && p.tcg_s > 0 && 1 - p.tcg_user_s / p.tcg_s > hot_) continue;
        st.wait -= 1;
        if (st.wait <= 0) candidates.push_back({i, Backend::kKvm, 0.5});
      }
    }
    // Spend the budget on the hottest vCPUs first, then on trials.
    std::sort(candidates.begin(), candidates.end(),
              [](const Candidate& a, const Candidate& b) { return a.priority > b.priority; });
    const size_t n = std::min(candidates.size(), size_t(budget_));
    for (size_t k = 0; k < n; ++k) {
      const Candidate& c = candidates[k];
      out[c.vcpu] = c.to;
      if (c.to == Backend::kKvm) state_[c.vcpu].on_trial = true;
    }
  }

 private:
  struct VcpuState {
    double wait;            // periods until the next trial on KVM
    double interval = 0;    // current interval between trials
    bool on_trial = false;
    double tcg_ips = 0;     // its guest instructions per second on TCG; 0 = unknown
    explicit VcpuState(double every) : wait(every), interval(every) {}
  };

  // Seconds of TCG time in a period below which its rate is too noisy to keep.
  static constexpr double kMinRateSample = 0.01;

  // Would this vCPU, hot on KVM, get less done on TCG? (See "Progress".)
  static bool ProgressesFasterOnKvm(const HostInfo& host, const VcpuPeriod& p,
                                    const VcpuState& st) {
    if (host.kvm_user_ips <= 0 || st.tcg_ips <= 0) return false;
    return p.kvm_s * host.kvm_user_ips > (p.kvm_s + p.move_s) * st.tcg_ips;
  }

  double hot_ = 0.6;
  double cold_ = 0.3;
  double min_residency_ = 2;
  double budget_ = 2;
  double probe_every_ = 10;
  double probe_max_ = 160;
  double progress_ = 1;
  std::vector<VcpuState> state_;
};

}  // namespace

std::unique_ptr<Policy> MakeHotTcgPolicy() { return std::make_unique<HotTcgPolicy>(); }

}  // namespace mixedvm
