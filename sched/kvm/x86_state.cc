// x86 state fix-ups for KVM <-> TCG moves. Pure functions; see mixedvm.h for
// why each discrepancy exists. Each has a unit test in tests/unit/.
#include "mixedvm/x86_state.h"

#include <algorithm>

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

bool mixedvm_tsc_leaf_ratio(uint32_t tsc_khz, uint32_t crystal_khz, uint32_t* numerator,
                            uint32_t* denominator) noexcept {
  if (tsc_khz == 0 || crystal_khz == 0) return false;
  // The guest multiplies crystal_khz by the numerator in 32 bits.
  const uint64_t max_num = 0xffffffffull / crystal_khz;
  if (max_num == 0) return false;
  // Convergents h/k of tsc_khz / crystal_khz, stopping before a numerator
  // that would overflow; then the best semiconvergent that still fits.
  uint64_t h0 = 0, h1 = 1, k0 = 1, k1 = 0;  // h(-2), h(-1), k(-2), k(-1)
  uint64_t p = tsc_khz, q = crystal_khz;
  while (q != 0) {
    const uint64_t a = p / q;
    const uint64_t h2 = a * h1 + h0, k2 = a * k1 + k0;
    if (h2 > max_num || k2 > 0xffffffffull) {
      // Largest t with t*h1 + h0 in range; use it if it beats h1/k1.
      uint64_t t = (max_num - h0) / h1;
      if (k1 != 0) t = std::min<uint64_t>(t, (0xffffffffull - k0) / k1);
      const uint64_t hs = t * h1 + h0, ks = t * k1 + k0;
      auto error = [&](uint64_t h, uint64_t k) {
        // |h/k - tsc/crystal| compared as |h*crystal - tsc*k| / k
        const long double e = static_cast<long double>(h) * crystal_khz -
                              static_cast<long double>(tsc_khz) * k;
        return (e < 0 ? -e : e) / k;
      };
      if (t > 0 && ks != 0 && (k1 == 0 || error(hs, ks) < error(h1, k1))) {
        h1 = hs;
        k1 = ks;
      }
      break;
    }
    h0 = h1;
    h1 = h2;
    k0 = k1;
    k1 = k2;
    const uint64_t r = p % q;
    p = q;
    q = r;
  }
  if (h1 == 0 || k1 == 0) return false;
  *numerator = static_cast<uint32_t>(h1);
  *denominator = static_cast<uint32_t>(k1);
  return true;
}

}  // extern "C"
