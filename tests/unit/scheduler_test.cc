// The scheduler core and its C boundary: RCU publication to vCPU-thread
// readers, QMP requests, policy switches, and the ejection of a failing policy.
#include <gtest/gtest.h>

#include <atomic>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "mixedvm/sched.h"
#include "scheduler.h"
#include "trace_record.h"

namespace mixedvm {
namespace {

std::vector<Backend> All(size_t n, Backend b) { return std::vector<Backend>(n, b); }

// A policy that moves vCPU 0 to KVM once, then fails.
class FailingPolicy : public Policy {
 public:
  const char* Name() const override { return "failing"; }
  void Decide(const HostInfo&, std::span<const VcpuPeriod>, std::span<Backend> out) override {
    if (calls_++ == 0) {
      out[0] = Backend::kKvm;
      return;
    }
    throw std::runtime_error("out of ideas");
  }

 private:
  int calls_ = 0;
};

TEST(Scheduler, EjectsAFailingPolicyAndKeepsThePlacement) {
  Scheduler s(std::make_unique<FailingPolicy>(), All(2, Backend::kTcg), false);
  MixedvmVcpuSample samples[2] = {};
  std::vector<Backend> out(2);
  EXPECT_EQ(s.Decide(samples, out), 0u) << "the first period is the baseline";
  samples[0].now_ns = samples[1].now_ns = 100000000;
  EXPECT_EQ(s.Decide(samples, out), 1u);
  EXPECT_TRUE(s.TakeEjection().empty()) << "nothing failed yet";
  samples[0].now_ns = samples[1].now_ns = 200000000;
  EXPECT_EQ(s.Decide(samples, out), 0u) << "an ejection moves nothing";
  EXPECT_EQ(out[0], Backend::kKvm) << "the placement the policy made before it failed stays";
  const std::string why = s.TakeEjection();
  EXPECT_NE(why.find("policy 'failing' failed (out of ideas)"), std::string::npos) << why;
  EXPECT_STREQ(s.policy().Name(), "static");
  EXPECT_TRUE(s.TakeEjection().empty()) << "reported once";
  samples[0].now_ns = samples[1].now_ns = 300000000;
  EXPECT_EQ(s.Decide(samples, out), 0u) << "the static policy now decides, without failing";
  EXPECT_TRUE(s.TakeEjection().empty());
}

TEST(Scheduler, RequestsArePublishedToReaders) {
  Scheduler s(MakePolicy("static"), All(4, Backend::kTcg), false);
  mixedvm_sched_register_thread();
  s.Request(2, Backend::kKvm);
  EXPECT_EQ(s.Placement(2), Backend::kKvm);
  EXPECT_EQ(s.Placement(1), Backend::kTcg);
  EXPECT_EQ(s.Placement(99), Backend::kTcg) << "out of range reads TCG, never crashes";
  mixedvm_sched_unregister_thread();
}

TEST(Scheduler, AHeldVcpuKeepsItsPlacementUntilReleased) {
  // "Observe vCPU 1 now": held on TCG, kvm-only cannot take it back until released.
  Scheduler s(MakePolicy("kvm-only"), All(3, Backend::kTcg), false);
  mixedvm_sched_register_thread();
  MixedvmVcpuSample samples[3] = {};
  std::vector<Backend> out(3);
  s.SetHold(1, true);
  EXPECT_TRUE(s.Held(1));
  EXPECT_FALSE(s.Held(0));
  s.Decide(samples, out);
  for (uint64_t t = 1; t <= 3; ++t) {
    for (auto& x : samples) x.now_ns = t * 100000000;
    s.Decide(samples, out);
  }
  EXPECT_EQ(out, (std::vector<Backend>{Backend::kKvm, Backend::kTcg, Backend::kKvm}));
  s.Request(1, Backend::kKvm);
  EXPECT_EQ(s.Placement(1), Backend::kKvm) << "an explicit request still moves a held vCPU";
  s.Request(1, Backend::kTcg);
  s.SetHold(1, false);
  for (auto& x : samples) x.now_ns = 400000000;
  s.Decide(samples, out);
  EXPECT_EQ(out[1], Backend::kKvm) << "released, the policy places it again";
  mixedvm_sched_unregister_thread();
}

TEST(Scheduler, ReadersRunConcurrentlyWithPublication) {
  Scheduler s(MakePolicy("static"), All(4, Backend::kTcg), false);
  std::atomic<bool> stop{false};
  std::atomic<int> running{0};
  std::atomic<uint64_t> reads{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 3; ++t) {
    readers.emplace_back([&, t] {
      mixedvm_sched_register_thread();
      running.fetch_add(1);
      do {
        const Backend b = s.Placement(unsigned(t));
        EXPECT_TRUE(b == Backend::kTcg || b == Backend::kKvm);
        reads.fetch_add(1, std::memory_order_relaxed);
      } while (!stop.load());
      mixedvm_sched_unregister_thread();
    });
  }
  while (running.load() < 3) std::this_thread::yield();  // publish while they read
  for (int i = 0; i < 2000; ++i) s.Request(unsigned(i % 4), i % 3 ? Backend::kKvm : Backend::kTcg);
  stop = true;
  for (auto& r : readers) r.join();
  EXPECT_GE(reads.load(), 3u);
  // The last request for each vCPU is what every reader sees now.
  mixedvm_sched_register_thread();
  for (unsigned v = 0; v < 4; ++v) {
    const int last = 1996 + int(v);
    EXPECT_EQ(s.Placement(v), last % 3 ? Backend::kKvm : Backend::kTcg) << "vCPU " << v;
  }
  mixedvm_sched_unregister_thread();
}

TEST(SchedCApi, RoundTrip) {
  const MixedvmBackend initial[2] = {MIXEDVM_BACKEND_TCG, MIXEDVM_BACKEND_TCG};
  char err[256] = "";
  EXPECT_EQ(mixedvm_sched_new("fastest", nullptr, 2, initial, false, err, sizeof err), nullptr);
  EXPECT_NE(std::string(err).find("known: static, kvm-only"), std::string::npos) << err;
  MixedvmScheduler* s = mixedvm_sched_new("kvm-only", nullptr, 2, initial, false, err, sizeof err);
  ASSERT_NE(s, nullptr) << err;
  MixedvmVcpuSample samples[2] = {};
  MixedvmBackend out[2];
  EXPECT_EQ(mixedvm_sched_decide(s, samples, 2, out), 0u) << "the first period is the baseline";
  samples[0].now_ns = samples[1].now_ns = 100000000;
  EXPECT_EQ(mixedvm_sched_decide(s, samples, 2, out), 2u);
  EXPECT_EQ(out[0], MIXEDVM_BACKEND_KVM);
  mixedvm_sched_register_thread();
  EXPECT_EQ(mixedvm_sched_placement(s, 1), MIXEDVM_BACKEND_KVM);
  mixedvm_sched_unregister_thread();
  EXPECT_FALSE(mixedvm_sched_set_policy(s, "hot-tcg", "margin=3", err, sizeof err));
  EXPECT_STREQ(mixedvm_sched_policy(s), "kvm-only") << "a failed switch keeps the old policy";
  EXPECT_TRUE(mixedvm_sched_set_policy(s, "hot-tcg", "margin=0.3", err, sizeof err)) << err;
  EXPECT_STREQ(mixedvm_sched_policy(s), "hot-tcg");
  char params[256];
  mixedvm_sched_params(s, params, sizeof params);
  EXPECT_NE(std::string(params).find("margin=0.3"), std::string::npos) << params;
  EXPECT_FALSE(mixedvm_sched_request(s, 5, MIXEDVM_BACKEND_KVM, err, sizeof err));
  EXPECT_NE(std::string(err).find("vCPU 5 does not exist"), std::string::npos) << err;
  EXPECT_FALSE(mixedvm_sched_set_hold(s, 5, true, err, sizeof err));
  EXPECT_NE(std::string(err).find("vCPU 5 does not exist"), std::string::npos) << err;
  EXPECT_TRUE(mixedvm_sched_set_hold(s, 1, true, err, sizeof err)) << err;
  EXPECT_TRUE(mixedvm_sched_held(s, 1));
  EXPECT_FALSE(mixedvm_sched_held(s, 0));
  EXPECT_FALSE(mixedvm_sched_held(s, 5)) << "out of range is not held, never crashes";
  char why[256];
  EXPECT_FALSE(mixedvm_sched_take_ejection(s, why, sizeof why)) << "no policy failed";
  const MixedvmPolicyInfo* infos;
  EXPECT_EQ(mixedvm_sched_policies(&infos), 5u);
  mixedvm_sched_free(s);
}

TEST(TraceRecord, WhatIsWrittenReadsBackByName) {
  TraceRecord r;
  r.sample = {.now_ns = 5, .kvm_ns = 6, .tcg_ns = 7, .moves = 8, .move_ns = 9,
              .kernel_entries = 10, .kvm_exits = 0, .running = MIXEDVM_BACKEND_KVM,
              .tcg_user_ns = 11, .tcg_insns = 12, .shadow_zaps = 13,
              .kvm_tlb_flushes = 14, .idle_ns = 15, .tcg_user_returns = 16,
              .timer_leaves = 17, .event_leaves = 18};
  r.vcpu = 3;
  r.placed = MIXEDVM_BACKEND_KVM;
  const TraceReader reader(TraceHeader());
  ASSERT_TRUE(reader.ok()) << reader.error();
  std::string error;
  const auto back = reader.Parse(FormatTraceRecord(r), &error);
  ASSERT_TRUE(back) << error;
  EXPECT_EQ(back->vcpu, 3u);
  EXPECT_EQ(back->placed, MIXEDVM_BACKEND_KVM);
  EXPECT_EQ(back->sample.running, MIXEDVM_BACKEND_KVM);
  EXPECT_EQ(back->sample.kernel_entries, 10u);
  EXPECT_EQ(back->sample.tcg_insns, 12u);
  EXPECT_EQ(back->sample.shadow_zaps, 13u);
  EXPECT_EQ(back->sample.kvm_tlb_flushes, 14u);
  EXPECT_EQ(back->sample.idle_ns, 15u);
  EXPECT_EQ(back->sample.tcg_user_returns, 16u);
  EXPECT_EQ(back->sample.timer_leaves, 17u);
  EXPECT_EQ(back->sample.event_leaves, 18u);
  char header[512], line[512];
  ASSERT_TRUE(mixedvm_trace_header(header, sizeof header));
  EXPECT_EQ(std::string(header), TraceHeader()) << "QEMU writes the same header";
  ASSERT_TRUE(mixedvm_trace_line(&r.sample, 3, MIXEDVM_BACKEND_KVM, line, sizeof line));
  EXPECT_EQ(std::string(line), FormatTraceRecord(r));
  EXPECT_FALSE(mixedvm_trace_line(&r.sample, 3, MIXEDVM_BACKEND_KVM, line, 8)) << "too small";
}

TEST(TraceRecord, ReadsColumnsByNameNotPosition) {
  // Columns moved, an unknown one added, and an older trace's missing tcg_insns.
  const TraceReader reader("vcpu,extra,now_ns,placed,running,kvm_ns,tcg_ns,moves,move_ns,"
                           "kernel_entries,tcg_user_ns");
  ASSERT_TRUE(reader.ok()) << reader.error();
  std::string error;
  const auto r = reader.Parse("2,zzz,100,tcg,kvm,1,2,3,4,5,6", &error);
  ASSERT_TRUE(r) << error;
  EXPECT_EQ(r->vcpu, 2u);
  EXPECT_EQ(r->sample.now_ns, 100u);
  EXPECT_EQ(r->placed, MIXEDVM_BACKEND_TCG);
  EXPECT_EQ(r->sample.kernel_entries, 5u);
  EXPECT_EQ(r->sample.tcg_insns, 0u) << "absent in older traces";
  EXPECT_FALSE(reader.Parse("2,zzz,100,tcg,kvm,1,2,3,4,5", &error)) << "a field short";
  EXPECT_FALSE(reader.Parse("2,zzz,100,xen,kvm,1,2,3,4,5,6", &error));
  EXPECT_NE(error.find("placed is 'xen'"), std::string::npos) << error;
  const TraceReader bad("now_ns,vcpu,placed,running,tcg_ns");
  EXPECT_FALSE(bad.ok());
  EXPECT_NE(bad.error().find("no column kvm_ns"), std::string::npos) << bad.error();
}

}  // namespace
}  // namespace mixedvm
