/* What guest CPL3 CPUID and XGETBV return on this KVM, with and without the host's
 * CPUID faulting on the vCPU thread (arch_prctl(ARCH_SET_CPUID, 0)), which is what
 * -accel mixed,user-cpuid=trap relies on (docs/mixed.md, "One guest-visible CPU").
 * KVM's table says leaf 7 EBX = 0x5a5a5a5a; the guest has CR4.OSXSAVE and XCR0 = 3.
 * A CPUID that KVM answered reads 0x5a5a5a5a, one the hardware answered reads the
 * host's leaf 7. Also times N faulting CPUIDs. The code ends with hlt, which faults
 * at CPL3: the shutdown exit is expected. Usage: ./kvm-cpuid-fault [N]. */
#include <asm/prctl.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define MARK 0x5a5a5a5au

static int vm_run(int kvm, uint32_t n, int fault, uint64_t *ebx7, uint64_t *xcr0, double *secs,
                  int *exit_reason) {
  int vm = ioctl(kvm, KVM_CREATE_VM, 0);
  size_t msz = 0x400000;
  uint8_t *mem = mmap(0, msz, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  struct kvm_userspace_memory_region r = {.slot = 0, .guest_phys_addr = 0, .memory_size = msz,
                                          .userspace_addr = (uint64_t)mem};
  if (vm < 0 || ioctl(vm, KVM_SET_USER_MEMORY_REGION, &r)) { perror("vm"); return -1; }
  uint64_t *pml4 = (void *)(mem + 0x2000), *pdpt = (void *)(mem + 0x3000),
           *pd = (void *)(mem + 0x4000);
  pml4[0] = 0x3000 | 7; pdpt[0] = 0x4000 | 7; pd[0] = 0x87; pd[1] = 0x200000 | 0x87;
  /* mov r11d,n; L: mov eax,7; xor ecx,ecx; cpuid; dec r11d; jnz L;
     mov r8,rbx; xor ecx,ecx; xgetbv; mov r9,rax; hlt */
  uint8_t code[] = {0x41, 0xBB, 0, 0, 0, 0, 0xB8, 7, 0, 0, 0, 0x31, 0xC9, 0x0F, 0xA2,
                    0x41, 0xFF, 0xCB, 0x75, 0xF2, 0x49, 0x89, 0xD8, 0x31, 0xC9,
                    0x0F, 0x01, 0xD0, 0x49, 0x89, 0xC1, 0xF4};
  memcpy(code + 2, &n, 4);
  memcpy(mem + 0x10000, code, sizeof code);
  int vc = ioctl(vm, KVM_CREATE_VCPU, 0);
  int sz = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
  struct kvm_run *run = mmap(0, sz, PROT_READ | PROT_WRITE, MAP_SHARED, vc, 0);
  struct { struct kvm_cpuid2 h; struct kvm_cpuid_entry2 e[5]; } cpuid = {0};
  cpuid.h.nent = 5;
  cpuid.e[0] = (struct kvm_cpuid_entry2){.function = 0, .eax = 0xd};
  cpuid.e[1] = (struct kvm_cpuid_entry2){.function = 1, .ecx = 1u << 26, .edx = 1u << 25 | 1u << 24};
  cpuid.e[2] = (struct kvm_cpuid_entry2){.function = 7, .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX,
                                         .ebx = MARK};
  cpuid.e[3] = (struct kvm_cpuid_entry2){.function = 0xd, .index = 0,
                                         .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX,
                                         .eax = 3, .ebx = 512 + 64, .ecx = 512 + 64};
  cpuid.e[4] = (struct kvm_cpuid_entry2){.function = 0xd, .index = 1,
                                         .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX};
  if (ioctl(vc, KVM_SET_CPUID2, &cpuid)) perror("KVM_SET_CPUID2");
  struct kvm_sregs s;
  ioctl(vc, KVM_GET_SREGS, &s);
  s.cr3 = 0x2000; s.cr4 = 0x20 | 0x200 | 0x40000; s.cr0 = 0x80050033; s.efer = 0x500;
  struct kvm_segment seg = {.base = 0, .limit = 0xffffffff, .selector = 0x1b, .present = 1,
                            .type = 11, .dpl = 3, .s = 1, .l = 1, .g = 1};
  s.cs = seg;
  seg.type = 3; seg.selector = 0x23; seg.l = 0; seg.db = 1;
  s.ds = s.es = s.fs = s.gs = s.ss = seg;
  if (ioctl(vc, KVM_SET_SREGS, &s) < 0) perror("KVM_SET_SREGS");
  struct kvm_xcrs xcrs = {.nr_xcrs = 1, .xcrs = {{.xcr = 0, .value = 3}}};
  if (ioctl(vc, KVM_SET_XCRS, &xcrs)) perror("KVM_SET_XCRS");
  struct kvm_regs g = {0};
  g.rip = 0x10000; g.rflags = 2; g.rsp = 0x200000;
  ioctl(vc, KVM_SET_REGS, &g);
  struct timespec a, b;
  if (fault && syscall(SYS_arch_prctl, ARCH_SET_CPUID, 0)) {
    perror("arch_prctl(ARCH_SET_CPUID, 0)");
    return -1;
  }
  clock_gettime(CLOCK_MONOTONIC, &a);
  int rc = ioctl(vc, KVM_RUN, 0);
  clock_gettime(CLOCK_MONOTONIC, &b);
  if (fault && syscall(SYS_arch_prctl, ARCH_SET_CPUID, 1)) abort();
  ioctl(vc, KVM_GET_REGS, &g);
  *ebx7 = g.r8;
  *xcr0 = g.r9;
  *secs = (b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9;
  *exit_reason = run->exit_reason;
  printf("  KVM_RUN rc=%d exit=%d rip=%llx (hlt at %x) r11=%llu\n", rc, run->exit_reason,
         (unsigned long long)g.rip, 0x10000 + (unsigned)sizeof code - 1,
         (unsigned long long)g.r11);
  close(vc);
  close(vm);
  munmap(mem, msz);
  return 0;
}

int main(int argc, char **argv) {
  uint32_t n = argc > 1 ? strtoul(argv[1], 0, 0) : 10000;
  int kvm = open("/dev/kvm", O_RDWR);
  if (kvm < 0) { perror("/dev/kvm"); return 1; }
  for (int fault = 0; fault < 2; fault++) {
    uint64_t ebx7 = 0, xcr0 = 0;
    double secs = 0;
    int exit_reason = -1;
    printf("CPUID faulting %s:\n", fault ? "on" : "off");
    if (vm_run(kvm, n, fault, &ebx7, &xcr0, &secs, &exit_reason)) continue;
    printf("  leaf 7 EBX %#llx (%s), XGETBV %#llx, %u CPUIDs in %.6f s: %.2f us each\n",
           (unsigned long long)ebx7,
           ebx7 == MARK ? "KVM's table" : "not KVM's table: the host's, or the run broke",
           (unsigned long long)xcr0, n, secs, secs / n * 1e6);
  }
  return 0;
}
