#include "topology.h"

#include <hwloc.h>

#include <memory>

namespace mixedvm {
namespace {

struct TopologyDeleter {
  void operator()(hwloc_topology* t) const { hwloc_topology_destroy(t); }
};
using TopologyPtr = std::unique_ptr<hwloc_topology, TopologyDeleter>;

unsigned Count(hwloc_topology_t t, hwloc_obj_type_t type) {
  int n = hwloc_get_nbobjs_by_type(t, type);
  return n > 0 ? static_cast<unsigned>(n) : 0;
}

}  // namespace

TopologyResult DiscoverTopology(const std::string& xml_path) {
  TopologyResult result;
  hwloc_topology_t raw = nullptr;
  if (hwloc_topology_init(&raw) != 0) {
    result.error = "hwloc_topology_init failed";
    return result;
  }
  TopologyPtr topo(raw);
  if (!xml_path.empty() &&
      hwloc_topology_set_xml(topo.get(), xml_path.c_str()) != 0) {
    result.error = "cannot read hwloc XML topology '" + xml_path + "'";
    return result;
  }
  if (hwloc_topology_load(topo.get()) != 0) {
    result.error = "hwloc_topology_load failed";
    return result;
  }
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
