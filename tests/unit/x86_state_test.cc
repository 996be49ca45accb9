// One test per known KVM/TCG state discrepancy (see mixedvm.h).
#include <gtest/gtest.h>

#include <cmath>

#include "mixedvm/x86_state.h"

namespace {

constexpr uint32_t kP = MIXEDVM_DESC_P_MASK;
constexpr uint32_t kS = MIXEDVM_DESC_S_MASK;
constexpr uint32_t Type(unsigned t) { return t << MIXEDVM_DESC_TYPE_SHIFT; }
constexpr uint32_t Dpl(unsigned d) { return d << MIXEDVM_DESC_DPL_SHIFT; }
constexpr uint32_t kG = 1u << 23, kL = 1u << 21;

TEST(TrType, AvailableTssBecomesBusyForKvm) {
  EXPECT_EQ(mixedvm_tr_flags_for_kvm(kP | Type(9)), kP | Type(11));
  EXPECT_EQ(mixedvm_tr_flags_for_kvm(kP | Type(1)), kP | Type(3));
  EXPECT_EQ(mixedvm_tr_flags_for_kvm(kP | Type(11) | kG), kP | Type(11) | kG) << "already busy";
}

TEST(TrType, BusyTssBecomesAvailableForTcg) {
  EXPECT_EQ(mixedvm_tr_flags_for_tcg(kP | Type(11) | kG), kP | Type(9) | kG);
  EXPECT_EQ(mixedvm_tr_flags_for_tcg(kP | Type(3)), kP | Type(1));
}

TEST(TrType, RoundTripKeepsOtherBits) {
  const uint32_t flags = kP | Type(9) | kG | 0xf0000;
  EXPECT_EQ(mixedvm_tr_flags_for_tcg(mixedvm_tr_flags_for_kvm(flags)), flags);
}

TEST(TrType, NonTssTypesUntouched) {
  EXPECT_EQ(mixedvm_tr_flags_for_kvm(kP | Type(2)), kP | Type(2)) << "LDT";
  EXPECT_EQ(mixedvm_tr_flags_for_tcg(kP | Type(12)), kP | Type(12)) << "call gate";
}

TEST(AccessedBit, SetOnUsableCodeAndDataSegments) {
  // 64-bit user CS as SYSRET loads it in TCG (QEMU sets A there, but a
  // descriptor loaded without it must still be fixed).
  const uint32_t cs = kP | kS | Type(0xa) | Dpl(3) | kL | kG;
  EXPECT_EQ(mixedvm_seg_flags_for_kvm(cs), cs | MIXEDVM_DESC_A_MASK);
  const uint32_t ss = kP | kS | Type(0x2) | Dpl(3);
  EXPECT_EQ(mixedvm_seg_flags_for_kvm(ss), ss | MIXEDVM_DESC_A_MASK);
}

TEST(AccessedBit, UnusableAndSystemSegmentsUntouched) {
  EXPECT_EQ(mixedvm_seg_flags_for_kvm(kS | Type(0x2)), kS | Type(0x2)) << "not present";
  EXPECT_EQ(mixedvm_seg_flags_for_kvm(0u), 0u) << "null";
  EXPECT_EQ(mixedvm_seg_flags_for_kvm(kP | Type(2)), kP | Type(2)) << "LDT is a system segment";
}

TEST(SsDpl, ForcedToCpl) {
  // TCG's 64-bit interrupt path loads a null SS carrying only a DPL.
  EXPECT_EQ(mixedvm_ss_flags_for_kvm(Dpl(3), 0), Dpl(0));
  EXPECT_EQ(mixedvm_ss_flags_for_kvm(kP | kS | Type(3) | Dpl(0), 3), kP | kS | Type(3) | Dpl(3));
  EXPECT_EQ(mixedvm_ss_flags_for_kvm(kP | Dpl(2), 7), kP | Dpl(3)) << "CPL is two bits";
}

TEST(XstateBv, StaleHeaderWouldResetSseAndAvx) {
  // TCG left xstate_bv at 0: KVM would load the init state of every component.
  EXPECT_EQ(mixedvm_xstate_bv_for_kvm(0, 0x7), 0x7u);
  // FXSAVE-only guest (XCR0 never set): x87 and SSE still hold state.
  EXPECT_EQ(mixedvm_xstate_bv_for_kvm(0, 0), MIXEDVM_XSTATE_FP | MIXEDVM_XSTATE_SSE);
  // Components KVM already reported stay.
  EXPECT_EQ(mixedvm_xstate_bv_for_kvm(0x200, 0x3), 0x203u);
}

TEST(InterruptShadow, CauseChosenFromIf) {
  EXPECT_EQ(mixedvm_shadow_for_kvm(false, true), 0u);
  EXPECT_EQ(mixedvm_shadow_for_kvm(true, true), MIXEDVM_SHADOW_STI);
  // STI blocking with IF=0 is an invalid VM entry; only MOV SS is possible.
  EXPECT_EQ(mixedvm_shadow_for_kvm(true, false), MIXEDVM_SHADOW_MOV_SS);
}

TEST(InterruptShadow, EitherKvmCauseInhibitsOnTcg) {
  EXPECT_FALSE(mixedvm_inhibit_irq_from_kvm(0));
  EXPECT_TRUE(mixedvm_inhibit_irq_from_kvm(MIXEDVM_SHADOW_STI));
  EXPECT_TRUE(mixedvm_inhibit_irq_from_kvm(MIXEDVM_SHADOW_MOV_SS));
  EXPECT_TRUE(mixedvm_inhibit_irq_from_kvm(MIXEDVM_SHADOW_STI | MIXEDVM_SHADOW_MOV_SS));
}

TEST(StaleEvents, ClearedBeforeReentry) {
  // What KVM reported when it last exited with an interrupt half-delivered.
  MixedvmEvents e{0x30, true, true, true, 14, true, true};
  mixedvm_events_clear_stale(&e);
  EXPECT_EQ(e.interrupt_injected, -1);
  EXPECT_FALSE(e.soft_interrupt);
  EXPECT_FALSE(e.exception_injected);
  EXPECT_FALSE(e.exception_pending);
  EXPECT_EQ(e.exception_nr, -1);
  EXPECT_FALSE(e.nmi_injected);
  EXPECT_FALSE(e.nmi_pending);
}

// Linux's STAR: kernel CS 0x10 in [47:32], user base 0x23 in [63:48], so
// SYSRET gives 64-bit CS 0x33, compat CS 0x23, SS 0x2b.
constexpr uint64_t kLinuxStar = (0x23ull << 48) | (0x10ull << 32);

TEST(Tripwire, Syscall64RewindsToTheInstruction) {
  // Measured on PVM (docs/host-kvm.md): RIP = sentinel, RCX = next RIP.
  MixedvmTripwireExit exit{MIXEDVM_TRIPWIRE_LSTAR, 0x401002, 0x246 | (1u << 16), kLinuxStar};
  MixedvmUserResume r{};
  ASSERT_TRUE(mixedvm_tripwire_rewind_syscall(&exit, &r));
  EXPECT_EQ(r.rip, 0x401000u);
  EXPECT_EQ(r.cs_selector, 0x33);
  EXPECT_EQ(r.ss_selector, 0x2b);
  EXPECT_TRUE(r.cs_long);
  EXPECT_EQ(r.rflags, 0x246u) << "RF cleared, IF and the arithmetic flags restored";
}

TEST(Tripwire, CompatSyscallUsesCstarAndCompatCs) {
  MixedvmTripwireExit exit{MIXEDVM_TRIPWIRE_CSTAR, 0x100000008004ull, 0x202, kLinuxStar};
  MixedvmUserResume r{};
  ASSERT_TRUE(mixedvm_tripwire_rewind_syscall(&exit, &r));
  EXPECT_EQ(r.rip, 0x8002u) << "truncated to 32 bits";
  EXPECT_EQ(r.cs_selector, 0x23);
  EXPECT_FALSE(r.cs_long);
}

TEST(Tripwire, OtherKernelEntriesAreReplayedNotRewound) {
  // A page fault leaves RIP on the faulting instruction.
  MixedvmTripwireExit exit{0x401000, 0, 0, kLinuxStar};
  MixedvmUserResume r{};
  EXPECT_FALSE(mixedvm_tripwire_rewind_syscall(&exit, &r));
}

}  // namespace

namespace {

// What Linux 6.1's native_calibrate_tsc() makes of leaf 0x15, in its own 32-bit
// unsigned arithmetic: crystal_khz * EBX / EAX.
uint32_t LinuxTscKhz(uint32_t eax_denominator, uint32_t ebx_numerator, uint32_t ecx_hz) {
  const uint32_t crystal_khz = ecx_hz / 1000;
  return crystal_khz * ebx_numerator / eax_denominator;
}

TEST(TscLeaf, PlainRatioOverflowsInTheGuest) {
  // The leaf mixed answered until 2026-12-05 (EAX = crystal kHz, EBX = TSC kHz):
  // the PVM host's -cpu max guest said "Detected 1.544 MHz processor".
  EXPECT_EQ(LinuxTscKhz(1000000, 2600000, 1000000000), 1544u);
}

TEST(TscLeaf, RatioFitsAndIsExactForRoundFrequencies) {
  uint32_t num = 0, den = 0;
  ASSERT_TRUE(mixedvm_tsc_leaf_ratio(2600000, 1000000, &num, &den));
  EXPECT_EQ(num, 13u);
  EXPECT_EQ(den, 5u);
  EXPECT_EQ(LinuxTscKhz(den, num, 1000000000), 2600000u);
}

TEST(TscLeaf, OddFrequenciesWithinOnePpm) {
  for (uint32_t tsc_khz : {2599999u, 2095074u, 3699998u, 1000001u, 5123457u, 999u}) {
    uint32_t num = 0, den = 0;
    ASSERT_TRUE(mixedvm_tsc_leaf_ratio(tsc_khz, 1000000, &num, &den)) << tsc_khz;
    EXPECT_LE(uint64_t{1000000} * num, 0xffffffffull) << tsc_khz;
    const double got = 1e6 * num / den;
    EXPECT_LT(std::abs(got - tsc_khz) / tsc_khz, 1e-6)
        << tsc_khz << " kHz as " << num << "/" << den;
  }
}

TEST(TscLeaf, OtherCrystals) {
  uint32_t num = 0, den = 0;
  ASSERT_TRUE(mixedvm_tsc_leaf_ratio(2600000, 25000, &num, &den));  // 25 MHz crystal
  EXPECT_EQ(LinuxTscKhz(den, num, 25000000), 2600000u);
  ASSERT_TRUE(mixedvm_tsc_leaf_ratio(2599999, 25000, &num, &den));
  EXPECT_LE(uint64_t{25000} * num, 0xffffffffull);
  EXPECT_NEAR(LinuxTscKhz(den, num, 25000000), 2599999.0, 2.6);  // 1 ppm
}

TEST(TscLeaf, RefusesWhatCannotBeEncoded) {
  uint32_t num = 7, den = 7;
  EXPECT_FALSE(mixedvm_tsc_leaf_ratio(0, 1000000, &num, &den));
  EXPECT_FALSE(mixedvm_tsc_leaf_ratio(2600000, 0, &num, &den));
  EXPECT_EQ(num, 7u);
  EXPECT_EQ(den, 7u);
}

}  // namespace
