#include "simulator.h"

#include <algorithm>
#include <cmath>

namespace mixedvm {
namespace {

SimResult EmptyResult(const char* policy, size_t n) {
  SimResult r;
  r.policy = policy;
  for (auto* v : {&r.work_s, &r.kvm_s, &r.tcg_s, &r.tcg_user_s, &r.move_s, &r.idle_s,
                  &r.entries, &r.zaps})
    v->assign(n, 0);
  r.moves.assign(n, 0);
  r.tcg_insns.assign(n, 0);
  return r;
}

// The cumulative counters QEMU would report, as the scheduler samples them.
// QEMU's kernel-entries counts tripwires, entries from KVM only, and never goes back.
void FillSamples(const SimResult& r, const std::vector<double>& kvm_entries,
                 const std::vector<Backend>& placed, double now,
                 std::vector<MixedvmVcpuSample>& samples) {
  for (size_t i = 0; i < samples.size(); ++i) {
    MixedvmVcpuSample& s = samples[i];
    s.now_ns = uint64_t(now * 1e9);
    s.kvm_ns = uint64_t(r.kvm_s[i] * 1e9);
    s.tcg_ns = uint64_t(r.tcg_s[i] * 1e9);
    s.tcg_user_ns = uint64_t(r.tcg_user_s[i] * 1e9);
    s.idle_ns = uint64_t(r.idle_s[i] * 1e9);
    s.tcg_insns = r.tcg_insns[i];
    s.move_ns = uint64_t(r.move_s[i] * 1e9);
    s.moves = r.moves[i];
    s.tcg_user_returns = uint64_t(r.entries[i]);
    s.kernel_entries = uint64_t(kvm_entries[i]);
    s.shadow_zaps = uint64_t(r.zaps[i]);
    s.running = MixedvmBackend(placed[i]);
  }
}

}  // namespace

SimResult Simulate(const HostModel& host, const std::vector<Phase>& phases,
                   std::unique_ptr<Policy> policy, std::vector<Backend> initial,
                   double period_s) {
  const size_t n = initial.size();
  SimResult r = EmptyResult(policy->Name(), n);
  Scheduler sched(std::move(policy), initial, host.kvm_runs_kernel);
  sched.SetKvmUserIps(host.native_ips);
  std::vector<MixedvmVcpuSample> samples(n);
  std::vector<double> kvm_entries(n, 0);
  std::vector<Backend> placed = initial;
  double now = 0;
  auto sample = [&] { FillSamples(r, kvm_entries, placed, now, samples); };
  // Wall time per second of native user work, and where it goes.
  struct Split {
    double kvm = 0, tcg = 0, tcg_user = 0, move = 0, moves = 0, entries = 0, zaps = 0;
  };
  auto split = [&](const Behavior& b, Backend on) {
    const double kernel_per_user = b.kernel_share / (1 - b.kernel_share);
    Split s;
    s.entries = b.entries_per_s;
    if (on == Backend::kKvm && host.kvm_runs_kernel) {
      s.moves = 2 * b.entries_per_s * 0.1;   // only interrupts leave KVM there
      s.kvm = 1 + kernel_per_user;
    } else if (on == Backend::kKvm) {
      // Its own zaps: rebuilt inside KVM, counted as KVM time.
      s.kvm = 1 + b.entries_per_s * b.flushes_per_entry * host.zap_cost_s;
      s.tcg = kernel_per_user;
      s.moves = 2 * b.entries_per_s;
      s.zaps = b.entries_per_s * b.flushes_per_entry;
    } else {
      s.tcg_user = b.tcg_slowdown;
      s.tcg = s.tcg_user + kernel_per_user;
    }
    s.move = s.moves * host.move_latency_s;
    return s;
  };
  sample();
  sched.Decide(samples, placed);
  for (const Phase& phase : phases) {
    for (double t = 0; t < phase.seconds - 1e-12; t += period_s) {
      // First the zaps of each vCPU, then the time they take from the others on KVM.
      std::vector<double> zaps(n, 0);
      double all_zaps = 0;
      for (size_t i = 0; i < n; ++i) {
        const Behavior& b = phase.vcpus[i];
        if (b.idle) continue;
        const Split s = split(b, placed[i]);
        zaps[i] = period_s / (s.kvm + s.tcg + s.move) * s.zaps;
        all_zaps += zaps[i];
      }
      for (size_t i = 0; i < n; ++i) {
        const Behavior& b = phase.vcpus[i];
        if (b.idle) {
          r.tcg_s[i] += period_s;  // a halted vCPU waits on TCG
          r.idle_s[i] += period_s;
          continue;
        }
        const Split s = split(b, placed[i]);
        const double lost = placed[i] == Backend::kKvm
                                ? std::min(period_s, (all_zaps - zaps[i]) * host.zap_cost_s)
                                : 0;
        const double work = (period_s - lost) / (s.kvm + s.tcg + s.move);
        r.work_s[i] += work;
        r.kvm_s[i] += work * s.kvm + lost;
        r.tcg_s[i] += work * s.tcg;
        r.tcg_user_s[i] += work * s.tcg_user;
        r.tcg_insns[i] += uint64_t(work * s.tcg * host.native_ips / b.tcg_slowdown);
        r.move_s[i] += work * s.move;
        r.moves[i] += uint64_t(work * s.moves + 0.5);
        r.entries[i] += work * s.entries;
        if (placed[i] == Backend::kKvm && !host.kvm_runs_kernel) kvm_entries[i] += work * s.entries;
        r.zaps[i] += zaps[i];
      }
      now += period_s;
      sample();
      std::vector<Backend> next(n);
      r.placement_changes += sched.Decide(samples, next);
      for (size_t i = 0; i < n; ++i) {
        if (next[i] != placed[i]) r.moves[i] += 1;
      }
      placed = next;
      r.placements.push_back(placed);
    }
  }
  r.wall_s = now;
  return r;
}

WorkResult SimulateWork(const HostCosts& host, const std::vector<std::vector<Segment>>& work,
                        std::unique_ptr<Policy> policy, std::vector<Backend> initial,
                        double period_s, double limit_s, double idle_before_s) {
  const size_t n = initial.size();
  WorkResult w;
  w.sim = EmptyResult(policy->Name(), n);
  w.done_s.assign(n, 0);
  SimResult& r = w.sim;
  Scheduler sched(std::move(policy), initial, host.kvm_runs_kernel);
  sched.SetKvmUserIps(host.native_ips);
  std::vector<MixedvmVcpuSample> samples(n);
  std::vector<double> kvm_entries(n, 0);
  std::vector<Backend> placed = initial;
  std::vector<size_t> seg(n, 0);        // the segment each vCPU is in
  std::vector<double> progress(n, 0);   // how much of it is done, 0..1
  auto done = [&](size_t i) { return i >= work.size() || seg[i] >= work[i].size(); };
  // A vCPU runs guest code on KVM when it is placed there and its segment has
  // user code: a syscall loop or a sleeper is on TCG nearly all of its time.
  // A vCPU runs guest code on KVM when it is placed there and its segment has
  // user code: a syscall loop or a sleeper is on TCG nearly all of its time.
  auto running_on_kvm = [&](size_t i) {
    return !done(i) && placed[i] == Backend::kKvm && work[i][seg[i]].user_s > 0;
  };
  auto others_placed_on_kvm = [&](size_t i) {
    unsigned k = 0;
    for (size_t j = 0; j < n; ++j) k += j != i && placed[j] == Backend::kKvm;
    return k;
  };
  // A whole segment's time, per placement.
  struct Split {
    double kvm = 0, tcg = 0, tcg_user = 0, idle = 0, move = 0, moves = 0, zaps = 0, kvm_entries = 0;
    double total() const { return kvm + tcg + move; }
  };
  auto split = [&](const Segment& g, Backend on, unsigned others) {
    Split s;
    s.idle = g.stints * g.halt_s;
    if (on == Backend::kKvm && host.kvm_runs_kernel) {
      s.kvm = g.user_s + g.stints * host.entry_tcg_s / g.tcg_slowdown + s.idle;
    } else if (on == Backend::kKvm) {
      s.zaps = g.stints * host.zaps_per_stint;
      const double rebuild =
          std::max(0.0, host.entry_kvm_s - host.round_trip_s - host.entry_tcg_s);
      s.kvm = g.user_s + g.stints * rebuild + s.zaps * host.zap_wait_s * others;
      s.tcg = g.stints * host.entry_tcg_s + s.idle;
      s.moves = 2 * g.stints;
      s.move = g.stints * host.round_trip_s;
      s.kvm_entries = g.stints;
    } else {
      s.tcg_user = g.tcg_slowdown * g.user_s;
      s.tcg = s.tcg_user + g.stints * host.entry_tcg_s + s.idle;
    }
    return s;
  };
  // The VM was booted and idle before the work began, as in the bench: the policy
  // has seen halted vCPUs, and the placement is as old as that.
  double now = -idle_before_s, timed_from = 0;
  auto halt = [&](size_t i, double seconds) {
    (placed[i] == Backend::kKvm && host.kvm_runs_kernel ? r.kvm_s : r.tcg_s)[i] += seconds;
    r.idle_s[i] += seconds;
  };
  FillSamples(r, kvm_entries, placed, now, samples);
  sched.Decide(samples, placed);
  while (now < limit_s) {
    const bool started = now > -1e-9;
    bool all_done = started;
    for (size_t i = 0; i < n && all_done; ++i) all_done = done(i);
    if (all_done) break;
    // The zaps each vCPU makes this period, at its current segment's rate.
    std::vector<double> zaps(n, 0);
    double all_zaps = 0;
    for (size_t i = 0; i < n && started; ++i) {
      if (done(i)) continue;
      const Split s = split(work[i][seg[i]], placed[i], others_placed_on_kvm(i));
      zaps[i] = s.total() > 0 ? std::min(s.zaps, period_s / s.total() * s.zaps) : 0;
      all_zaps += zaps[i];
    }
    for (size_t i = 0; i < n; ++i) {
      if (!started) {
        halt(i, period_s);
        continue;
      }
      double left = period_s;
      if (running_on_kvm(i)) left -= std::min(period_s, (all_zaps - zaps[i]) * host.zap_wait_s);
      r.kvm_s[i] += period_s - left;
      while (left > 0 && !done(i)) {
        const Segment& g = work[i][seg[i]];
        const Split s = split(g, placed[i], others_placed_on_kvm(i));
        const double rest = (1 - progress[i]) * s.total();
        const double f = rest <= left ? 1 - progress[i] : left / s.total();
        r.work_s[i] += f * g.user_s;
        r.kvm_s[i] += f * s.kvm;
        r.tcg_s[i] += f * s.tcg;
        r.tcg_user_s[i] += f * s.tcg_user;
        r.idle_s[i] += f * s.idle;
        r.move_s[i] += f * s.move;
        r.moves[i] += uint64_t(f * s.moves + 0.5);
        r.entries[i] += f * g.stints;
        r.zaps[i] += f * s.zaps;
        kvm_entries[i] += f * s.kvm_entries;
        r.tcg_insns[i] += uint64_t((f * (s.tcg - s.idle)) * host.native_ips / g.tcg_slowdown);
        if (rest <= left) {
          left -= rest;
          if (g.mark) timed_from = std::max(timed_from, now + period_s - left);
          ++seg[i];
          progress[i] = 0;
          if (done(i)) w.done_s[i] = now + period_s - left;
        } else {
          progress[i] += f;
          left = 0;
        }
      }
      if (left > 0) halt(i, left);  // done: halted for the rest of the period
    }
    now += period_s;
    if (std::fabs(now) < 1e-9) now = 0;
    FillSamples(r, kvm_entries, placed, now, samples);
    std::vector<Backend> next(n);
    r.placement_changes += sched.Decide(samples, next);
    for (size_t i = 0; i < n; ++i) {
      if (next[i] != placed[i] && started) {
        r.moves[i] += 1;
        r.move_s[i] += host.round_trip_s / 2;
      }
    }
    placed = next;
    if (started) r.placements.push_back(placed);
  }
  r.wall_s = now;
  w.makespan_s = 0;
  for (size_t i = 0; i < n; ++i) {
    if (!done(i)) w.done_s[i] = limit_s;
    w.makespan_s = std::max(w.makespan_s, w.done_s[i] - timed_from);
  }
  return w;
}

}  // namespace mixedvm
