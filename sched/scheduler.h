// The scheduler: turns per-vCPU counters into periods, runs the policy, and
// publishes the placement it wants for lock-free readers (liburcu, memb
// flavour: readers are vCPU threads at their safe points).
#pragma once

#include <atomic>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "policy.h"

namespace mixedvm {

class Scheduler {
 public:
  // REQUIRES: initial.size() == number of vCPUs.
  Scheduler(std::unique_ptr<Policy> policy, std::vector<Backend> initial, bool kvm_runs_kernel);
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Writers: one thread at a time (QEMU: main loop, BQL held).
  void SetPolicy(std::unique_ptr<Policy> policy);
  void SetKvmUserIps(double ips) { host_.kvm_user_ips = ips; }
  Policy& policy() { return *policy_; }
  // Runs one period; fills out with the placement; returns how many changed.
  // A policy that throws is ejected, as scx ejects a failing scheduler: the
  // static policy takes over, the placement stays, and TakeEjection() says why.
  unsigned Decide(std::span<const MixedvmVcpuSample> samples, std::span<Backend> out);
  // Why the last policy was ejected, once; empty if none was.
  std::string TakeEjection() { return std::exchange(ejection_, {}); }
  // A QMP move: placed now, the policy sees it as the current placement.
  void Request(unsigned vcpu, Backend backend);
  // A held vCPU keeps its placement whatever the policy says, until released
  // ("observe vCPU N now"); Request still moves it.
  void SetHold(unsigned vcpu, bool hold) { held_.at(vcpu) = hold; }
  bool Held(unsigned vcpu) const { return vcpu < held_.size() && held_[vcpu]; }

  // Readers: any registered thread, lock-free.
  Backend Placement(unsigned vcpu) const;
  unsigned size() const { return unsigned(last_.size()); }

 private:
  struct Snapshot {
    std::vector<Backend> placed;
  };
  void Publish(std::vector<Backend> placed);
  void Eject(const std::string& what);

  std::unique_ptr<Policy> policy_;
  HostInfo host_;
  Snapshot* current_;                       // RCU-protected
  std::vector<MixedvmVcpuSample> last_;     // previous period's samples
  std::vector<uint32_t> periods_placed_;
  std::vector<uint8_t> held_;               // per vCPU: the policy may not move it
  bool have_last_ = false;
  std::string ejection_;
};

// Parses "key=value:key=value" against a policy's Params().
bool ApplyParams(std::vector<Param> params, std::string_view spec, std::string* error);

}  // namespace mixedvm
