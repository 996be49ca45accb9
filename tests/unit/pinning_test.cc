// Pinning modes on fixed hwloc XML topologies, and a real bind on this host
// checked against the affinity the OS reports.
#include <gtest/gtest.h>
#include <sched.h>

#include <string>
#include <thread>
#include <vector>

#include "mixedvm/pinning.h"

namespace {

struct PinnerPtr {
  MixedvmPinner* p;
  ~PinnerPtr() { mixedvm_pinner_free(p); }
};

PinnerPtr Make(MixedvmPinMode mode, const char* fixture, unsigned nvcpus) {
  std::string path = fixture ? std::string(MIXEDVM_TEST_DATA) + "/" + fixture : "";
  char err[256] = "";
  MixedvmPinner* p = mixedvm_pinner_new(mode, fixture ? path.c_str() : nullptr, nvcpus, err, sizeof err);
  EXPECT_NE(p, nullptr) << err;
  return {p};
}

std::vector<int> Cpus(MixedvmPinner* p, unsigned vcpu, bool on_kvm) {
  int buf[64];
  const int n = mixedvm_pinner_cpus(p, vcpu, on_kvm, buf, 64);
  return std::vector<int>(buf, buf + n);
}

using V = std::vector<int>;

TEST(PinModeParse, KnownAndUnknown) {
  MixedvmPinMode m;
  char err[128];
  ASSERT_TRUE(mixedvm_pin_mode_parse("split", &m, err, sizeof err));
  EXPECT_EQ(m, MIXEDVM_PIN_SPLIT);
  EXPECT_FALSE(mixedvm_pin_mode_parse("numa", &m, err, sizeof err));
  EXPECT_NE(std::string(err).find("off, compact, split"), std::string::npos) << err;
}

TEST(Pinning, OffPinsNothing) {
  auto p = Make(MIXEDVM_PIN_OFF, "topo-smt.xml", 4);
  EXPECT_TRUE(Cpus(p.p, 0, true).empty());
  char err[64];
  EXPECT_TRUE(mixedvm_pinner_apply(p.p, 0, true, err, sizeof err)) << "off is a no-op";
}

TEST(Pinning, OneCoreEverythingShares) {
  auto c = Make(MIXEDVM_PIN_COMPACT, "topo-one-core.xml", 3);
  EXPECT_EQ(Cpus(c.p, 2, false), V({0}));
  auto s = Make(MIXEDVM_PIN_SPLIT, "topo-one-core.xml", 3);
  EXPECT_EQ(Cpus(s.p, 0, true), V({0})) << "split needs two cores; with one, both groups share it";
  EXPECT_EQ(Cpus(s.p, 0, false), V({0}));
}

TEST(Pinning, TwoCores) {
  auto c = Make(MIXEDVM_PIN_COMPACT, "topo-two-cores.xml", 3);
  EXPECT_EQ(Cpus(c.p, 0, true), V({0}));
  EXPECT_EQ(Cpus(c.p, 1, true), V({1}));
  EXPECT_EQ(Cpus(c.p, 2, true), V({0})) << "wraps around";
  auto s = Make(MIXEDVM_PIN_SPLIT, "topo-two-cores.xml", 3);
  EXPECT_EQ(Cpus(s.p, 0, true), V({0}));
  EXPECT_EQ(Cpus(s.p, 0, false), V({1}));
}

TEST(Pinning, SmtSplitKeepsBackendsOnDifferentCores) {
  auto c = Make(MIXEDVM_PIN_COMPACT, "topo-smt.xml", 4);
  EXPECT_EQ(Cpus(c.p, 1, false), V({1})) << "compact fills a core's threads first";
  EXPECT_EQ(Cpus(c.p, 2, false), V({2}));
  auto s = Make(MIXEDVM_PIN_SPLIT, "topo-smt.xml", 4);
  EXPECT_EQ(Cpus(s.p, 3, true), V({0, 1})) << "core 0, both hardware threads";
  EXPECT_EQ(Cpus(s.p, 3, false), V({2, 3})) << "core 1";
}

TEST(Pinning, TwoNumaNodesSplitByNode) {
  auto s = Make(MIXEDVM_PIN_SPLIT, "topo-two-numa.xml", 4);
  EXPECT_EQ(Cpus(s.p, 0, true), V({0, 1})) << "node 0's cores";
  EXPECT_EQ(Cpus(s.p, 0, false), V({2, 3})) << "node 1's cores";
}

TEST(Pinning, XmlTopologyCannotBind) {
  auto s = Make(MIXEDVM_PIN_COMPACT, "topo-two-cores.xml", 2);
  char err[128] = "";
  EXPECT_FALSE(mixedvm_pinner_apply(s.p, 0, true, err, sizeof err));
  EXPECT_NE(std::string(err).find("XML"), std::string::npos) << err;
}

TEST(Pinning, BindsThisThreadAsTheOsReports) {
  auto p = Make(MIXEDVM_PIN_COMPACT, nullptr, 8);
  const unsigned host_cpus = std::thread::hardware_concurrency();
  for (unsigned v = 0; v < 2 && v < host_cpus; ++v) {
    std::thread t([&] {
      char err[128] = "";
      ASSERT_TRUE(mixedvm_pinner_apply(p.p, v, true, err, sizeof err)) << err;
      cpu_set_t set;
      CPU_ZERO(&set);
      ASSERT_EQ(sched_getaffinity(0, sizeof set, &set), 0);
      std::vector<int> got;
      for (int c = 0; c < CPU_SETSIZE; ++c)
        if (CPU_ISSET(c, &set)) got.push_back(c);
      EXPECT_EQ(got, Cpus(p.p, v, true)) << "vCPU " << v;
    });
    t.join();
  }
}

}  // namespace
