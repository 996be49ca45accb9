#include "simulator.h"

namespace mixedvm {

SimResult Simulate(const HostModel& host, const std::vector<Phase>& phases,
                   std::unique_ptr<Policy> policy, std::vector<Backend> initial,
                   double period_s) {
  const size_t n = initial.size();
  SimResult r;
  r.policy = policy->Name();
  r.work_s.assign(n, 0);
  r.kvm_s.assign(n, 0);
  r.tcg_s.assign(n, 0);
  r.tcg_user_s.assign(n, 0);
  r.move_s.assign(n, 0);
  r.moves.assign(n, 0);
  r.tcg_insns.assign(n, 0);
  Scheduler sched(std::move(policy), initial, host.kvm_runs_kernel);
  sched.SetKvmUserIps(host.native_ips);
  std::vector<MixedvmVcpuSample> samples(n);
  std::vector<Backend> placed = initial;
  double now = 0;
  auto sample = [&] {
    for (size_t i = 0; i < n; ++i) {
      MixedvmVcpuSample& s = samples[i];
      s.now_ns = uint64_t(now * 1e9);
      s.kvm_ns = uint64_t(r.kvm_s[i] * 1e9);
      s.tcg_ns = uint64_t(r.tcg_s[i] * 1e9);
      s.tcg_user_ns = uint64_t(r.tcg_user_s[i] * 1e9);
      s.tcg_insns = r.tcg_insns[i];
      s.move_ns = uint64_t(r.move_s[i] * 1e9);
      s.moves = r.moves[i];
      s.running = MixedvmBackend(placed[i]);
    }
  };
  sample();
  sched.Decide(samples, placed);
  for (const Phase& phase : phases) {
    for (double t = 0; t < phase.seconds - 1e-12; t += period_s) {
      for (size_t i = 0; i < n; ++i) {
        const Behavior& b = phase.vcpus[i];
        if (b.idle) {
          r.tcg_s[i] += period_s;  // a halted vCPU waits on TCG
          continue;
        }
        // Wall time per second of native user work, and where it goes.
        const double kernel_per_user = b.kernel_share / (1 - b.kernel_share);
        double kvm = 0, tcg = 0, tcg_user = 0, move = 0, moves = 0;
        if (placed[i] == Backend::kKvm && host.kvm_runs_kernel) {
          moves = 2 * b.entries_per_s * 0.1;   // only interrupts leave KVM there
          kvm = 1 + kernel_per_user;
          move = moves * host.move_latency_s;
        } else if (placed[i] == Backend::kKvm) {
          kvm = 1;
          tcg = kernel_per_user;
          moves = 2 * b.entries_per_s;
          move = moves * host.move_latency_s;
        } else {
          tcg_user = b.tcg_slowdown;
          tcg = tcg_user + kernel_per_user;
        }
        const double wall_per_work = kvm + tcg + move;
        const double work = period_s / wall_per_work;
        r.work_s[i] += work;
        r.kvm_s[i] += work * kvm;
        r.tcg_s[i] += work * tcg;
        r.tcg_user_s[i] += work * tcg_user;
        r.tcg_insns[i] += uint64_t(work * tcg * host.native_ips / b.tcg_slowdown);
        r.move_s[i] += work * move;
        r.moves[i] += uint64_t(work * moves + 0.5);
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
