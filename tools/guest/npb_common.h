// Shared pieces of our NAS Parallel Benchmarks kernels, written from the NPB
// specification (NASA reports RNR-94-007 and NAS-95-020): the pseudo-random
// generator every kernel uses, the class letter, and the report every NPB run
// prints. The kernels are built static for the guest and run natively too.
#pragma once

#include <omp.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace npb {

// The NPB linear congruential generator: x_{k+1} = a * x_k mod 2^46, in
// double precision split into 23-bit halves exactly as the specification
// prescribes (so every implementation draws the same numbers). Returns
// x_{k+1} / 2^46 and updates x.
inline double Randlc(double* x, double a) {
  constexpr double r23 = 1.1920928955078125e-07;   // 2^-23
  constexpr double r46 = r23 * r23;
  constexpr double t23 = 8388608.0;                 // 2^23
  constexpr double t46 = t23 * t23;
  double t1 = r23 * a;
  const double a1 = std::floor(t1), a2 = a - t23 * a1;
  t1 = r23 * *x;
  const double x1 = std::floor(t1), x2 = *x - t23 * x1;
  t1 = a1 * x2 + a2 * x1;
  const double t2 = std::floor(r23 * t1), z = t1 - t23 * t2;
  const double t3 = t23 * z + a2 * x2;
  const double t4 = std::floor(r46 * t3);
  *x = t3 - t46 * t4;
  return r46 * *x;
}

// n numbers into y[0..n-1].
inline void Vranlc(int n, double* x, double a, double* y) {
  for (int i = 0; i < n; ++i) y[i] = Randlc(x, a);
}

inline char ParseClass(int argc, char** argv, const char* valid, const char* program) {
  char cls = 'S';
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--class")) cls = argv[i + 1][0];
    else if (!std::strcmp(argv[i], "--threads")) omp_set_num_threads(std::atoi(argv[i + 1]));
    else {
      std::fprintf(stderr, "%s: unknown option %s\n", program, argv[i]);
      std::exit(2);
    }
  }
  if (!std::strchr(valid, cls) || argv[0] == nullptr) {
    std::fprintf(stderr, "usage: %s [--class %s] [--threads N]\n", program, valid);
    std::exit(2);
  }
  return cls;
}

class Timer {
 public:
  Timer() : t0_(std::chrono::steady_clock::now()) {}
  double Seconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
  }

 private:
  std::chrono::steady_clock::time_point t0_;
};

// The summary every NPB kernel prints; exit code 0 only if verified.
inline int Report(const char* name, char cls, const std::string& size, int iterations,
                  double seconds, double mops, bool verified) {
  std::printf("\n\n %s Benchmark Completed.\n", name);
  std::printf(" Class           =                        %c\n", cls);
  std::printf(" Size            =             %12s\n", size.c_str());
  std::printf(" Iterations      =             %12d\n", iterations);
  std::printf(" Time in seconds =             %12.2f\n", seconds);
  std::printf(" Total threads   =             %12d\n", omp_get_max_threads());
  std::printf(" Mop/s total     =             %12.2f\n", mops);
  std::printf(" Verification    =             %12s\n", verified ? "SUCCESSFUL" : "UNSUCCESSFUL");
  return verified ? 0 : 1;
}

}  // namespace npb
