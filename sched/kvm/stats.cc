// KVM's binary per-vCPU statistics (Documentation/virt/kvm/api.rst,
// KVM_GET_STATS_FD): a header, name-tagged descriptors, then a data block of
// u64s that the kernel keeps current. The descriptors are parsed once (the
// exit counters located by name); a read is then a single pread of the data
// block.
#include <linux/kvm.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "c_boundary.h"
#include "mixedvm/kvm_stats.h"

extern "C" const char* const mixedvm_kvm_exit_stat_names[MIXEDVM_KVM_EXIT_STATS] = {
    "exits",        "io_exits",     "mmio_exits",     "irq_window_exits",
    "halt_exits",   "signal_exits", "insn_emulation", "insn_emulation_fail",
};

struct MixedvmKvmStats {
  int fd;
  uint32_t data_offset;
  size_t data_words;   // the data block, as far as the descriptors describe it
  size_t needed_words; // up to the last counter we use
  int index[MIXEDVM_KVM_EXIT_STATS];  // u64 index in the data block, or -1
  std::vector<uint64_t> data;
  struct Stat {
    std::string name;
    size_t index;  // first u64 in the data block
    size_t size;   // u64s: 1, or a histogram's buckets
  };
  std::vector<Stat> all;
};

namespace {

// struct kvm_stats_desc without its flexible name[]: linux/kvm.h's version
// does not have its C size under C++, so the layout is spelled out here.
struct StatsDesc {
  uint32_t flags;
  int16_t exponent;
  uint16_t size;
  uint32_t offset;
  uint32_t bucket_size;
};
static_assert(sizeof(StatsDesc) == 16, "the KVM ABI descriptor header is 16 bytes");

void WriteErrno(char* err, size_t errlen, const char* what) {
  mixedvm::WriteError(err, errlen, std::string(what) + ": " + std::strerror(errno));
}

}  // namespace

extern "C" {

MixedvmKvmStats* mixedvm_kvm_stats_open(int stats_fd, char* err, size_t errlen) noexcept {
  MixedvmKvmStats* opened = nullptr;
  mixedvm::Guarded(err, errlen, [&] {
    kvm_stats_header h;
    if (pread(stats_fd, &h, sizeof h, 0) != ssize_t(sizeof h)) {
      WriteErrno(err, errlen, "reading the KVM stats header");
      return false;
    }
    const size_t desc_size = sizeof(StatsDesc) + h.name_size;
    std::vector<char> descs(desc_size * h.num_desc);
    if (pread(stats_fd, descs.data(), descs.size(), h.desc_offset) != ssize_t(descs.size())) {
      WriteErrno(err, errlen, "reading the KVM stats descriptors");
      return false;
    }
    auto s = std::unique_ptr<MixedvmKvmStats>(
        new MixedvmKvmStats{stats_fd, h.data_offset, 0, 0, {}, {}, {}});
    for (int& i : s->index) i = -1;
    for (uint32_t d = 0; d < h.num_desc; ++d) {
      StatsDesc desc_copy;
      std::memcpy(&desc_copy, descs.data() + d * desc_size, sizeof desc_copy);
      const StatsDesc* desc = &desc_copy;
      const char* name = descs.data() + d * desc_size + sizeof(StatsDesc);
      const size_t end = size_t(desc->offset) / sizeof(uint64_t) + desc->size;
      if (end > s->data_words) s->data_words = end;
      s->all.push_back({std::string(name, strnlen(name, h.name_size)),
                        size_t(desc->offset) / sizeof(uint64_t), desc->size});
      for (int k = 0; k < MIXEDVM_KVM_EXIT_STATS; ++k) {
        if (!std::strncmp(name, mixedvm_kvm_exit_stat_names[k], h.name_size)) {
          s->index[k] = int(desc->offset / sizeof(uint64_t));
          s->needed_words = std::max(s->needed_words, size_t(s->index[k]) + 1);
        }
      }
    }
    s->data.resize(s->data_words);
    opened = s.release();
    return true;
  });
  return opened;
}

bool mixedvm_kvm_stats_read(MixedvmKvmStats* s, uint64_t values[MIXEDVM_KVM_EXIT_STATS]) noexcept {
  // Histograms at the end may be shorter in the file than described; only
  // the counters we read must be there.
  const ssize_t got = pread(s->fd, s->data.data(), s->data.size() * sizeof(uint64_t), s->data_offset);
  if (got < ssize_t(s->needed_words * sizeof(uint64_t))) return false;
  for (int k = 0; k < MIXEDVM_KVM_EXIT_STATS; ++k)
    values[k] = s->index[k] >= 0 ? s->data[size_t(s->index[k])] : 0;
  return true;
}

void mixedvm_kvm_stats_free(MixedvmKvmStats* s) noexcept { delete s; }

size_t mixedvm_kvm_stats_count(const MixedvmKvmStats* s) noexcept { return s->all.size(); }

int mixedvm_kvm_stats_read_all(MixedvmKvmStats* s, MixedvmKvmStat* out, size_t max) noexcept {
  const ssize_t got = pread(s->fd, s->data.data(), s->data.size() * sizeof(uint64_t), s->data_offset);
  if (got < 0) return -1;
  const size_t words = size_t(got) / sizeof(uint64_t);
  size_t n = 0;
  for (const auto& stat : s->all) {
    if (n == max) break;
    uint64_t value = 0;
    // A histogram cut short in the file counts the buckets that are there.
    for (size_t i = stat.index; i < stat.index + stat.size && i < words; ++i) value += s->data[i];
    std::snprintf(out[n].name, sizeof out[n].name, "%s", stat.name.c_str());
    out[n].value = value;
    ++n;
  }
  return int(n);
}

}  // extern "C"
