/*
 * mixedvm KVM exit counters of a vCPU, from its binary stats fd.
 *
 * Same rules as mixedvm/mixedvm.h: plain C, no third-party types, nothing
 * throws, errors go into a caller's buffer.
 */
#ifndef MIXEDVM_KVM_STATS_H
#define MIXEDVM_KVM_STATS_H

#include "mixedvm/mixedvm.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * ---------------------------------------------------------------------------
 * KVM exit counters of one vCPU, from its binary stats fd (KVM_GET_STATS_FD):
 * the descriptors are parsed once, each read is one pread of the data block.
 * ---------------------------------------------------------------------------
 */
#define MIXEDVM_KVM_EXIT_STATS 8
/* "exits", "io_exits", "mmio_exits", "irq_window_exits", "halt_exits",
 * "signal_exits", "insn_emulation", "insn_emulation_fail" */
extern const char *const mixedvm_kvm_exit_stat_names[MIXEDVM_KVM_EXIT_STATS];

typedef struct MixedvmKvmStats MixedvmKvmStats;
MixedvmKvmStats *mixedvm_kvm_stats_open(int stats_fd, char *err,
                                        size_t errlen) MIXEDVM_NOEXCEPT;
/* Counters this kernel does not offer read 0. */
bool mixedvm_kvm_stats_read(MixedvmKvmStats *s,
                            uint64_t values[MIXEDVM_KVM_EXIT_STATS]) MIXEDVM_NOEXCEPT;
void mixedvm_kvm_stats_free(MixedvmKvmStats *s) MIXEDVM_NOEXCEPT;

/*
 * Every statistic the fd describes, in the kernel's order: page faults, TLB
 * flushes, MMU counters and the rest, so that a report can say where a vCPU's
 * time inside KVM goes. A histogram's value is the sum of its buckets (the
 * number of samples).
 */
typedef struct MixedvmKvmStat {
    char name[64];
    uint64_t value;
} MixedvmKvmStat;
size_t mixedvm_kvm_stats_count(const MixedvmKvmStats *s) MIXEDVM_NOEXCEPT;
/* Fills up to max entries; returns how many, or -1 if the data could not be read. */
int mixedvm_kvm_stats_read_all(MixedvmKvmStats *s, MixedvmKvmStat *out,
                               size_t max) MIXEDVM_NOEXCEPT;

#ifdef __cplusplus
}
#endif

#endif /* MIXEDVM_KVM_STATS_H */
