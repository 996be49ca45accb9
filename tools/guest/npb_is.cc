// NPB IS (integer sort), written from the NPB specification.
//
//   npb_is [--class S|W|A|B] [--threads N]
//
// Ranks 2^TOTAL_KEYS_LOG_2 integer keys, each the scaled mean of four NPB
// random numbers, ten times; before each ranking two keys are changed. Every
// iteration checks the rank of five test keys against the official values
// (partial verification); at the end the keys are placed by rank and must be
// sorted (full verification). Ranking is a counting sort: per-thread
// histograms of the keys, merged, then a prefix sum.
#include <algorithm>
#include <cstdint>
#include <vector>

#include "npb_common.h"

namespace {

constexpr int kIterations = 10;
constexpr int kTests = 5;

struct ClassSpec {
  char cls;
  int total_keys_log2, max_key_log2;
  long test_index[kTests];
  long test_rank[kTests];
};

constexpr ClassSpec kClasses[] = {
    {'S', 16, 11, {48427, 17148, 23627, 62548, 4431}, {0, 18, 346, 64917, 65463}},
    {'W', 20, 16, {357773, 934767, 875723, 898999, 404505}, {1249, 11698, 1039987, 1043896, 1048018}},
    {'A', 23, 19, {2112377, 662041, 5336171, 3642833, 4250760}, {104, 17523, 123928, 8288932, 8388264}},
    {'B', 25, 21, {41869, 812306, 5102857, 18232239, 26860214}, {33422937, 10244, 59149, 33135281, 99}},
};

// The specification's expected rank of test key i at this iteration.
long ExpectedRank(char cls, int i, int iteration, long rank) {
  switch (cls) {
    case 'S': return i <= 2 ? rank + iteration : rank - iteration;
    case 'W': return i < 2 ? rank + (iteration - 2) : rank - iteration;
    case 'A': return i <= 2 ? rank + (iteration - 1) : rank - (iteration - 1);
    default:  return (i == 1 || i == 2 || i == 4) ? rank + iteration : rank - iteration;  // B
  }
}

}  // namespace

int main(int argc, char** argv) {
  const char cls = npb::ParseClass(argc, argv, "SWAB", "npb_is");
  const ClassSpec& spec = *std::find_if(std::begin(kClasses), std::end(kClasses),
                                        [&](const ClassSpec& c) { return c.cls == cls; });
  const long n = 1L << spec.total_keys_log2;
  const long max_key = 1L << spec.max_key_log2;

  std::vector<int32_t> keys(n);
  {
    double seed = 314159265.0;
    const double a = 1220703125.0, k = double(max_key / 4);
    for (long i = 0; i < n; ++i) {
      double x = npb::Randlc(&seed, a);
      x += npb::Randlc(&seed, a);
      x += npb::Randlc(&seed, a);
      x += npb::Randlc(&seed, a);
      keys[i] = int32_t(k * x);
    }
  }

  std::vector<long> count(max_key);     // then: number of keys <= value
  int passed = 0;
  npb::Timer timer;
  for (int it = 1; it <= kIterations; ++it) {
    keys[it] = it;
    keys[it + kIterations] = int32_t(max_key - it);
    long probe[kTests];
    for (int i = 0; i < kTests; ++i) probe[i] = keys[spec.test_index[i]];

    std::fill(count.begin(), count.end(), 0);
#pragma omp parallel
    {
      std::vector<long> local(max_key, 0);
#pragma omp for schedule(static)
      for (long i = 0; i < n; ++i) local[keys[i]]++;
#pragma omp critical
      for (long v = 0; v < max_key; ++v) count[v] += local[v];
    }
    for (long v = 1; v < max_key; ++v) count[v] += count[v - 1];

    for (int i = 0; i < kTests; ++i) {
      const long k = probe[i];
      if (k <= 0 || k > n - 1) continue;
      const long rank = count[k - 1];   // keys smaller than k
      if (rank == ExpectedRank(cls, i, it, spec.test_rank[i])) {
        ++passed;
      } else {
        std::printf(" IS: iteration %d, test key %d: rank %ld, expected %ld\n", it, i, rank,
                    ExpectedRank(cls, i, it, spec.test_rank[i]));
      }
    }
  }
  const double seconds = timer.Seconds();

  // Full verification: place every key by its rank; the result must be sorted.
  std::vector<int32_t> sorted(n);
  for (long i = n - 1; i >= 0; --i) sorted[--count[keys[i]]] = keys[i];
  long unsorted = 0;
  for (long i = 1; i < n; ++i) unsorted += sorted[i - 1] > sorted[i];
  if (unsorted == 0) ++passed;
  std::printf(" IS: %d of %d checks passed (%ld keys out of order)\n", passed,
              kTests * kIterations + 1, unsorted);
  const double mops = double(kIterations) * double(n) / seconds / 1e6;
  return npb::Report("IS", cls, std::to_string(n), kIterations, seconds, mops,
                     passed == kTests * kIterations + 1);
}
