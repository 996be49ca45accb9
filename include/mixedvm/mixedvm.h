/*
 * mixedvm C API: the interface the patched QEMU calls, one header per module:
 *   mixedvm/sched.h      the scheduler: policies, placement, telemetry record
 *   mixedvm/kvm_probe.h  the start-up probe: does KVM run guest kernel code?
 *   mixedvm/kvm_stats.h  a vCPU's KVM exit counters
 *   mixedvm/x86_state.h  x86 state fix-ups between KVM and TCG, the tripwire
 *   mixedvm/pinning.h    host topology and thread pinning (hwloc)
 *   mixedvm/cpu_list.h   the vCPU list syntax of -accel mixed
 * This one holds what they share.
 *
 * Rules for this header (see docs/design.md):
 *  - plain C, usable from QEMU's C11 code;
 *  - no TBB, hwloc or liburcu type ever appears here;
 *  - no function throws: the C++ side catches everything at this boundary,
 *    because QEMU unwinds with siglongjmp, never with C++ exceptions;
 *  - errors are reported as a false/negative return plus a message written
 *    into a caller-provided buffer, never printed.
 */
#ifndef MIXEDVM_MIXEDVM_H
#define MIXEDVM_MIXEDVM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
#define MIXEDVM_NOEXCEPT noexcept
extern "C" {
#else
#define MIXEDVM_NOEXCEPT
#endif

/* Version of the mixedvm library, e.g. "0.1.0". Never NULL. */
const char *mixedvm_version(void) MIXEDVM_NOEXCEPT;

#ifdef __cplusplus
}
#endif

#endif /* MIXEDVM_MIXEDVM_H */
