// Pinning for the guest programs: each measures or checks one vCPU at a time,
// so each thread pins itself before it starts.
#pragma once

#include <sched.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
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

// The command line of the one-vCPU loop programs (sysloop, clockread):
// `--cpu N [--seconds S]`. Pins the calling thread to vCPU N. Returns 0, or
// the exit code after saying why: 2 for a bad command line, 1 if it cannot pin.
inline int ParseCpuLoopArgs(const char* prog, int argc, char** argv, int* cpu,
                            double* seconds) {
  *cpu = -1;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--cpu")) *cpu = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--seconds")) *seconds = std::atof(argv[i + 1]);
    else { std::fprintf(stderr, "%s: unknown option %s\n", prog, argv[i]); return 2; }
  }
  if (*cpu < 0 || *seconds <= 0) {
    std::fprintf(stderr, "usage: %s --cpu N [--seconds S]\n", prog);
    return 2;
  }
  const std::string error = PinToCpu(*cpu);
  if (!error.empty()) {
    std::fprintf(stderr, "%s\n", error.c_str());
    return 1;
  }
  return 0;
}
