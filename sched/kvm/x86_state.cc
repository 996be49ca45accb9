// x86 state fix-ups for KVM <-> TCG moves. Pure functions; see mixedvm.h for
// why each discrepancy exists. Each has a unit test in tests/unit/.
#include "mixedvm/x86_state.h"

namespace {

constexpr unsigned Type(uint32_t flags) {
  return (flags & MIXEDVM_DESC_TYPE_MASK) >> MIXEDVM_DESC_TYPE_SHIFT;
}

constexpr uint32_t WithType(uint32_t flags, unsigned type) {
  return (flags & ~MIXEDVM_DESC_TYPE_MASK) | (type << MIXEDVM_DESC_TYPE_SHIFT);
}

// TSS types: bit 1 is the busy bit for both 16-bit (1/3) and 32/64-bit (9/11).
constexpr unsigned kTssBusyBit = 0x2;

bool IsTss(unsigned type) { return type == 1 || type == 3 || type == 9 || type == 11; }

}  // namespace

extern "C" {

uint32_t mixedvm_tr_flags_for_kvm(uint32_t flags) noexcept {
  const unsigned type = Type(flags);
  return IsTss(type) ? WithType(flags, type | kTssBusyBit) : flags;
}

uint32_t mixedvm_tr_flags_for_tcg(uint32_t flags) noexcept {
  const unsigned type = Type(flags);
  return IsTss(type) ? WithType(flags, type & ~kTssBusyBit) : flags;
}

uint32_t mixedvm_seg_flags_for_kvm(uint32_t flags) noexcept {
  const bool code_or_data = flags & MIXEDVM_DESC_S_MASK;
  const bool present = flags & MIXEDVM_DESC_P_MASK;
  return (code_or_data && present) ? (flags | MIXEDVM_DESC_A_MASK) : flags;
}

uint32_t mixedvm_ss_flags_for_kvm(uint32_t ss_flags, unsigned cpl) noexcept {
  return (ss_flags & ~MIXEDVM_DESC_DPL_MASK) | ((cpl & 3u) << MIXEDVM_DESC_DPL_SHIFT);
}

uint64_t mixedvm_xstate_bv_for_kvm(uint64_t xstate_bv, uint64_t xcr0) noexcept {
  return xstate_bv | xcr0 | MIXEDVM_XSTATE_FP | MIXEDVM_XSTATE_SSE;
}

unsigned mixedvm_shadow_for_kvm(bool tcg_inhibit_irq, bool rflags_if) noexcept {
  if (!tcg_inhibit_irq) return 0;
  return rflags_if ? MIXEDVM_SHADOW_STI : MIXEDVM_SHADOW_MOV_SS;
}

bool mixedvm_inhibit_irq_from_kvm(unsigned kvm_shadow) noexcept {
  return (kvm_shadow & (MIXEDVM_SHADOW_STI | MIXEDVM_SHADOW_MOV_SS)) != 0;
}

void mixedvm_events_clear_stale(MixedvmEvents* e) noexcept {
  e->interrupt_injected = -1;
  e->soft_interrupt = false;
  e->exception_injected = false;
  e->exception_pending = false;
  e->exception_nr = -1;
  e->nmi_injected = false;
  e->nmi_pending = false;
}

bool mixedvm_tripwire_rewind_syscall(const MixedvmTripwireExit* in,
                                     MixedvmUserResume* out) noexcept {
  // SYSCALL is 0F 05, two bytes; RCX holds the address after it.
  constexpr uint64_t kSyscallLength = 2;
  // SYSRET's selectors: STAR[63:48] is the base; 64-bit CS = base + 16,
  // compat CS = base, SS = base + 8, all with RPL 3.
  const uint16_t base = static_cast<uint16_t>(in->star >> 48);
  if (in->rip == MIXEDVM_TRIPWIRE_LSTAR) {
    out->cs_selector = static_cast<uint16_t>((base + 16) | 3);
    out->cs_long = true;
  } else if (in->rip == MIXEDVM_TRIPWIRE_CSTAR) {
    out->cs_selector = static_cast<uint16_t>(base | 3);
    out->cs_long = false;
  } else {
    return false;
  }
  out->ss_selector = static_cast<uint16_t>((base + 8) | 3);
  out->rip = in->rcx - kSyscallLength;
  if (!out->cs_long) out->rip &= 0xffffffffull;
  // SYSCALL saved RFLAGS with RF cleared; bit 1 is always set.
  out->rflags = (in->r11 & ~(1ull << 16)) | 0x2;
  return true;
}

}  // extern "C"
