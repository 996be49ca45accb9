// Pinning for the guest programs: each measures or checks one vCPU at a time,
// so each thread pins itself before it starts.
#pragma once

#include <sched.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
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

// A numeric option of one loop program beyond --cpu and --seconds.
struct LoopOption {
  const char* name;  // "--calls"
  double* value;     // keeps its default unless given
};

// The command line of the one-vCPU loop programs (sysloop, clockread):
// `--cpu N [--seconds S]` and the program's own `extra` options. Pins the calling thread
// to vCPU N. Returns 0, or the exit code after saying why: 2 for a bad command line, 1 if
// it cannot pin.
inline int ParseCpuLoopArgs(const char* prog, int argc, char** argv, int* cpu,
                            double* seconds, std::initializer_list<LoopOption> extra = {}) {
  *cpu = -1;
  std::string usage = std::string("usage: ") + prog + " --cpu N [--seconds S]";
  for (const LoopOption& o : extra) usage += std::string(" [") + o.name + " X]";
  for (int i = 1; i < argc; i += 2) {
    if (i + 1 >= argc) {
      std::fprintf(stderr, "%s: %s needs a value\n%s\n", prog, argv[i], usage.c_str());
      return 2;
    }
    if (!std::strcmp(argv[i], "--cpu")) { *cpu = std::atoi(argv[i + 1]); continue; }
    if (!std::strcmp(argv[i], "--seconds")) { *seconds = std::atof(argv[i + 1]); continue; }
    const LoopOption* found = nullptr;
    for (const LoopOption& o : extra) {
      if (!std::strcmp(argv[i], o.name)) found = &o;
    }
    if (!found) {
      std::fprintf(stderr, "%s: unknown option %s\n%s\n", prog, argv[i], usage.c_str());
      return 2;
    }
    char* end = nullptr;
    *found->value = std::strtod(argv[i + 1], &end);
    if (*end != '\0' || *found->value < 0) {
      std::fprintf(stderr, "%s: %s wants a number >= 0, not '%s'\n", prog, argv[i], argv[i + 1]);
      return 2;
    }
  }
  if (*cpu < 0 || *seconds <= 0) {
    std::fprintf(stderr, "%s\n", usage.c_str());
    return 2;
  }
  const std::string error = PinToCpu(*cpu);
  if (!error.empty()) {
    std::fprintf(stderr, "%s\n", error.c_str());
    return 1;
  }
  return 0;
}
