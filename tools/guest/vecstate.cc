// vecstate: does this guest keep every vector register a process can touch, and does
// every instruction-set extension CPUID offers really run?
//
//   vecstate --cpu N [--rounds R] [--procs P]   registers across sched_yield()
//   vecstate --isa [--cpu N]                    each offered extension, executed
//   vecstate --cpuid [--cpu N]                  what CPUID and XGETBV say, one line
//
// Registers: P processes (2 by default) pinned to vCPU N each load their own pattern
// into every register the CPU and the kernel let user code use (xmm0-15; ymm0-15 with
// AVX; zmm0-31 and k0-7 with AVX-512), call sched_yield() from the same assembly block
// (so no compiler-generated code runs in between) and store the registers back. Any
// byte that differs is a register the kernel's context switch, or the accelerator under
// it, lost. It prints, per register class, the rounds that lost something, and exits 1
// if any did.
//
// ISA: every extension the CPU offers (the way glibc decides: CPUID, and XGETBV for
// state-carrying ones) runs one instruction with a known answer. One that raises #UD
// or answers wrong fails the check. RTM is checked for what the architecture promises:
// a transaction either commits with its stores, or aborts to its fallback with none of
// them, and XTEST says which; "every transaction aborts" is a correct RTM.
//
// CPUID: the guest-visible ISA as a user program reads it, as one line: tests run it
// on vCPUs placed on different backends and compare.
#include <cpuid.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "pin.h"

namespace {

// ---------------------------------------------------------------------------------
// What the CPU offers, read as glibc reads it.

struct Cpu {
  uint32_t l1_ecx = 0, l1_edx = 0, l7_ebx = 0, l7_ecx = 0, l7_edx = 0, l7_1_eax = 0;
  uint32_t e1_ecx = 0, e1_edx = 0;
  uint64_t xcr0 = 0;  // 0 unless the kernel set CR4.OSXSAVE
  bool Has(uint32_t word, int bit) const { return (word >> bit) & 1; }
  bool osxsave() const { return Has(l1_ecx, 27); }
  // State a process may use: the feature, and the kernel saving its state (XCR0).
  bool avx() const { return Has(l1_ecx, 28) && osxsave() && (xcr0 & 6) == 6; }
  bool avx512() const { return Has(l7_ebx, 16) && avx() && (xcr0 & 0xe0) == 0xe0; }
};

uint64_t Xgetbv() {
  uint32_t lo, hi;
  asm volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (uint64_t(hi) << 32) | lo;
}

Cpu ReadCpu() {
  Cpu c;
  uint32_t a, b, cx, d, max;
  __cpuid(0, max, b, cx, d);
  __cpuid(1, a, b, c.l1_ecx, c.l1_edx);
  if (max >= 7) {
    __cpuid_count(7, 0, a, c.l7_ebx, c.l7_ecx, c.l7_edx);
    __cpuid_count(7, 1, c.l7_1_eax, b, cx, d);
  }
  __cpuid(0x80000000, a, b, cx, d);
  if (a >= 0x80000001) __cpuid(0x80000001, a, b, c.e1_ecx, c.e1_edx);
  if (c.osxsave()) c.xcr0 = Xgetbv();
  return c;
}

// ---------------------------------------------------------------------------------
// Registers across a context switch.

// Register images, in the order the assembly below loads and stores them.
struct alignas(64) Regs {
  uint8_t zmm[32][64];  // xmm/ymm/zmm n: its low 16/32/64 bytes
  uint64_t k[8];
};

enum Level : int { kSse = 1, kAvx = 2, kAvx512 = 3 };

}  // namespace

// vec_yield(in, out, level): load every register of `level` from `in`, sched_yield(),
// store them to `out`. All vector registers are caller-saved in the SysV ABI, so the
// compiler keeps nothing of its own in them across this call.
extern "C" void vec_yield(const Regs* in, Regs* out, int level);
asm(R"(
    .text
    .globl vec_yield
    .type vec_yield, @function
vec_yield:
    cmp $3, %edx
    je 3f
    cmp $2, %edx
    je 2f
    .irp i,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
    movdqu \i*64(%rdi), %xmm\i
    .endr
    mov $24, %eax
    syscall
    .irp i,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
    movdqu %xmm\i, \i*64(%rsi)
    .endr
    ret
2:
    .irp i,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
    vmovdqu \i*64(%rdi), %ymm\i
    .endr
    mov $24, %eax
    syscall
    .irp i,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15
    vmovdqu %ymm\i, \i*64(%rsi)
    .endr
    vzeroupper
    ret
3:
    .irp i,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    vmovdqu64 \i*64(%rdi), %zmm\i
    .endr
    .irp i,0,1,2,3,4,5,6,7
    kmovw 2048+\i*8(%rdi), %k\i
    .endr
    mov $24, %eax
    syscall
    .irp i,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    vmovdqu64 %zmm\i, \i*64(%rsi)
    .endr
    .irp i,0,1,2,3,4,5,6,7
    kmovw %k\i, 2048+\i*8(%rsi)
    .endr
    vzeroupper
    ret
    .size vec_yield, .-vec_yield
)");

namespace {

uint64_t Mix(uint64_t x) {  // splitmix64: every byte differs between processes/rounds
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

struct Loss {
  uint64_t rounds = 0, xmm = 0, ymm_hi = 0, zmm_hi = 0, zmm16 = 0, k = 0;
  int first_reg = -1;  // first register seen wrong, for the message
};

// One process: `rounds` round trips through the scheduler, each with its own pattern.
Loss RunRegisterRounds(int level, uint64_t seed, uint64_t rounds) {
  Loss loss;
  Regs in{}, out{};
  const int nregs = level == kAvx512 ? 32 : 16;
  const int width = level == kSse ? 16 : level == kAvx ? 32 : 64;
  for (uint64_t r = 0; r < rounds; ++r) {
    for (int i = 0; i < nregs; ++i)
      for (int q = 0; q < width / 8; ++q) {
        const uint64_t v = Mix(seed * 1000003 + r * 4099 + i * 67 + q);
        std::memcpy(&in.zmm[i][q * 8], &v, 8);
      }
    for (int i = 0; i < 8; ++i) in.k[i] = Mix(seed + r * 7 + i) & 0xffff;  // kmovw
    std::memset(&out, 0, sizeof out);
    vec_yield(&in, &out, level);
    ++loss.rounds;
    bool xmm = false, ymm = false, zmm = false, hi16 = false, k = false;
    for (int i = 0; i < nregs; ++i) {
      for (int b = 0; b < width; ++b) {
        if (in.zmm[i][b] == out.zmm[i][b]) continue;
        if (loss.first_reg < 0) loss.first_reg = i;
        if (i >= 16) hi16 = true;
        else if (b < 16) xmm = true;
        else if (b < 32) ymm = true;
        else zmm = true;
      }
    }
    if (level == kAvx512)
      for (int i = 0; i < 8; ++i) k |= in.k[i] != out.k[i];
    loss.xmm += xmm;
    loss.ymm_hi += ymm;
    loss.zmm_hi += zmm;
    loss.zmm16 += hi16;
    loss.k += k;
  }
  return loss;
}

int Registers(int cpu, uint64_t rounds, int procs) {
  const Cpu c = ReadCpu();
  const int level = c.avx512() ? kAvx512 : c.avx() ? kAvx : kSse;
  const char* names[] = {"", "sse (xmm0-15)", "avx (ymm0-15)", "avx512 (zmm0-31, k0-7)"};
  std::printf("vecstate: cpu=%d level=%s xcr0=%#llx procs=%d rounds=%llu\n", cpu,
              names[level], (unsigned long long)c.xcr0, procs, (unsigned long long)rounds);
  std::fflush(stdout);
  std::vector<int> fds;
  std::vector<pid_t> pids;
  for (int p = 0; p < procs; ++p) {
    int fd[2];
    if (pipe(fd) != 0) { std::perror("vecstate: pipe"); return 1; }
    const pid_t pid = fork();
    if (pid < 0) { std::perror("vecstate: fork"); return 1; }
    if (pid == 0) {
      close(fd[0]);
      const std::string error = PinToCpu(cpu);
      if (!error.empty()) { std::fprintf(stderr, "vecstate: %s\n", error.c_str()); _exit(1); }
      const Loss loss = RunRegisterRounds(level, 0x1234567ULL * (p + 1), rounds);
      if (write(fd[1], &loss, sizeof loss) != sizeof loss) _exit(1);
      _exit(0);
    }
    close(fd[1]);
    fds.push_back(fd[0]);
    pids.push_back(pid);
  }
  Loss total;
  bool ok = true;
  for (int p = 0; p < procs; ++p) {
    Loss l;
    const bool got = read(fds[p], &l, sizeof l) == sizeof l;
    int status = 0;
    waitpid(pids[p], &status, 0);
    if (!got || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      std::printf("vecstate: process %d died (status %#x)\n", p, status);
      ok = false;
      continue;
    }
    total.rounds += l.rounds;
    total.xmm += l.xmm;
    total.ymm_hi += l.ymm_hi;
    total.zmm_hi += l.zmm_hi;
    total.zmm16 += l.zmm16;
    total.k += l.k;
    if (total.first_reg < 0) total.first_reg = l.first_reg;
  }
  const uint64_t lost = total.xmm + total.ymm_hi + total.zmm_hi + total.zmm16 + total.k;
  std::printf("vecstate: rounds=%llu lost: xmm=%llu ymm-upper=%llu zmm-upper=%llu "
              "zmm16-31=%llu k=%llu first-register=%d\n",
              (unsigned long long)total.rounds, (unsigned long long)total.xmm,
              (unsigned long long)total.ymm_hi, (unsigned long long)total.zmm_hi,
              (unsigned long long)total.zmm16, (unsigned long long)total.k, total.first_reg);
  ok = ok && lost == 0;
  std::printf("vecstate: registers %s\n", ok ? "PASS" : "FAIL");
  return ok ? 0 : 1;
}

// ---------------------------------------------------------------------------------
// Each offered extension, executed.

sigjmp_buf g_ud_jump;
volatile sig_atomic_t g_ud_armed = 0;

void OnSigill(int) {
  if (g_ud_armed) siglongjmp(g_ud_jump, 1);
  _exit(99);
}

// Runs `probe` (returns true when its instruction answered right). 1 = right, 0 = wrong
// answer, -1 = #UD.
template <typename F>
int Try(F probe) {
  if (sigsetjmp(g_ud_jump, 1)) {
    g_ud_armed = 0;
    return -1;
  }
  g_ud_armed = 1;
  const bool right = probe();
  g_ud_armed = 0;
  return right ? 1 : 0;
}

struct IsaCheck {
  const char* name;
  bool offered;
  bool (*probe)();
};

bool ProbeSse42() { uint32_t c = 0; asm volatile("crc32b %1, %0" : "+r"(c) : "r"((uint8_t)1)); return c == 0xf26b8303u; }
bool ProbePopcnt() { uint64_t r, x = 0xf0f0; asm volatile("popcnt %1, %0" : "=r"(r) : "r"(x)); return r == 8; }
bool ProbeMovbe() { uint32_t m = 0x11223344, r; asm volatile("movbe %1, %0" : "=r"(r) : "m"(m)); return r == 0x44332211; }
bool ProbeLzcnt() { uint64_t r, x = 1; asm volatile("lzcnt %1, %0" : "=r"(r) : "r"(x)); return r == 63; }
bool ProbeBmi1() { uint64_t r, x = 0b1100; asm volatile("blsr %1, %0" : "=r"(r) : "r"(x)); return r == 0b1000; }
bool ProbeBmi2() { uint64_t r, x = 0xff, m = 0x0f0; asm volatile("pext %2, %1, %0" : "=r"(r) : "r"(x), "r"(m)); return r == 0xf; }
bool ProbeAdx() { uint64_t a = 1, b = 2; asm volatile("clc; adcx %1, %0" : "+r"(a) : "r"(b) : "cc"); return a == 3; }
bool ProbeSsse3() { uint64_t r; asm volatile("pcmpeqb %%xmm0, %%xmm0; pabsb %%xmm0, %%xmm0; movq %%xmm0, %0" : "=r"(r) :: "xmm0"); return r == 0x0101010101010101ULL; }
bool ProbeSse41() { uint64_t r; asm volatile("pcmpeqb %%xmm0, %%xmm0; pxor %%xmm1, %%xmm1; pminsb %%xmm1, %%xmm0; movq %%xmm0, %0" : "=r"(r) :: "xmm0", "xmm1"); return r == ~0ULL; }
bool ProbeAes() { uint64_t r; asm volatile("pxor %%xmm0, %%xmm0; pxor %%xmm1, %%xmm1; aesenc %%xmm1, %%xmm0; movq %%xmm0, %0" : "=r"(r) :: "xmm0", "xmm1"); return r == 0x6363636363636363ULL; }
bool ProbePclmul() { uint64_t r; asm volatile("mov $3, %%eax; movq %%rax, %%xmm0; movq %%rax, %%xmm1; pclmulqdq $0, %%xmm1, %%xmm0; movq %%xmm0, %0" : "=r"(r) :: "rax", "xmm0", "xmm1"); return r == 5; }
bool ProbeAvx() { uint64_t r; asm volatile("vpcmpeqb %%xmm0, %%xmm0, %%xmm0; vxorps %%ymm1, %%ymm1, %%ymm1; vandps %%ymm0, %%ymm1, %%ymm1; vmovq %%xmm0, %0; vzeroupper" : "=r"(r) :: "xmm0", "xmm1"); return r == ~0ULL; }
bool ProbeAvx2() { uint64_t r; asm volatile("mov $7, %%eax; vmovd %%eax, %%xmm0; vpbroadcastd %%xmm0, %%ymm0; vextracti128 $1, %%ymm0, %%xmm1; vmovq %%xmm1, %0; vzeroupper" : "=r"(r) :: "rax", "xmm0", "xmm1"); return r == 0x0000000700000007ULL; }
bool ProbeFma() { double a = 2, b = 3, c = 4; asm volatile("vfmadd213sd %2, %1, %0" : "+x"(a) : "x"(b), "x"(c)); return a == 10; }
bool ProbeF16c() { uint64_t r; asm volatile("mov $0x3c00, %%eax; vmovd %%eax, %%xmm0; vcvtph2ps %%xmm0, %%xmm1; vmovd %%xmm1, %%eax; mov %%rax, %0" : "=r"(r) :: "rax", "xmm0", "xmm1"); return (uint32_t)r == 0x3f800000u; }
bool ProbeSha() { asm volatile("pxor %%xmm0, %%xmm0; pxor %%xmm1, %%xmm1; sha1msg1 %%xmm1, %%xmm0" ::: "xmm0", "xmm1"); return true; }
bool ProbeGfni() { uint64_t r; asm volatile("pxor %%xmm0, %%xmm0; pxor %%xmm1, %%xmm1; gf2p8mulb %%xmm1, %%xmm0; movq %%xmm0, %0" : "=r"(r) :: "xmm0", "xmm1"); return r == 0; }
bool ProbeRdrand() { uint64_t r; unsigned char ok = 0; for (int i = 0; i < 100 && !ok; ++i) asm volatile("rdrand %0; setc %1" : "=r"(r), "=qm"(ok)); return ok; }
bool ProbeRdseed() { uint64_t r; unsigned char ok = 0; for (int i = 0; i < 1000 && !ok; ++i) asm volatile("rdseed %0; setc %1" : "=r"(r), "=qm"(ok)); return ok; }
bool ProbeAvx512f() { uint64_t r; asm volatile("mov $9, %%eax; vpbroadcastd %%eax, %%zmm17; vextracti32x4 $3, %%zmm17, %%xmm0; vmovq %%xmm0, %0; vzeroupper" : "=r"(r) :: "rax", "xmm0"); return r == 0x0000000900000009ULL; }
bool ProbeAvx512bw() { uint64_t r; asm volatile("vpternlogd $0xff, %%zmm0, %%zmm0, %%zmm0; vpmovb2m %%zmm0, %%k1; kmovq %%k1, %0; vzeroupper" : "=r"(r) :: "xmm0"); return r == ~0ULL; }

// RTM: a transaction commits with its store or aborts to the fallback without it.
bool ProbeRtm() {
  static volatile uint64_t cell;
  for (int i = 0; i < 200; ++i) {
    cell = 0;
    uint32_t status = ~0u;
    unsigned char in_tx = 0, after = 1;
    asm volatile(
        "xbegin 1f\n\t"
        "xtest\n\t"
        "setnz %1\n\t"
        "movq $1, %3\n\t"
        "xend\n\t"
        "1:\n\t"
        "xtest\n\t"
        "setnz %2\n\t"
        : "+a"(status), "=&qm"(in_tx), "=&qm"(after), "+m"(cell)
        :
        : "memory", "cc");
    if (after) return false;  // XTEST outside any transaction must say "not in one"
    if (status == ~0u) {      // committed: XTEST said "in one", the store is there
      if (!in_tx || cell != 1) return false;
    } else {                  // aborted: the store must not be there
      if (cell != 0) return false;
    }
  }
  return true;
}

int Isa() {
  const Cpu c = ReadCpu();
  struct sigaction sa {};
  sa.sa_handler = OnSigill;
  sigaction(SIGILL, &sa, nullptr);
  const IsaCheck checks[] = {
      {"ssse3", c.Has(c.l1_ecx, 9), ProbeSsse3},
      {"sse4.1", c.Has(c.l1_ecx, 19), ProbeSse41},
      {"sse4.2", c.Has(c.l1_ecx, 20), ProbeSse42},
      {"popcnt", c.Has(c.l1_ecx, 23), ProbePopcnt},
      {"movbe", c.Has(c.l1_ecx, 22), ProbeMovbe},
      {"aes", c.Has(c.l1_ecx, 25), ProbeAes},
      {"pclmulqdq", c.Has(c.l1_ecx, 1), ProbePclmul},
      {"rdrand", c.Has(c.l1_ecx, 30), ProbeRdrand},
      {"avx", c.avx(), ProbeAvx},
      {"fma", c.avx() && c.Has(c.l1_ecx, 12), ProbeFma},
      {"f16c", c.avx() && c.Has(c.l1_ecx, 29), ProbeF16c},
      {"avx2", c.avx() && c.Has(c.l7_ebx, 5), ProbeAvx2},
      {"bmi1", c.Has(c.l7_ebx, 3), ProbeBmi1},
      {"bmi2", c.Has(c.l7_ebx, 8), ProbeBmi2},
      {"adx", c.Has(c.l7_ebx, 19), ProbeAdx},
      {"rdseed", c.Has(c.l7_ebx, 18), ProbeRdseed},
      {"sha", c.Has(c.l7_ebx, 29), ProbeSha},
      {"gfni", c.Has(c.l7_ecx, 8), ProbeGfni},
      {"lzcnt", c.Has(c.e1_ecx, 5), ProbeLzcnt},
      {"rtm", c.Has(c.l7_ebx, 11), ProbeRtm},
      {"avx512f", c.avx512(), ProbeAvx512f},
      {"avx512bw", c.avx512() && c.Has(c.l7_ebx, 30), ProbeAvx512bw},
  };
  int failed = 0, offered = 0;
  std::string line = "vecstate: isa";
  for (const IsaCheck& check : checks) {
    if (!check.offered) continue;
    ++offered;
    const int r = Try(check.probe);
    line += std::string(" ") + check.name + (r == 1 ? "=ok" : r == 0 ? "=WRONG" : "=UD");
    failed += r != 1;
  }
  std::printf("%s\nvecstate: isa offered=%d failed=%d %s\n", line.c_str(), offered, failed,
              failed ? "FAIL" : "PASS");
  return failed ? 1 : 0;
}

// ---------------------------------------------------------------------------------
// The ISA as one line: every leaf a user program reads to pick its instructions.

int CpuidLine() {
  const Cpu c = ReadCpu();
  uint32_t d0a, d0b, d0c, d0d, d1a, d1b, d1c, d1d, vendor[4] = {};
  __cpuid(0, d0a, vendor[0], vendor[2], vendor[1]);
  __cpuid_count(0xd, 0, d0a, d0b, d0c, d0d);
  __cpuid_count(0xd, 1, d1a, d1b, d1c, d1d);
  std::printf("vecstate: cpuid vendor=%.12s 1.ecx=%08x 1.edx=%08x 7.ebx=%08x 7.ecx=%08x "
              "7.edx=%08x 7.1.eax=%08x 80000001.ecx=%08x 80000001.edx=%08x "
              "d.0.eax=%08x d.0.edx=%08x d.1.eax=%08x xcr0=%#llx\n",
              reinterpret_cast<const char*>(vendor), c.l1_ecx, c.l1_edx, c.l7_ebx, c.l7_ecx,
              c.l7_edx, c.l7_1_eax, c.e1_ecx, c.e1_edx, d0a, d0d, d1a,
              (unsigned long long)c.xcr0);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  int cpu = 0, procs = 2;
  uint64_t rounds = 20000;
  enum { kRegisters, kIsa, kCpuid } mode = kRegisters;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--isa") mode = kIsa;
    else if (a == "--cpuid") mode = kCpuid;
    else if (i + 1 < argc && a == "--cpu") cpu = std::atoi(argv[++i]);
    else if (i + 1 < argc && a == "--rounds") rounds = std::strtoull(argv[++i], nullptr, 10);
    else if (i + 1 < argc && a == "--procs") procs = std::atoi(argv[++i]);
    else {
      std::fprintf(stderr, "usage: vecstate [--cpu N] [--rounds R] [--procs P] | --isa | "
                           "--cpuid\n");
      return 2;
    }
  }
  if (procs < 1 || rounds == 0) {
    std::fprintf(stderr, "vecstate: --procs and --rounds must be positive\n");
    return 2;
  }
  if (mode != kRegisters) {
    const std::string error = PinToCpu(cpu);
    if (!error.empty()) { std::fprintf(stderr, "vecstate: %s\n", error.c_str()); return 1; }
    return mode == kIsa ? Isa() : CpuidLine();
  }
  return Registers(cpu, rounds, procs);
}
