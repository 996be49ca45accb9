/*
 * mixedvm vCPU lists: the syntax of -accel mixed,tcg-cpus= and kvm-cpus=.
 *
 * Same rules as mixedvm/mixedvm.h: plain C, no third-party types, nothing
 * throws, errors go into a caller's buffer.
 */
#ifndef MIXEDVM_CPU_LIST_H
#define MIXEDVM_CPU_LIST_H

#include "mixedvm/mixedvm.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Parse a vCPU list such as "0-2,5" or "0-2:5" (the syntax of
 * -accel mixed,tcg-cpus=; ':' avoids QEMU's ",," escaping).
 * On success sets selected[i] = true for every listed index (others false)
 * and returns true. Indexes must be < n. On failure returns false, leaves
 * selected[] untouched and writes a message into err (if errlen > 0).
 * An empty string selects nothing and is valid.
 */
bool mixedvm_parse_cpu_list(const char *text, bool *selected, size_t n,
                            char *err, size_t errlen) MIXEDVM_NOEXCEPT;

#ifdef __cplusplus
}
#endif

#endif /* MIXEDVM_CPU_LIST_H */
