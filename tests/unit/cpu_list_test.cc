#include <gtest/gtest.h>

#include <vector>

#include "cpu_list.h"
#include "mixedvm/cpu_list.h"

namespace mixedvm {
namespace {

std::vector<bool> Sel(std::initializer_list<int> bits) {
  std::vector<bool> v;
  for (int b : bits) v.push_back(b != 0);
  return v;
}

TEST(ParseCpuList, SingleIndexesAndRanges) {
  auto r = ParseCpuList("0-2,5", 8);
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.selected, Sel({1, 1, 1, 0, 0, 1, 0, 0}));
}

TEST(ParseCpuList, ColonSeparatesLikeComma) {
  auto r = ParseCpuList("0:2-3", 4);
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.selected, Sel({1, 0, 1, 1}));
}

TEST(ParseCpuList, EmptySelectsNothing) {
  auto r = ParseCpuList("", 4);
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.selected, Sel({0, 0, 0, 0}));
}

TEST(ParseCpuList, OverlapIsUnion) {
  auto r = ParseCpuList("1-3,2", 4);
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.selected, Sel({0, 1, 1, 1}));
}

TEST(ParseCpuList, RejectsOutOfRangeAndNamesTheLimit) {
  auto r = ParseCpuList("0,4", 4);
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.error.find("vCPU 4 does not exist"), std::string::npos) << r.error;
  EXPECT_NE(r.error.find("0-3"), std::string::npos) << r.error;
}

TEST(ParseCpuList, RejectsMalformed) {
  for (const char* bad : {"a", "1-", "-1", "3-1", "1,,2", "1,", "1 ,2", "1;2", "1-2-3"}) {
    auto r = ParseCpuList(bad, 8);
    EXPECT_FALSE(r.ok) << "accepted '" << bad << "'";
    EXPECT_FALSE(r.error.empty()) << bad;
  }
}

TEST(ParseCpuList, RejectsHugeNumbersWithoutOverflow) {
  auto r = ParseCpuList("99999999999999999999999", 4);
  EXPECT_FALSE(r.ok);
}

TEST(CApi, ParseFillsCallerArrayOnlyOnSuccess) {
  bool sel[4] = {true, true, true, true};
  char err[128] = "";
  EXPECT_FALSE(mixedvm_parse_cpu_list("7", sel, 4, err, sizeof err));
  EXPECT_TRUE(sel[0] && sel[1] && sel[2] && sel[3]) << "failure must not touch the output";
  EXPECT_NE(std::string(err).find("does not exist"), std::string::npos) << err;

  ASSERT_TRUE(mixedvm_parse_cpu_list("1,3", sel, 4, err, sizeof err)) << err;
  EXPECT_FALSE(sel[0]);
  EXPECT_TRUE(sel[1]);
  EXPECT_FALSE(sel[2]);
  EXPECT_TRUE(sel[3]);
}

TEST(CApi, TruncatesErrorToBuffer) {
  bool sel[2];
  char err[8];
  EXPECT_FALSE(mixedvm_parse_cpu_list("garbage", sel, 2, err, sizeof err));
  EXPECT_EQ(std::string(err).size(), sizeof err - 1);
}

TEST(CApi, VersionIsProjectVersion) {
  EXPECT_STREQ(mixedvm_version(), MIXEDVM_VERSION);
}

}  // namespace
}  // namespace mixedvm
