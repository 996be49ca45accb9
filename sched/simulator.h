// A model of vCPUs under -accel mixed, for testing policies and comparing
// them offline (tools/mixedvm-sim): it turns a workload's behaviour and a
// placement into the counters QEMU would report, and counts useful work.
#pragma once

#include <string>
#include <vector>

#include "scheduler.h"

namespace mixedvm {

// What a vCPU's workload does, per phase.
struct Behavior {
  double kernel_share = 0;    // share of its work that is guest kernel code
  double entries_per_s = 0;   // kernel entries per second of user work
  double tcg_slowdown = 10;   // user code on TCG runs this many times slower
  bool idle = false;          // halted: no work to do
  // Share of its kernel stints that flush the TLB (a context switch, an munmap):
  // on PVM, its next entry into KVM zaps the VM's shadow MMU.
  double flushes_per_entry = 0;
};

struct Phase {
  double seconds;
  std::vector<Behavior> vcpus;
};

struct HostModel {
  bool kvm_runs_kernel = false;   // PVM: kernel code always runs on TCG
  double move_latency_s = 60e-6;  // one move, either way (measured: docs/mixed.md)
  // Native guest instructions per second; 0 = the policies get no instruction
  // counts. TCG runs a vCPU's code at native_ips / its tcg_slowdown.
  double native_ips = 0;
  // What one shadow-MMU zap costs each vCPU on KVM (PVM), the zapper as much
  // as the others: its shadow pages are rebuilt, inside KVM, so QEMU counts
  // that time as KVM time as it counts the guest's user code. 0 = zaps cost
  // nothing. On the PVM host of 2026-12-04, with the guest isolating its page
  // tables (a zap per entry), a getppid() loop spent 373 us in KVM per kernel
  // entry (docs/scheduler.md).
  double zap_cost_s = 0;
};

struct SimResult {
  std::string policy;
  double wall_s = 0;
  std::vector<double> work_s;      // user work done per vCPU, in native seconds
  std::vector<double> kvm_s, tcg_s, tcg_user_s, move_s, idle_s;
  std::vector<double> entries, zaps;  // kernel stints and shadow zaps, as counted
  std::vector<uint64_t> tcg_insns;
  std::vector<uint64_t> moves;     // backend switches
  uint64_t placement_changes = 0;
  std::vector<std::vector<Backend>> placements;  // per period
};

// Runs `phases` under `policy`, deciding every `period_s`.
SimResult Simulate(const HostModel& host, const std::vector<Phase>& phases,
                   std::unique_ptr<Policy> policy, std::vector<Backend> initial,
                   double period_s = 0.1);

// Fixed work, for makespans (bench/scenarios.py's scenarios): what one vCPU must
// do, one segment after another, counted in what the workload is, not in time.
struct Segment {
  double user_s = 0;      // user code, in native seconds
  double stints = 0;      // kernel stints: system calls, sleeps
  double halt_s = 0;      // halted per stint (a sleep's wait)
  double tcg_slowdown = 10;
  bool mark = false;      // no work: the timed part begins here (NPB times its
                          // kernel, not its initialisation)
};

// What a host charges for that work: a per-host cost file (bench/host_costs.py,
// which a host report fills from its own measurements).
struct HostCosts {
  bool kvm_runs_kernel = false;
  double entry_tcg_s = 21e-6;    // one kernel stint on TCG, from user mode and back
  // One kernel stint of a vCPU placed on KVM, alone on KVM: its two moves, the
  // kernel code on TCG, and the shadow pages its zap makes KVM rebuild.
  double entry_kvm_s = 511e-6;
  double round_trip_s = 110e-6;  // the moves' part of it
  // What a zap costs beyond that per other vCPU placed on KVM: the zapper waits
  // for it, and, if it is running guest code there, it loses as much.
  double zap_wait_s = 154e-6;
  double zaps_per_stint = 1;     // 1 where the guest isolates its page tables (PVM, PTI)
  double native_ips = 1e9;       // gives the policies TCG instruction counts
};

struct WorkResult {
  SimResult sim;                 // counters, as Simulate's
  std::vector<double> done_s;    // when each vCPU finished its work
  // From the last vCPU's mark, if the work has marks, else from the start, to the
  // last vCPU's end: what the bench measures.
  double makespan_s = 0;
};

// Runs each vCPU's `work` to its end under `policy` (deciding every `period_s`);
// a vCPU with no work, or done with it, is halted. The VM idles `idle_before_s`
// first (booted, waiting for the work), which the makespan leaves out. Stops at
// `limit_s`.
WorkResult SimulateWork(const HostCosts& host, const std::vector<std::vector<Segment>>& work,
                        std::unique_ptr<Policy> policy, std::vector<Backend> initial,
                        double period_s = 0.1, double limit_s = 3600,
                        double idle_before_s = 1);

}  // namespace mixedvm
