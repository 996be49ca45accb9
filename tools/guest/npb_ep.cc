// NPB EP ("embarrassingly parallel"), written from the NPB specification.
//
//   npb_ep [--class S|W|A|B] [--threads N]
//
// Generates 2^(M+1) uniform numbers with the NPB generator, turns pairs into
// Gaussian deviates (Marsaglia polar method), and counts them in square
// annuli. Batches of 2^16 pairs are independent: batch k starts from the
// seed s * a^(2*2^16*k), found by binary exponentiation, so threads split
// the batches freely. Verification compares the sums of the deviates with
// the official values (relative error <= 1e-8).
#include <algorithm>
#include <cmath>
#include <vector>

#include "npb_common.h"

namespace {

constexpr int kMk = 16;                  // log2 of the pairs per batch
constexpr int kNk = 1 << kMk;
constexpr int kNq = 10;                  // annuli
constexpr double kA = 1220703125.0;      // 5^13
constexpr double kSeed = 271828183.0;

struct ClassSpec {
  char cls;
  int m;          // 2^(m+1) random numbers
  double sx, sy;  // official verification values
};

constexpr ClassSpec kClasses[] = {
    {'S', 24, -3.247834652034740e+3, -6.958407078382297e+3},
    {'W', 25, -2.863319731645753e+3, -6.320053679109499e+3},
    {'A', 28, -4.295875165629892e+3, -1.580732573678431e+4},
    {'B', 30, 4.033815542441498e+4, -2.660669192809235e+4},
};

}  // namespace

int main(int argc, char** argv) {
  const char cls = npb::ParseClass(argc, argv, "SWAB", "npb_ep");
  const ClassSpec& spec = *std::find_if(std::begin(kClasses), std::end(kClasses),
                                        [&](const ClassSpec& c) { return c.cls == cls; });
  const long batches = 1L << (spec.m - kMk);

  // a^(2^(kMk+1)): the multiplier that jumps over one batch of 2*kNk numbers.
  double an = kA;
  for (int i = 0; i < kMk + 1; ++i) npb::Randlc(&an, an);

  npb::Timer timer;
  double sx = 0, sy = 0;
  std::vector<double> q(kNq, 0.0);
#pragma omp parallel reduction(+ : sx, sy)
  {
    std::vector<double> x(2 * kNk);
    std::vector<double> qq(kNq, 0.0);
#pragma omp for schedule(static)
    for (long k = 0; k < batches; ++k) {
      // Seed of batch k: kSeed * an^k, by binary exponentiation.
      double t1 = kSeed, t2 = an;
      for (long kk = k; kk > 0; kk /= 2) {
        if (kk % 2) npb::Randlc(&t1, t2);
        npb::Randlc(&t2, t2);
      }
      npb::Vranlc(2 * kNk, &t1, kA, x.data());
      for (int i = 0; i < kNk; ++i) {
        const double x1 = 2 * x[2 * i] - 1, x2 = 2 * x[2 * i + 1] - 1;
        const double r = x1 * x1 + x2 * x2;
        if (r <= 1) {
          const double f = std::sqrt(-2 * std::log(r) / r);
          const double t3 = x1 * f, t4 = x2 * f;
          qq[int(std::max(std::fabs(t3), std::fabs(t4)))] += 1;
          sx += t3;
          sy += t4;
        }
      }
    }
#pragma omp critical
    for (int i = 0; i < kNq; ++i) q[i] += qq[i];
  }
  const double seconds = timer.Seconds();
  double gc = 0;
  for (double c : q) gc += c;

  const double ex = std::fabs((sx - spec.sx) / spec.sx), ey = std::fabs((sy - spec.sy) / spec.sy);
  const bool verified = ex <= 1e-8 && ey <= 1e-8;
  std::printf(" EP: sx = %.15e (reference %.15e)\n", sx, spec.sx);
  std::printf(" EP: sy = %.15e (reference %.15e)\n", sy, spec.sy);
  std::printf(" EP: Gaussian pairs = %.0f\n", gc);
  const double mops = std::ldexp(1.0, spec.m + 1) / seconds / 1e6;
  return npb::Report("EP", cls, "2^" + std::to_string(spec.m + 1), 0, seconds, mops, verified);
}
