#include "topology.h"

#include <hwloc.h>

#include <cerrno>
#include <cstring>
#include <memory>

namespace mixedvm {
namespace {

struct TopologyDeleter {
  void operator()(hwloc_topology* t) const { hwloc_topology_destroy(t); }
};
using TopologyPtr = std::unique_ptr<hwloc_topology, TopologyDeleter>;

// This host's topology (xml_path empty) or an hwloc XML file's, loaded; the
// one place both discovery and pinning get theirs from.
TopologyPtr LoadTopology(const std::string& xml_path, std::string* error) {
  hwloc_topology_t raw = nullptr;
  if (hwloc_topology_init(&raw) != 0) {
    *error = "hwloc_topology_init failed";
    return nullptr;
  }
  TopologyPtr topo(raw);
  if (!xml_path.empty() && hwloc_topology_set_xml(raw, xml_path.c_str()) != 0) {
    *error = "cannot read hwloc XML topology '" + xml_path + "'";
    return nullptr;
  }
  if (hwloc_topology_load(raw) != 0) {
    *error = "hwloc_topology_load failed";
    return nullptr;
  }
  return topo;
}

unsigned Count(hwloc_topology_t t, hwloc_obj_type_t type) {
  int n = hwloc_get_nbobjs_by_type(t, type);
  return n > 0 ? static_cast<unsigned>(n) : 0;
}

}  // namespace

TopologyResult DiscoverTopology(const std::string& xml_path) {
  TopologyResult result;
  const TopologyPtr topo = LoadTopology(xml_path, &result.error);
  if (!topo) return result;
  MixedvmTopology t{};
  t.packages = Count(topo.get(), HWLOC_OBJ_PACKAGE);
  t.numa_nodes = Count(topo.get(), HWLOC_OBJ_NUMANODE);
  t.cores = Count(topo.get(), HWLOC_OBJ_CORE);
  t.pus = Count(topo.get(), HWLOC_OBJ_PU);
  // Some virtual machines expose PUs without a Core level; every PU then
  // counts as its own core, which is what a pinning policy needs to know.
  if (t.cores == 0) t.cores = t.pus;
  result.topology = t;
  return result;
}

}  // namespace mixedvm

namespace mixedvm {

struct Pinner::Impl {
  MixedvmPinMode mode;
  bool host;                               // a live topology: Apply() may bind
  TopologyPtr topology;
  // [vcpu][on_kvm] -> OS CPU indexes, and the same as hwloc bitmaps for binding.
  std::vector<std::vector<int>> cpus[2];
  std::vector<hwloc_bitmap_t> sets[2];

  ~Impl() {
    for (auto& v : sets)
      for (hwloc_bitmap_t b : v) hwloc_bitmap_free(b);
  }
};

namespace {

std::vector<int> Indexes(hwloc_const_bitmap_t set) {
  std::vector<int> out;
  int i;
  hwloc_bitmap_foreach_begin(i, set) { out.push_back(i); }
  hwloc_bitmap_foreach_end();
  return out;
}

}  // namespace

std::unique_ptr<Pinner> Pinner::Create(MixedvmPinMode mode, const std::string& xml_path,
                                       unsigned nvcpus, std::string* error) {
  auto impl = std::make_unique<Impl>();
  impl->mode = mode;
  impl->host = xml_path.empty();
  impl->topology = LoadTopology(xml_path, error);
  if (!impl->topology) return nullptr;
  hwloc_topology_t raw = impl->topology.get();
  const int npus = hwloc_get_nbobjs_by_type(raw, HWLOC_OBJ_PU);
  int ncores = hwloc_get_nbobjs_by_type(raw, HWLOC_OBJ_CORE);
  const hwloc_obj_type_t core_type = ncores > 0 ? HWLOC_OBJ_CORE : HWLOC_OBJ_PU;
  if (ncores <= 0) ncores = npus;
  if (npus <= 0) {
    *error = "the topology has no processing units";
    return nullptr;
  }
  // split: first half of the cores for KVM, the rest for TCG (one core: both).
  hwloc_bitmap_t group[2] = {hwloc_bitmap_alloc(), hwloc_bitmap_alloc()};
  const int kvm_cores = ncores > 1 ? (ncores + 1) / 2 : 1;
  for (int c = 0; c < ncores; ++c) {
    hwloc_obj_t core = hwloc_get_obj_by_type(raw, core_type, unsigned(c));
    if (c < kvm_cores) hwloc_bitmap_or(group[1], group[1], core->cpuset);
    if (c >= kvm_cores || ncores == 1) hwloc_bitmap_or(group[0], group[0], core->cpuset);
  }
  for (int kvm = 0; kvm < 2; ++kvm) {
    for (unsigned v = 0; v < nvcpus; ++v) {
      hwloc_bitmap_t set = hwloc_bitmap_alloc();
      if (mode == MIXEDVM_PIN_COMPACT) {
        hwloc_obj_t pu = hwloc_get_obj_by_type(raw, HWLOC_OBJ_PU, v % unsigned(npus));
        hwloc_bitmap_copy(set, pu->cpuset);
      } else if (mode == MIXEDVM_PIN_SPLIT) {
        hwloc_bitmap_copy(set, group[kvm]);
      }
      impl->cpus[kvm].push_back(Indexes(set));
      impl->sets[kvm].push_back(set);
    }
  }
  hwloc_bitmap_free(group[0]);
  hwloc_bitmap_free(group[1]);
  return std::unique_ptr<Pinner>(new Pinner(std::move(impl)));
}

Pinner::Pinner(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Pinner::~Pinner() = default;

const std::vector<int>& Pinner::Cpus(unsigned vcpu, bool on_kvm) const {
  static const std::vector<int> kNone;
  const auto& v = impl_->cpus[on_kvm ? 1 : 0];
  return vcpu < v.size() ? v[vcpu] : kNone;
}

bool Pinner::Apply(unsigned vcpu, bool on_kvm, std::string* error) const {
  if (impl_->mode == MIXEDVM_PIN_OFF) return true;
  if (!impl_->host) {
    *error = "cannot bind threads to an XML topology";
    return false;
  }
  const auto& sets = impl_->sets[on_kvm ? 1 : 0];
  if (vcpu >= sets.size()) {
    *error = "vCPU " + std::to_string(vcpu) + " has no cpuset";
    return false;
  }
  if (hwloc_set_cpubind(impl_->topology.get(), sets[vcpu], HWLOC_CPUBIND_THREAD) != 0) {
    *error = std::string("hwloc_set_cpubind failed: ") + std::strerror(errno);
    return false;
  }
  return true;
}

}  // namespace mixedvm
