#include "trace_record.h"

#include <charconv>
#include <cstring>

namespace mixedvm {
namespace {

// The columns, in the order QEMU writes them. The counters are read and
// written through one table, so the two directions cannot disagree.
enum class Kind { kCounter, kVcpu, kPlaced, kRunning };
struct Column {
  const char* name;
  Kind kind;
  uint64_t MixedvmVcpuSample::*counter;   // for kCounter
  bool required;
};
constexpr Column kColumns[] = {
    {"now_ns", Kind::kCounter, &MixedvmVcpuSample::now_ns, true},
    {"vcpu", Kind::kVcpu, nullptr, true},
    {"placed", Kind::kPlaced, nullptr, true},
    {"running", Kind::kRunning, nullptr, true},
    {"kvm_ns", Kind::kCounter, &MixedvmVcpuSample::kvm_ns, true},
    {"tcg_ns", Kind::kCounter, &MixedvmVcpuSample::tcg_ns, true},
    {"moves", Kind::kCounter, &MixedvmVcpuSample::moves, true},
    {"move_ns", Kind::kCounter, &MixedvmVcpuSample::move_ns, true},
    {"kernel_entries", Kind::kCounter, &MixedvmVcpuSample::kernel_entries, true},
    {"tcg_user_ns", Kind::kCounter, &MixedvmVcpuSample::tcg_user_ns, false},
    {"tcg_insns", Kind::kCounter, &MixedvmVcpuSample::tcg_insns, false},
    {"shadow_zaps", Kind::kCounter, &MixedvmVcpuSample::shadow_zaps, false},
    {"kvm_tlb_flushes", Kind::kCounter, &MixedvmVcpuSample::kvm_tlb_flushes, false},
    {"idle_ns", Kind::kCounter, &MixedvmVcpuSample::idle_ns, false},
    {"tcg_user_returns", Kind::kCounter, &MixedvmVcpuSample::tcg_user_returns, false},
    {"timer_leaves", Kind::kCounter, &MixedvmVcpuSample::timer_leaves, false},
    {"event_leaves", Kind::kCounter, &MixedvmVcpuSample::event_leaves, false},
};

const char* BackendName(MixedvmBackend b) { return b == MIXEDVM_BACKEND_KVM ? "kvm" : "tcg"; }

std::vector<std::string_view> Split(std::string_view line) {
  std::vector<std::string_view> out;
  for (size_t start = 0;;) {
    const size_t comma = line.find(',', start);
    out.push_back(line.substr(start, comma == std::string_view::npos ? comma : comma - start));
    if (comma == std::string_view::npos) return out;
    start = comma + 1;
  }
}

}  // namespace

std::string TraceHeader() {
  std::string out;
  for (const Column& c : kColumns) out += std::string(out.empty() ? "" : ",") + c.name;
  return out;
}

std::string FormatTraceRecord(const TraceRecord& r) {
  std::string out;
  for (const Column& c : kColumns) {
    if (!out.empty()) out += ',';
    switch (c.kind) {
      case Kind::kCounter: out += std::to_string(r.sample.*c.counter); break;
      case Kind::kVcpu: out += std::to_string(r.vcpu); break;
      case Kind::kPlaced: out += BackendName(r.placed); break;
      case Kind::kRunning: out += BackendName(r.sample.running); break;
    }
  }
  return out;
}

TraceReader::TraceReader(std::string_view header) : field_of_column_(std::size(kColumns), -1) {
  const std::vector<std::string_view> names = Split(header);
  fields_ = names.size();
  for (size_t f = 0; f < names.size(); ++f) {
    for (size_t c = 0; c < std::size(kColumns); ++c) {
      if (names[f] == kColumns[c].name) field_of_column_[c] = int(f);
    }
  }
  for (size_t c = 0; c < std::size(kColumns); ++c) {
    if (kColumns[c].required && field_of_column_[c] < 0) {
      error_ += std::string(error_.empty() ? "no column " : ", ") + kColumns[c].name;
    }
  }
}

std::optional<TraceRecord> TraceReader::Parse(std::string_view line, std::string* error) const {
  const std::vector<std::string_view> f = Split(line);
  if (f.size() != fields_) {
    *error = "expected " + std::to_string(fields_) + " fields, got " + std::to_string(f.size());
    return std::nullopt;
  }
  TraceRecord r;
  for (size_t c = 0; c < std::size(kColumns); ++c) {
    if (field_of_column_[c] < 0) continue;
    const std::string_view v = f[size_t(field_of_column_[c])];
    const Column& col = kColumns[c];
    if (col.kind == Kind::kPlaced || col.kind == Kind::kRunning) {
      if (v != "kvm" && v != "tcg") {
        *error = std::string(col.name) + " is '" + std::string(v) + "', not kvm or tcg";
        return std::nullopt;
      }
      const MixedvmBackend b = v == "kvm" ? MIXEDVM_BACKEND_KVM : MIXEDVM_BACKEND_TCG;
      (col.kind == Kind::kPlaced ? r.placed : r.sample.running) = b;
      continue;
    }
    uint64_t value = 0;
    const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), value);
    if (ec != std::errc() || end != v.data() + v.size()) {
      *error = std::string(col.name) + " is '" + std::string(v) + "', not a number";
      return std::nullopt;
    }
    if (col.kind == Kind::kVcpu) r.vcpu = unsigned(value);
    else r.sample.*col.counter = value;
  }
  return r;
}

}  // namespace mixedvm
