// Placement policies on synthetic traces (sched/simulator.h models a PVM host:
// guest kernel code on TCG, two moves per kernel entry from KVM).
#include <gtest/gtest.h>

#include <random>

#include "mixedvm/sched.h"
#include "scheduler.h"
#include "simulator.h"

namespace mixedvm {
namespace {

// TCG slows floating-point compute ~10x (measured: mixed-kvm-speed), the
// integer and libc code of a syscall-heavy thread far less.
const Behavior kCompute{0.02, 50, 10};        // user-mode number crunching
const Behavior kSyscalls{0.6, 20000, 3};      // a syscall/IO-heavy thread
const HostModel kPvm{false, 60e-6};

std::vector<Backend> All(size_t n, Backend b) { return std::vector<Backend>(n, b); }

Phase Steady(double seconds, std::vector<Behavior> vcpus) { return Phase{seconds, std::move(vcpus)}; }

unsigned ChangesOf(const SimResult& r, size_t vcpu) {
  unsigned changes = 0;
  for (size_t p = 1; p < r.placements.size(); ++p)
    changes += r.placements[p][vcpu] != r.placements[p - 1][vcpu];
  return changes;
}

TEST(PolicyTable, HasEveryPolicyOnce) {
  std::vector<std::string> names;
  for (const PolicyEntry& e : PolicyTable()) {
    names.push_back(e.name);
    auto p = MakePolicy(e.name);
    ASSERT_NE(p, nullptr) << e.name;
    EXPECT_STREQ(p->Name(), e.name);
  }
  EXPECT_EQ(names, (std::vector<std::string>{"static", "kvm-only", "tcg-only", "hot-tcg", "sample"}));
  EXPECT_EQ(MakePolicy("fastest"), nullptr);
}

TEST(PolicyParams, SetAndDescribe) {
  auto p = MakePolicy("hot-tcg");
  std::string error;
  ASSERT_TRUE(p->SetParams("hot=0.7:budget=3", &error)) << error;
  EXPECT_NE(p->DescribeParams().find("hot=0.7"), std::string::npos) << p->DescribeParams();
  EXPECT_NE(p->DescribeParams().find("budget=3"), std::string::npos);
}

TEST(PolicyParams, ErrorsNameTheProblemAndChangeNothing) {
  auto p = MakePolicy("hot-tcg");
  const std::string before = p->DescribeParams();
  std::string error;
  EXPECT_FALSE(p->SetParams("hot=0.9:speed=2", &error));
  EXPECT_NE(error.find("unknown parameter 'speed'"), std::string::npos) << error;
  EXPECT_NE(error.find("min-residency"), std::string::npos) << "lists the known ones: " << error;
  EXPECT_FALSE(p->SetParams("hot=2", &error));
  EXPECT_NE(error.find("outside [0, 1]"), std::string::npos) << error;
  EXPECT_FALSE(p->SetParams("hot=warm", &error));
  EXPECT_NE(error.find("not a number"), std::string::npos) << error;
  EXPECT_FALSE(p->SetParams("hot", &error));
  EXPECT_EQ(p->DescribeParams(), before) << "a failed set must be all-or-nothing";
  EXPECT_FALSE(MakePolicy("static")->SetParams("x=1", &error));
  EXPECT_NE(error.find("known: none"), std::string::npos) << error;
}

TEST(StaticPolicy, KeepsPlacementAndRequests) {
  auto r = Simulate(kPvm, {Steady(2, {kCompute, kSyscalls})}, MakePolicy("static"),
                    {Backend::kTcg, Backend::kKvm});
  EXPECT_EQ(r.placement_changes, 0u);
  EXPECT_EQ(r.placements.back(), (std::vector<Backend>{Backend::kTcg, Backend::kKvm}));
}

TEST(BaselinePolicies, PutEveryVcpuOnOneBackend) {
  auto kvm = Simulate(kPvm, {Steady(1, {kCompute, kSyscalls})}, MakePolicy("kvm-only"),
                      All(2, Backend::kTcg));
  EXPECT_EQ(kvm.placements.back(), All(2, Backend::kKvm));
  auto tcg = Simulate(kPvm, {Steady(1, {kCompute, kSyscalls})}, MakePolicy("tcg-only"),
                      All(2, Backend::kKvm));
  EXPECT_EQ(tcg.placements.back(), All(2, Backend::kTcg));
}

TEST(HotTcg, ComputeGoesToKvmSyscallsStayOnTcg) {
  auto r = Simulate(kPvm, {Steady(10, {kCompute, kSyscalls})}, MakePolicy("hot-tcg"),
                    All(2, Backend::kTcg));
  EXPECT_EQ(r.placements.back()[0], Backend::kKvm) << "compute-bound vCPU";
  EXPECT_EQ(r.placements.back()[1], Backend::kTcg) << "syscall-heavy vCPU";
}

TEST(HotTcg, SyscallHeavyVcpuLeavesKvm) {
  auto r = Simulate(kPvm, {Steady(5, {kSyscalls})}, MakePolicy("hot-tcg"), All(1, Backend::kKvm));
  EXPECT_EQ(r.placements.back()[0], Backend::kTcg);
}

TEST(HotTcg, FollowsPhaseChanges) {
  auto r = Simulate(kPvm, {Steady(10, {kCompute}), Steady(10, {kSyscalls}), Steady(30, {kCompute})},
                    MakePolicy("hot-tcg"), All(1, Backend::kTcg));
  EXPECT_EQ(r.placements[95][0], Backend::kKvm) << "end of the compute phase";
  EXPECT_EQ(r.placements[195][0], Backend::kTcg) << "end of the syscall phase";
  EXPECT_EQ(r.placements.back()[0], Backend::kKvm) << "back to compute (after backoff)";
}

TEST(HotTcg, NoTrialOnKvmForAVcpuWhoseTcgTimeProvesItHot) {
  // 90% kernel work; on TCG its kernel share is 9 / (9 + 3) = 0.75, above hot.
  const Behavior kernel_bound{0.9, 20000, 3};
  auto pvm = Simulate(kPvm, {Steady(30, {kernel_bound})}, MakePolicy("hot-tcg"), All(1, Backend::kTcg));
  EXPECT_EQ(ChangesOf(pvm, 0), 0u) << "its heat on a user-only KVM is at least 0.75: no trial";
  // Where KVM runs the kernel too, TCG's kernel share says nothing about KVM: it is tried.
  const HostModel vtx{true, 60e-6};
  auto hw = Simulate(vtx, {Steady(30, {kernel_bound})}, MakePolicy("hot-tcg"), All(1, Backend::kTcg));
  EXPECT_EQ(hw.placements.back()[0], Backend::kKvm);
}

TEST(HotTcg, KeepsOnKvmAVcpuThatIsHotButProgressesFasterThere) {
  // Half kernel work, 8000 entries/s, user code 20x slower on TCG (floating
  // point). On KVM its heat is (1 + 0.96) / 2.96 = 0.66, above hot; yet a unit
  // of its work takes 2.96 s on KVM against 21 s on TCG.
  const Behavior fp_syscalls{0.5, 8000, 20};
  HostModel counted = kPvm;
  counted.native_ips = 4e9;
  auto by_time = Simulate(kPvm, {Steady(30, {fp_syscalls})}, MakePolicy("hot-tcg"),
                          All(1, Backend::kTcg));
  auto by_progress = Simulate(counted, {Steady(30, {fp_syscalls})}, MakePolicy("hot-tcg"),
                              All(1, Backend::kTcg));
  EXPECT_EQ(by_time.placements.back()[0], Backend::kTcg) << "heat alone sends it back to TCG";
  EXPECT_EQ(by_progress.placements.back()[0], Backend::kKvm)
      << "its TCG instruction rate shows KVM gets more done";
  EXPECT_GT(by_progress.work_s[0], 2 * by_time.work_s[0]);
}

TEST(HotTcg, ProgressDoesNotKeepASyscallVcpuOnKvm) {
  // The syscall loop's user code runs about as fast on TCG (slow-down 3)
  // while its moves dominate: the progress check agrees with heat.
  HostModel counted = kPvm;
  counted.native_ips = 4e9;
  auto r = Simulate(counted, {Steady(10, {kSyscalls})}, MakePolicy("hot-tcg"),
                    All(1, Backend::kKvm));
  EXPECT_EQ(r.placements.back()[0], Backend::kTcg);
}

TEST(HotTcg, ResistsPingPong) {
  // The workload flips every period: a naive policy would move every period.
  std::vector<Phase> phases;
  for (int i = 0; i < 100; ++i) phases.push_back(Steady(0.1, {i % 2 ? kSyscalls : kCompute}));
  auto r = Simulate(kPvm, phases, MakePolicy("hot-tcg"), All(1, Backend::kKvm));
  EXPECT_LE(ChangesOf(r, 0), 25u) << "hysteresis, residency and backoff bound the moves";
}

TEST(HotTcg, NoisyVcpuDoesNotFlap) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<double> share(0.25, 0.45);  // heat hovering mid-way
  std::vector<Phase> phases;
  for (int i = 0; i < 200; ++i) phases.push_back(Steady(0.1, {Behavior{share(rng), 2000, 3}}));
  auto r = Simulate(kPvm, phases, MakePolicy("hot-tcg"), All(1, Backend::kKvm));
  EXPECT_LE(ChangesOf(r, 0), 10u);
}

TEST(HotTcg, AllHotMeansAllTcgWithinBudget) {
  auto r = Simulate(kPvm, {Steady(3, std::vector<Behavior>(8, kSyscalls))}, MakePolicy("hot-tcg"),
                    All(8, Backend::kKvm));
  EXPECT_EQ(r.placements.back(), All(8, Backend::kTcg));
  for (size_t p = 1; p < r.placements.size(); ++p) {
    unsigned changed = 0;
    for (size_t i = 0; i < 8; ++i) changed += r.placements[p][i] != r.placements[p - 1][i];
    EXPECT_LE(changed, 2u) << "period " << p << ": the budget is 2 changes per period";
  }
}

TEST(HotTcg, BeatsEachBaselineWhereThatBaselineIsWrong) {
  // vCPUs 0 and 2 compute, 1 and 3 make syscalls; all start on TCG (PVM boot).
  const std::vector<Phase> mixed = {Steady(30, {kCompute, kSyscalls, kCompute, kSyscalls})};
  auto hot = Simulate(kPvm, mixed, MakePolicy("hot-tcg"), All(4, Backend::kTcg));
  auto tcg = Simulate(kPvm, mixed, MakePolicy("tcg-only"), All(4, Backend::kTcg));
  auto kvm = Simulate(kPvm, mixed, MakePolicy("kvm-only"), All(4, Backend::kKvm));
  for (size_t i : {0, 2}) EXPECT_GT(hot.work_s[i], 5 * tcg.work_s[i]) << "compute vCPU " << i;
  for (size_t i : {1, 3}) EXPECT_GT(hot.work_s[i], kvm.work_s[i]) << "syscall vCPU " << i;
  double h = 0, k = 0;
  for (size_t i = 0; i < 4; ++i) h += hot.work_s[i], k += kvm.work_s[i];
  EXPECT_GT(h, 0.95 * k) << "overall within 5% of the best baseline despite starting on TCG";
}

TEST(SamplePolicy, EveryVcpuGetsItsShareOnTcg) {
  auto policy = MakePolicy("sample");
  std::string error;
  ASSERT_TRUE(policy->SetParams("share=0.25:slot=2:budget=1", &error)) << error;
  auto r = Simulate(kPvm, {Steady(16, std::vector<Behavior>(4, kCompute))}, std::move(policy),
                    All(4, Backend::kKvm));
  for (size_t i = 0; i < 4; ++i) {
    unsigned on_tcg = 0;
    for (const auto& p : r.placements) on_tcg += p[i] == Backend::kTcg;
    const double share = double(on_tcg) / double(r.placements.size());
    EXPECT_NEAR(share, 0.25, 0.08) << "vCPU " << i;
  }
}

TEST(SamplePolicy, BacksOffWhenMovesCostTooMuch) {
  auto cheap = MakePolicy("sample");
  auto dear = MakePolicy("sample");
  std::string error;
  ASSERT_TRUE(cheap->SetParams("budget=1", &error));
  ASSERT_TRUE(dear->SetParams("budget=0.0001", &error));
  const std::vector<Phase> w = {Steady(20, std::vector<Behavior>(4, kSyscalls))};
  auto a = Simulate(kPvm, w, std::move(cheap), All(4, Backend::kKvm));
  auto b = Simulate(kPvm, w, std::move(dear), All(4, Backend::kKvm));
  EXPECT_LT(b.placement_changes, a.placement_changes);
}

}  // namespace
}  // namespace mixedvm
