// KVM exit counters read from a real vCPU's binary stats fd.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/kvm.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include "mixedvm/kvm_stats.h"

namespace {

TEST(KvmStats, CountsTheExitsARealVcpuTakes) {
  const int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
  if (kvm < 0) GTEST_SKIP() << "/dev/kvm is not available: " << std::strerror(errno);
  const int vm = ioctl(kvm, KVM_CREATE_VM, 0);
  ASSERT_GE(vm, 0);
  const size_t size = 0x10000;
  void* mem = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(mem, MAP_FAILED);
  // Real mode at 0x1000: out 0x80, al ; out 0x80, al ; out 0x80, al ; hlt
  const unsigned char code[] = {0xe6, 0x80, 0xe6, 0x80, 0xe6, 0x80, 0xf4};
  std::memcpy(static_cast<char*>(mem) + 0x1000, code, sizeof code);
  kvm_userspace_memory_region region{0, 0, 0, size, reinterpret_cast<uint64_t>(mem)};
  ASSERT_EQ(ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region), 0);
  const int vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
  ASSERT_GE(vcpu, 0);
  const int stats_fd = ioctl(vcpu, KVM_GET_STATS_FD, nullptr);
  if (stats_fd < 0) GTEST_SKIP() << "this KVM has no binary stats fd";
  char err[256] = "";
  MixedvmKvmStats* stats = mixedvm_kvm_stats_open(stats_fd, err, sizeof err);
  ASSERT_NE(stats, nullptr) << err;
  uint64_t before[MIXEDVM_KVM_EXIT_STATS], after[MIXEDVM_KVM_EXIT_STATS];
  ASSERT_TRUE(mixedvm_kvm_stats_read(stats, before));

  const long run_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
  auto* run = static_cast<kvm_run*>(mmap(nullptr, size_t(run_size), PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0));
  kvm_sregs sregs;
  ASSERT_EQ(ioctl(vcpu, KVM_GET_SREGS, &sregs), 0);
  sregs.cs.base = 0;
  sregs.cs.selector = 0;
  ASSERT_EQ(ioctl(vcpu, KVM_SET_SREGS, &sregs), 0);
  kvm_regs regs{};
  regs.rip = 0x1000;
  regs.rflags = 2;
  ASSERT_EQ(ioctl(vcpu, KVM_SET_REGS, &regs), 0);
  int io = 0;
  for (int i = 0; i < 10 && io < 3; ++i) {
    ASSERT_EQ(ioctl(vcpu, KVM_RUN, 0), 0);
    if (run->exit_reason == KVM_EXIT_IO) ++io;
    else break;
  }
  ASSERT_EQ(io, 3) << "exit reason " << run->exit_reason;
  ASSERT_TRUE(mixedvm_kvm_stats_read(stats, after));
  // Every exit counts in "exits". Which reason counts them depends on the
  // host: VT-x counts io_exits; PVM emulates real-mode port I/O, so its
  // insn_emulation counts them instead.
  EXPECT_GE(after[0] - before[0], 3u) << mixedvm_kvm_exit_stat_names[0];
  EXPECT_GE((after[1] - before[1]) + (after[6] - before[6]), 3u)
      << "neither io_exits nor insn_emulation counted the port I/O";
  mixedvm_kvm_stats_free(stats);
  munmap(run, size_t(run_size));
  close(stats_fd);
  close(vcpu);
  close(vm);
  munmap(mem, size);
  close(kvm);
}

TEST(KvmStats, BadFdIsAClearError) {
  char err[256] = "";
  EXPECT_EQ(mixedvm_kvm_stats_open(-1, err, sizeof err), nullptr);
  EXPECT_NE(std::string(err).find("KVM stats header"), std::string::npos) << err;
}


// The parser on a stats file laid out as KVM lays it out, made here: no /dev/kvm needed.
class SyntheticStats : public ::testing::Test {
 protected:
  static constexpr uint32_t kNameSize = 48;
  void Write(const std::vector<uint64_t>& data) {
    fd_ = memfd_create("kvm-stats", 0);
    ASSERT_GE(fd_, 0);
    struct Desc { uint32_t flags; int16_t exponent; uint16_t size; uint32_t offset;
                  uint32_t bucket_size; char name[kNameSize]; };
    const Desc descs[] = {{0, 0, 1, 0, 0, "exits"}, {0, 0, 1, 8, 0, "pf_taken"},
                          {0, 0, 4, 16, 1, "halt_poll_success_hist"}};
    kvm_stats_header h{};
    h.name_size = kNameSize;
    h.num_desc = 3;
    h.id_offset = sizeof h;
    h.desc_offset = sizeof h + 64;
    h.data_offset = h.desc_offset + sizeof descs;
    ASSERT_EQ(pwrite(fd_, &h, sizeof h, 0), ssize_t(sizeof h));
    ASSERT_EQ(pwrite(fd_, descs, sizeof descs, h.desc_offset), ssize_t(sizeof descs));
    ASSERT_EQ(pwrite(fd_, data.data(), data.size() * 8, h.data_offset), ssize_t(data.size() * 8));
  }
  void TearDown() override { if (fd_ >= 0) close(fd_); }
  int fd_ = -1;
};

TEST_F(SyntheticStats, EveryStatisticByName) {
  Write({100, 7, 1, 2, 3, 4});
  char err[256] = "";
  MixedvmKvmStats* stats = mixedvm_kvm_stats_open(fd_, err, sizeof err);
  ASSERT_NE(stats, nullptr) << err;
  ASSERT_EQ(mixedvm_kvm_stats_count(stats), 3u);
  MixedvmKvmStat all[8];
  ASSERT_EQ(mixedvm_kvm_stats_read_all(stats, all, 8), 3);
  EXPECT_STREQ(all[0].name, "exits");
  EXPECT_EQ(all[0].value, 100u);
  EXPECT_STREQ(all[1].name, "pf_taken");
  EXPECT_EQ(all[1].value, 7u);
  EXPECT_STREQ(all[2].name, "halt_poll_success_hist");
  EXPECT_EQ(all[2].value, 10u) << "a histogram reads as the sum of its buckets";
  EXPECT_EQ(mixedvm_kvm_stats_read_all(stats, all, 2), 2) << "max is respected";
  uint64_t exits[MIXEDVM_KVM_EXIT_STATS];
  ASSERT_TRUE(mixedvm_kvm_stats_read(stats, exits));
  EXPECT_EQ(exits[0], 100u);
  EXPECT_EQ(exits[1], 0u) << "a counter this KVM does not offer reads 0";
  mixedvm_kvm_stats_free(stats);
}

TEST_F(SyntheticStats, HistogramCutShortInTheFile) {
  Write({100, 7, 1, 2});
  char err[256] = "";
  MixedvmKvmStats* stats = mixedvm_kvm_stats_open(fd_, err, sizeof err);
  ASSERT_NE(stats, nullptr) << err;
  MixedvmKvmStat all[3];
  ASSERT_EQ(mixedvm_kvm_stats_read_all(stats, all, 3), 3);
  EXPECT_EQ(all[2].value, 3u);
  mixedvm_kvm_stats_free(stats);
}

TEST(KvmStats, ABadFdIsAnError) {
  char err[256] = "";
  EXPECT_EQ(mixedvm_kvm_stats_open(-1, err, sizeof err), nullptr);
  EXPECT_NE(std::string(err).find("header"), std::string::npos) << err;
}

}  // namespace
