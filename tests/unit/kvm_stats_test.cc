// KVM exit counters read from a real vCPU's binary stats fd.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/kvm.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <string>

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

}  // namespace
