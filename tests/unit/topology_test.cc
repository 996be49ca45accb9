#include <gtest/gtest.h>

#include <string>

#include "mixedvm/pinning.h"

namespace {

struct Expected {
  const char* file;
  unsigned packages, numa_nodes, cores, pus;
};

class TopologyXml : public ::testing::TestWithParam<Expected> {};

TEST_P(TopologyXml, CountsMatchTheFixture) {
  const Expected& e = GetParam();
  std::string path = std::string(MIXEDVM_TEST_DATA) + "/" + e.file;
  MixedvmTopology t{};
  char err[256] = "";
  ASSERT_TRUE(mixedvm_topology_discover(path.c_str(), &t, err, sizeof err)) << err;
  EXPECT_EQ(t.packages, e.packages);
  EXPECT_EQ(t.numa_nodes, e.numa_nodes);
  EXPECT_EQ(t.cores, e.cores);
  EXPECT_EQ(t.pus, e.pus);
}

// Fixtures made with: lstopo-no-graphics -i "<synthetic>" --of xml FILE
INSTANTIATE_TEST_SUITE_P(Fixtures, TopologyXml, ::testing::Values(
    Expected{"topo-one-core.xml", 1, 1, 1, 1},
    Expected{"topo-two-cores.xml", 1, 1, 2, 2},
    Expected{"topo-smt.xml", 1, 1, 2, 4},
    Expected{"topo-two-numa.xml", 2, 2, 4, 4}));

TEST(Topology, MissingXmlIsAClearError) {
  MixedvmTopology t{};
  char err[256] = "";
  EXPECT_FALSE(mixedvm_topology_discover("/nonexistent/topo.xml", &t, err, sizeof err));
  EXPECT_NE(std::string(err).find("/nonexistent/topo.xml"), std::string::npos) << err;
}

TEST(Topology, HostHasAtLeastOnePu) {
  MixedvmTopology t{};
  char err[256] = "";
  ASSERT_TRUE(mixedvm_topology_discover(nullptr, &t, err, sizeof err)) << err;
  EXPECT_GE(t.pus, 1u);
  EXPECT_GE(t.cores, 1u);
  EXPECT_LE(t.cores, t.pus);
}

}  // namespace
