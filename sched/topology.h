// The hwloc wall: the only place in mixedvm that includes <hwloc.h>.
// Everything above this layer sees plain structs (see oneTBB's tbbbind).
#pragma once

#include <optional>
#include <string>

#include "mixedvm/mixedvm.h"

namespace mixedvm {

struct TopologyResult {
  std::optional<MixedvmTopology> topology;
  std::string error;
};

// Loads the topology of this host (xml_path empty) or of an hwloc XML export.
TopologyResult DiscoverTopology(const std::string& xml_path);

}  // namespace mixedvm
