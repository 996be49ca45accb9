/*
 * mixedvm C API: the only interface the patched QEMU calls.
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

#ifdef __cplusplus
#define MIXEDVM_NOEXCEPT noexcept
extern "C" {
#else
#define MIXEDVM_NOEXCEPT
#endif

/* Version of the mixedvm library, e.g. "0.1.0". Never NULL. */
const char *mixedvm_version(void) MIXEDVM_NOEXCEPT;

/*
 * Parse a vCPU list such as "0-2,5" (the syntax of -accel mixed,tcg-cpus=).
 * On success sets selected[i] = true for every listed index (others false)
 * and returns true. Indexes must be < n. On failure returns false, leaves
 * selected[] untouched and writes a message into err (if errlen > 0).
 * An empty string selects nothing and is valid.
 */
bool mixedvm_parse_cpu_list(const char *text, bool *selected, size_t n,
                            char *err, size_t errlen) MIXEDVM_NOEXCEPT;

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

#ifdef __cplusplus
}
#endif

#endif /* MIXEDVM_MIXEDVM_H */
