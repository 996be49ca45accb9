// The hwloc wall: the only place in mixedvm that includes <hwloc.h>.
// Everything above this layer sees plain structs (see oneTBB's tbbbind).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "mixedvm/pinning.h"

namespace mixedvm {

struct TopologyResult {
  std::optional<MixedvmTopology> topology;
  std::string error;
};

// Loads the topology of this host (xml_path empty) or of an hwloc XML export.
TopologyResult DiscoverTopology(const std::string& xml_path);

// Where each vCPU thread runs, per pin mode; cpusets are computed once.
class Pinner {
 public:
  // Returns nullptr and sets *error when the topology cannot be loaded.
  static std::unique_ptr<Pinner> Create(MixedvmPinMode mode, const std::string& xml_path,
                                        unsigned nvcpus, std::string* error);
  ~Pinner();
  // OS indexes of the CPUs for this vCPU on this backend; empty: no pinning.
  const std::vector<int>& Cpus(unsigned vcpu, bool on_kvm) const;
  // Binds the calling thread. REQUIRES: a host (not XML) topology.
  bool Apply(unsigned vcpu, bool on_kvm, std::string* error) const;

 private:
  struct Impl;
  explicit Pinner(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace mixedvm
