// hot-tcg: each vCPU where the VM gets more done, from an explicit cost model.
//
// The model. In a period, a vCPU that is not halted does guest work of three
// kinds, which the policy estimates from its counters (VcpuPeriod):
//   U  guest user code, in native seconds (what KVM takes for it);
//   K  guest kernel code, in seconds on TCG;
//   N  kernel stints: system calls, faults and interrupts that took it from
//      user mode into the kernel and back (returns to user mode on TCG).
// Halted time (idle_s) is no work for either backend and is left out of both
// sides: a vCPU that waits at a barrier or sleeps is not "doing badly on KVM".
// With s = TCG's slowdown on this vCPU's code (KVM's native instruction rate
// over the vCPU's TCG rate) and c = a round trip KVM -> TCG -> KVM (its own
// measured move latencies), the wall time of that work is, where KVM runs only
// guest user mode (PVM):
//   on TCG:  T_tcg = s·U + K
//   on KVM:  T_kvm = U + K + N·c + X
// X is what its zaps cost: each entry into KVM after a TLB flush zaps the
// VM's shadow MMU, and this vCPU and every other vCPU on KVM then rebuild
// their shadow pages. X = zaps · zap-us · (1 + other vCPUs on KVM), with zaps
// per stint measured while it was on KVM. The rebuild happens inside KVM, so
// QEMU counts it as KVM time: it is taken out of U (zaps · zap-us), or a
// vCPU that zaps on every entry looks like heavy user work on KVM. Where KVM runs kernel code (VT-x,
// AMD-V), W = native work (user and kernel) and O = what leaving KVM for
// event delivery costs per second of W (measured on KVM, 0 until then):
//   on TCG:  T_tcg = s·W          on KVM:  T_kvm = W·(1 + O)
// The vCPU goes where its T is smaller by more than `margin`; otherwise it
// stays. Each side is predicted from what is measured on the other, so no
// trial placement is needed, and nothing locks in: every input is a moving
// average over about two periods, restarted at a phase change (the kernel-
// entry rate `phase` times up or down, two periods running), and every period
// decides afresh. Moves are
// rationed by `budget` per period for the VM, the largest gains first, and a
// placement lasts at least `min-residency` periods.
//
// Estimating the inputs. On KVM under PVM: U = kvm_s + tcg_user_s/s (user
// code that ran on TCG between a return and the move back), K = tcg_s -
// tcg_user_s - idle_s, N = returns to user on TCG, c = 2·move_s/moves. On TCG:
// U = tcg_user_s/s, K = tcg_s - tcg_user_s - idle_s, N likewise. s comes from
// the vCPU's TCG instruction rate (tcg_insns over its busy TCG time) and the
// start-up probe's native rate; without both it is `tcg-slowdown`.
//
// Where the model is wrong:
// - s mixes the vCPU's kernel and user code (TCG counts both), and KVM's rate
//   is the probe's integer loop, not this vCPU's code: floating-point code is
//   slowed more than s says, and memory-bound code less.
// - X assumes a zap costs every KVM vCPU `zap-us`; the rebuild is really
//   proportional to the pages each of them touches next, and `zap-us` is the
//   host's: the default, 380 us, is the rebuild per kernel entry of the PVM host
//   of 2026-12-04 with page-table isolation (bench/hosts/pvm-2026-12-04.toml).
//   Set below the host's, the rebuild reads as user work: a syscall-bound vCPU
//   looks like compute and stays on KVM (the simulator loses `phases` below
//   about 250 us on that host's costs; docs/scheduler.md).
// - It treats the vCPUs as independent: two threads that wait for each other
//   (a barrier, a lock) gain from the slower one's speed-up more than it says.
// - Behaviour that alternates faster than the period averages out.
// - On VT-x/AMD-V it keeps nearly everything on KVM: that is right for speed,
//   and instrumentation users should use `sample` instead.
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
        {"margin", &margin_, 0.0, 0.9, "relative gain a move must promise (hysteresis)"},
        {"min-residency", &min_residency_, 1, 1000, "periods before a placement may change"},
        {"budget", &budget_, 1, 1024, "placement changes per period, whole VM"},
        {"tcg-slowdown", &default_slowdown_, 1, 1000,
         "TCG's slowdown on guest code when no instruction rates are known"},
        {"move-us", &default_move_us_, 0, 100000, "one move's cost before any is measured"},
        {"zap-us", &zap_us_, 0, 100000,
         "cost of one shadow-MMU zap to each other vCPU on KVM"},
        {"smoothing", &alpha_, 0.05, 1.0, "weight of the newest period in the averages"},
        {"phase", &phase_, 1.5, 1000,
         "a kernel-entry rate this many times the average's, or a part of it, is a new "
         "phase: the averages restart from it"},
    };
  }

  void Decide(const HostInfo& host, std::span<const VcpuPeriod> periods,
              std::span<Backend> out) override {
    if (state_.size() != periods.size()) state_.assign(periods.size(), VcpuState{});
    unsigned on_kvm = 0;
    for (const VcpuPeriod& p : periods) on_kvm += p.placed == Backend::kKvm;

    struct Candidate {
      unsigned vcpu;
      Backend to;
      double gain;  // seconds saved per second of work, larger first
    };
    std::vector<Candidate> candidates;
    for (unsigned i = 0; i < periods.size(); ++i) {
      const VcpuPeriod& p = periods[i];
      VcpuState& st = state_[i];
      if (p.period_s <= 0) continue;
      Learn(host, p, st);
      if (!st.known || p.periods_placed < min_residency_) continue;
      const Costs c = Predict(host, st, on_kvm - (p.placed == Backend::kKvm));
      if (c.work <= 0) continue;  // halted all along: nothing to weigh
      const double here = p.placed == Backend::kKvm ? c.kvm : c.tcg;
      const double there = p.placed == Backend::kKvm ? c.tcg : c.kvm;
      if (there < (1 - margin_) * here) {
        candidates.push_back({i, p.placed == Backend::kKvm ? Backend::kTcg : Backend::kKvm,
                              (here - there) / c.work});
      }
    }
    std::sort(candidates.begin(), candidates.end(),
              [](const Candidate& a, const Candidate& b) { return a.gain > b.gain; });
    const size_t n = std::min(candidates.size(), size_t(budget_));
    for (size_t k = 0; k < n; ++k) out[candidates[k].vcpu] = candidates[k].to;
  }

 private:
  // Moving averages, per second of wall time, of what the model needs.
  struct VcpuState {
    bool known = false;
    double user = 0;        // U: native seconds of user work
    double kernel = 0;      // K: kernel seconds on TCG
    double stints = 0;      // N
    double work = 0;        // W (VT-x): native seconds of work
    double tcg_ips = 0;     // its guest instructions per busy TCG second; 0 = unknown
    double round_trip = 0;  // c, seconds; 0 = not measured yet
    double zaps_per_stint = 0;
    double overhead = 0;    // O (VT-x): leaving KVM, per second of W
    int last_jump = 0;      // the last period's kernel-entry rate: +1 up, -1 down, 0 level
  };
  struct Costs {
    double tcg, kvm, work;
  };

  double Avg(double old, double now) const { return old + alpha_ * (now - old); }

  double Slowdown(const HostInfo& host, const VcpuState& st) const {
    if (host.kvm_user_ips > 0 && st.tcg_ips > 0)
      return std::max(1.0, host.kvm_user_ips / st.tcg_ips);
    return default_slowdown_;
  }

  void Learn(const HostInfo& host, const VcpuPeriod& p, VcpuState& st) {
    const double busy_tcg = std::max(0.0, p.tcg_s - p.idle_s);
    if (busy_tcg >= kMinRateSample && p.tcg_insns > 0) {
      const double rate = double(p.tcg_insns) / busy_tcg;
      st.tcg_ips = st.tcg_ips > 0 ? Avg(st.tcg_ips, rate) : rate;
    }
    if (p.moves >= 2) {
      const double rt = 2 * p.move_s / double(p.moves);
      st.round_trip = st.round_trip > 0 ? Avg(st.round_trip, rt) : rt;
    }
    const double s = Slowdown(host, st);
    const double per = 1 / p.period_s;
    const double user_on_tcg = std::min(p.tcg_user_s, busy_tcg);
    const double kernel = std::max(0.0, busy_tcg - user_on_tcg);
    const double stints = double(std::max(p.tcg_user_returns, p.kernel_entries));
    const bool kvm = p.placed == Backend::kKvm;
    double user, work;
    if (host.kvm_runs_kernel) {
      // Idle time is spent where the vCPU is placed; on KVM it is KVM time.
      const double busy_kvm = std::max(0.0, p.kvm_s - (kvm ? p.idle_s : 0));
      work = kvm ? busy_kvm : busy_tcg / s;
      user = work;
      if (kvm && busy_kvm > 0)
        st.overhead = Avg(st.overhead, (busy_tcg + p.move_s) / busy_kvm);
    } else {
      // KVM time is user code plus the shadow pages its own zaps made KVM rebuild,
      // which is no guest work: left in, a syscall-bound vCPU that zaps on every
      // entry looked like heavy user work, and TCG like ten times that.
      const double rebuilt = kvm ? std::min(p.kvm_s, p.shadow_zaps * zap_us_ * 1e-6) : 0;
      user = (kvm ? p.kvm_s - rebuilt : 0) + user_on_tcg / s;
      work = user;
      if (kvm && stints > 0)
        st.zaps_per_stint = Avg(st.zaps_per_stint, std::min(1.0, p.shadow_zaps / stints));
    }
    // The first period sets the averages, and so does a phase change: a kernel-entry
    // rate more than `phase` times the average's, or less than its part, in two
    // periods in a row and the same way. The first such period is held out of the
    // averages; the second restarts them from itself. A workload that flips every
    // period is noise, and the averages ride it out. Smoothed through a real
    // change, a vCPU whose system calls began kept its compute-phase U for periods
    // and stayed on KVM at a round trip per call.
    const double stints_now = stints * per;
    const int jump = !st.known ? 0
                     : stints_now > phase_ * st.stints + kMinPhaseStints ? 1
                     : st.stints > phase_ * stints_now + kMinPhaseStints ? -1 : 0;
    const bool first_of_phase = jump != 0 && jump != st.last_jump;
    const bool new_phase = jump != 0 && jump == st.last_jump;
    st.last_jump = jump;
    if (first_of_phase) return;
    const double a = st.known && !new_phase ? alpha_ : 1;
    st.user += a * (user * per - st.user);
    st.kernel += a * (kernel * per - st.kernel);
    st.stints += a * (stints * per - st.stints);
    st.work += a * (work * per - st.work);
    st.known = true;
  }

  Costs Predict(const HostInfo& host, const VcpuState& st, unsigned others_on_kvm) const {
    const double s = Slowdown(host, st);
    if (host.kvm_runs_kernel)
      return {s * st.work, st.work * (1 + st.overhead), st.work};
    const double rt = st.round_trip > 0 ? st.round_trip : 2 * default_move_us_ * 1e-6;
    // Each zap: this vCPU's rebuild, and every other KVM vCPU's.
    const double zaps = st.stints * st.zaps_per_stint * zap_us_ * 1e-6 * (1 + others_on_kvm);
    return {s * st.user + st.kernel, st.user + st.kernel + st.stints * rt + zaps,
            st.user + st.kernel};
  }

  // Seconds of busy TCG time in a period below which its rate is too noisy to keep.
  static constexpr double kMinRateSample = 0.01;
  // Kernel entries per second below which a change of rate is no phase change
  // (timer ticks come and go).
  static constexpr double kMinPhaseStints = 200;

  double margin_ = 0.1;
  double min_residency_ = 2;
  double budget_ = 2;
  double default_slowdown_ = 10;
  double default_move_us_ = 60;
  double zap_us_ = 380;  // the PVM host of 2026-12-04: bench/hosts/pvm-2026-12-04.toml
  double alpha_ = 0.5;
  double phase_ = 4;
  std::vector<VcpuState> state_;
};

}  // namespace

std::unique_ptr<Policy> MakeHotTcgPolicy() { return std::make_unique<HotTcgPolicy>(); }

}  // namespace mixedvm
