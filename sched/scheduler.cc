#include "scheduler.h"

// Inline read-side fast paths: vCPU threads read placements at every safe point.
#define _LGPL_SOURCE
#include <urcu/urcu-memb.h>

#include <charconv>
#include <cstdio>

namespace mixedvm {

bool ApplyParams(std::vector<Param> params, std::string_view spec, std::string* error) {
  struct Change {
    double* target;
    double value;
  };
  std::vector<Change> changes;
  while (!spec.empty()) {
    const size_t end = spec.find(':');
    const std::string_view item = spec.substr(0, end);
    spec = end == std::string_view::npos ? std::string_view() : spec.substr(end + 1);
    const size_t eq = item.find('=');
    if (eq == std::string_view::npos) {
      *error = "parameter '" + std::string(item) + "' has no '=value'";
      return false;
    }
    const std::string_view key = item.substr(0, eq), text = item.substr(eq + 1);
    const Param* param = nullptr;
    for (const Param& p : params) {
      if (key == p.name) param = &p;
    }
    if (!param) {
      std::string known;
      for (const Param& p : params) known += std::string(known.empty() ? "" : ", ") + p.name;
      *error = "unknown parameter '" + std::string(key) + "' (known: " +
               (known.empty() ? "none" : known) + ")";
      return false;
    }
    double value = 0;
    auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || ptr != text.data() + text.size()) {
      *error = "parameter " + std::string(key) + ": '" + std::string(text) + "' is not a number";
      return false;
    }
    if (value < param->min || value > param->max) {
      char buf[160];
      std::snprintf(buf, sizeof buf, "parameter %s=%g is outside [%g, %g]", param->name, value,
                    param->min, param->max);
      *error = buf;
      return false;
    }
    changes.push_back({param->value, value});
  }
  for (const Change& c : changes) *c.target = c.value;  // all or nothing
  return true;
}

bool Policy::SetParams(std::string_view spec, std::string* error) {
  return ApplyParams(Params(), spec, error);
}

std::string Policy::DescribeParams() {
  std::string out;
  for (const Param& p : Params()) {
    char buf[96];
    std::snprintf(buf, sizeof buf, "%s%s=%g", out.empty() ? "" : ":", p.name, *p.value);
    out += buf;
  }
  return out;
}

Scheduler::Scheduler(std::unique_ptr<Policy> policy, std::vector<Backend> initial,
                     bool kvm_runs_kernel)
    : policy_(std::move(policy)),
      host_{kvm_runs_kernel, unsigned(initial.size())},
      current_(new Snapshot{initial}),
      last_(initial.size()),
      periods_placed_(initial.size(), 0),
      held_(initial.size(), 0) {}

Scheduler::~Scheduler() {
  urcu_memb_synchronize_rcu();
  delete current_;
}

void Scheduler::Eject(const std::string& what) {
  ejection_ = "policy '" + std::string(policy_->Name()) + "' failed (" + what +
              "); the static policy keeps the current placement";
  SetPolicy(MakePolicy("static"));
}

void Scheduler::SetPolicy(std::unique_ptr<Policy> policy) {
  policy_ = std::move(policy);
  have_last_ = false;  // the new policy starts from fresh periods
}

// Pairs with rcu_dereference in Placement(): readers see the whole new
// snapshot or the whole old one; the old one is freed once no reader can
// still hold it.
void Scheduler::Publish(std::vector<Backend> placed) {
  Snapshot* fresh = new Snapshot{std::move(placed)};
  Snapshot* old = current_;
  rcu_assign_pointer(current_, fresh);
  urcu_memb_synchronize_rcu();
  delete old;
}

Backend Scheduler::Placement(unsigned vcpu) const {
  urcu_memb_read_lock();
  const Snapshot* s = rcu_dereference(current_);
  const Backend b = vcpu < s->placed.size() ? s->placed[vcpu] : Backend::kTcg;
  urcu_memb_read_unlock();
  return b;
}

void Scheduler::Request(unsigned vcpu, Backend backend) {
  std::vector<Backend> placed = current_->placed;
  if (vcpu >= placed.size() || placed[vcpu] == backend) return;
  placed[vcpu] = backend;
  periods_placed_[vcpu] = 0;
  Publish(std::move(placed));
}

unsigned Scheduler::Decide(std::span<const MixedvmVcpuSample> samples, std::span<Backend> out) {
  const size_t n = current_->placed.size();
  std::vector<Backend> placed = current_->placed;
  if (samples.size() != n || out.size() != n) return 0;
  if (!have_last_) {
    // The first period only sets the baseline of the counters.
    std::copy(samples.begin(), samples.end(), last_.begin());
    have_last_ = true;
    std::copy(placed.begin(), placed.end(), out.begin());
    return 0;
  }
  std::vector<VcpuPeriod> periods(n);
  for (size_t i = 0; i < n; ++i) {
    const MixedvmVcpuSample& a = last_[i];
    const MixedvmVcpuSample& b = samples[i];
    VcpuPeriod& p = periods[i];
    p.placed = placed[i];
    p.running = Backend(b.running);
    p.period_s = double(b.now_ns - a.now_ns) / 1e9;
    p.kvm_s = double(b.kvm_ns - a.kvm_ns) / 1e9;
    p.tcg_s = double(b.tcg_ns - a.tcg_ns) / 1e9;
    p.tcg_user_s = double(b.tcg_user_ns - a.tcg_user_ns) / 1e9;
    p.tcg_insns = b.tcg_insns - a.tcg_insns;
    p.moves = b.moves - a.moves;
    p.move_s = double(b.move_ns - a.move_ns) / 1e9;
    p.kernel_entries = b.kernel_entries - a.kernel_entries;
    p.tcg_user_returns = b.tcg_user_returns - a.tcg_user_returns;
    p.idle_s = double(b.idle_ns - a.idle_ns) / 1e9;
    p.shadow_zaps = b.shadow_zaps - a.shadow_zaps;
    p.kvm_exits = b.kvm_exits - a.kvm_exits;
    p.periods_placed = ++periods_placed_[i];
  }
  std::copy(samples.begin(), samples.end(), last_.begin());
  std::vector<Backend> next = placed;
  try {
    policy_->Decide(host_, periods, next);
  } catch (const std::exception& e) {
    Eject(e.what());
    next = placed;
  } catch (...) {
    Eject("an exception that is not a std::exception");
    next = placed;
  }
  for (size_t i = 0; i < n; ++i) {
    if (held_[i]) next[i] = placed[i];
  }
  unsigned changed = 0;
  for (size_t i = 0; i < n; ++i) {
    if (next[i] != placed[i]) {
      ++changed;
      periods_placed_[i] = 0;
    }
  }
  if (changed) Publish(next);
  std::copy(next.begin(), next.end(), out.begin());
  return changed;
}

}  // namespace mixedvm
