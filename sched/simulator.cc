#include "simulator.h"

namespace mixedvm {

SimResult Simulate(const HostModel& host, const std::vector<Phase>& phases,
                   std::unique_ptr<Policy> policy, std::vector<Backend> initial,
                   double period_s) {
  const size_t n = initial.size();
  SimResult r;
  r.policy = policy->Name();
  for (auto* v : {&r.work_s, &r.kvm_s, &r.tcg_s, &r.tcg_user_s, &r.move_s, &r.idle_s,
                  &r.entries, &r.zaps})
    v->assign(n, 0);
  r.moves.assign(n, 0);
  r.tcg_insns.assign(n, 0);
  Scheduler sched(std::move(policy), initial, host.kvm_runs_kernel);
  sched.SetKvmUserIps(host.native_ips);
  std::vector<MixedvmVcpuSample> samples(n);
  // QEMU's kernel-entries counts tripwires, entries from KVM only, and never goes back.
  std::vector<double> kvm_entries(n, 0);
  std::vector<Backend> placed = initial;
  double now = 0;
  auto sample = [&] {
    for (size_t i = 0; i < n; ++i) {
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
  };
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

}  // namespace mixedvm
