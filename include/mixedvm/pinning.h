/*
 * mixedvm host topology and vCPU-thread pinning: the hwloc wall (sched/topology.cc).
 * No hwloc type crosses it.
 *
 * Same rules as mixedvm/mixedvm.h: plain C, no third-party types, nothing
 * throws, errors go into a caller's buffer.
 */
#ifndef MIXEDVM_PINNING_H
#define MIXEDVM_PINNING_H

#include "mixedvm/mixedvm.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Host topology as counted by hwloc. */
typedef struct MixedvmTopology {
    unsigned packages;
    unsigned numa_nodes;
    unsigned cores;
    unsigned pus;          /* hardware threads */
} MixedvmTopology;

/*
 * Discover the topology of this host (xml_path == NULL) or of an hwloc XML
 * export (xml_path != NULL, used by tests and the offline simulator).
 * Returns false and fills err on failure.
 */
bool mixedvm_topology_discover(const char *xml_path, MixedvmTopology *out,
                               char *err, size_t errlen) MIXEDVM_NOEXCEPT;


/*
 * ---------------------------------------------------------------------------
 * Pinning vCPU threads to host CPUs (hwloc).
 *   off      no pinning
 *   compact  vCPU i on the i-th hardware thread, in hwloc's order (packed
 *            onto cores and NUMA nodes, wrapping around)
 *   split    vCPUs on KVM on the first half of the cores, vCPUs on TCG on the
 *            other half (the whole group each): KVM and TCG threads never
 *            share a core. A vCPU is re-pinned when it changes backend.
 * ---------------------------------------------------------------------------
 */
typedef enum MixedvmPinMode {
    MIXEDVM_PIN_OFF,
    MIXEDVM_PIN_COMPACT,
    MIXEDVM_PIN_SPLIT,
} MixedvmPinMode;

typedef struct MixedvmPinner MixedvmPinner;

bool mixedvm_pin_mode_parse(const char *name, MixedvmPinMode *out, char *err,
                            size_t errlen) MIXEDVM_NOEXCEPT;

/*
 * A pinner for nvcpus vCPUs on this host (xml_path NULL) or on an hwloc XML
 * topology (tests; such a pinner can compute but not bind).
 */
MixedvmPinner *mixedvm_pinner_new(MixedvmPinMode mode, const char *xml_path,
                                  unsigned nvcpus, char *err,
                                  size_t errlen) MIXEDVM_NOEXCEPT;
void mixedvm_pinner_free(MixedvmPinner *p) MIXEDVM_NOEXCEPT;

/*
 * The OS indexes of the host CPUs vCPU `vcpu` runs on when on backend
 * `on_kvm`; fills up to max entries and returns how many there are (0: no
 * pinning in this mode).
 */
int mixedvm_pinner_cpus(MixedvmPinner *p, unsigned vcpu, bool on_kvm,
                        int *cpus, int max) MIXEDVM_NOEXCEPT;

/* Binds the calling thread as mixedvm_pinner_cpus() says. */
bool mixedvm_pinner_apply(MixedvmPinner *p, unsigned vcpu, bool on_kvm,
                          char *err, size_t errlen) MIXEDVM_NOEXCEPT;

#ifdef __cplusplus
}
#endif

#endif /* MIXEDVM_PINNING_H */
