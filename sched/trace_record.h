// The telemetry record of -accel mixed,trace-file=: one CSV line per vCPU per
// policy period. Defined once, here: QEMU writes it through the C API
// (mixedvm_trace_header/mixedvm_trace_line in include/mixedvm/sched.h), and
// tools/mixedvm-sim and the tests read it back by column name, so a column
// added, moved or dropped is found by name or reported as missing, never read
// from the wrong position.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mixedvm/sched.h"

namespace mixedvm {

struct TraceRecord {
  MixedvmVcpuSample sample{};    // now_ns, counters and where it ran
  unsigned vcpu = 0;
  MixedvmBackend placed = MIXEDVM_BACKEND_TCG;
};

// The header line, without a newline.
std::string TraceHeader();
// One record as a CSV line, without a newline.
std::string FormatTraceRecord(const TraceRecord& r);

// Reads records by the column names of a trace's header line. Columns that
// older traces lack (tcg_user_ns and every column after tcg_insns) read as 0; the others must exist.
class TraceReader {
 public:
  // On a header without the required columns, ok() is false and error() says which.
  explicit TraceReader(std::string_view header);
  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }
  // REQUIRES: ok(). Returns nothing, with *error set, for a malformed line.
  std::optional<TraceRecord> Parse(std::string_view line, std::string* error) const;

 private:
  std::vector<int> field_of_column_;   // index in a line of each known column, or -1
  size_t fields_ = 0;
  std::string error_;
};

}  // namespace mixedvm
