// Pinning for the guest programs: each measures or checks one vCPU at a time,
// so each thread pins itself before it starts.
#pragma once

#include <sched.h>

#include <cerrno>
#include <cstring>
#include <string>

// Pins the calling thread to vCPU `cpu`; on failure returns the reason.
inline std::string PinToCpu(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  if (sched_setaffinity(0, sizeof set, &set) != 0) {
    return "cannot pin to cpu " + std::to_string(cpu) + ": " + std::strerror(errno);
  }
  return {};
}
