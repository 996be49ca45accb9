// NPB MG (multigrid), written from the NPB specification.
//
//   npb_mg [--class S|W|A|B] [--threads N]
//
// Approximates the solution of the 3-D discrete Poisson problem del^2 u = v
// on a periodic n^3 grid with V-cycle multigrid: residual (resid), smoother
// (psinv), restriction (rprj3) and trilinear prolongation (interp), with the
// specification's 27-point stencils. v is zero but for +1 at the ten largest
// and -1 at the ten smallest of n^3 NPB random numbers (zran3). Verification:
// the L2 norm of the final residual against the official value (<= 1e-8).
#include <algorithm>
#include <cmath>
#include <vector>

#include "npb_common.h"

namespace {

struct ClassSpec {
  char cls;
  int log2n, nit;
  double verify;
};

constexpr ClassSpec kClasses[] = {
    {'S', 5, 4, 0.5307707005734e-04},
    {'W', 7, 4, 0.6467329375339e-05},
    {'A', 8, 4, 0.2433365309069e-05},
    {'B', 8, 20, 0.1800564401355e-05},
};

// A cubic grid of m^3 points, m = interior + 2 periodic ghost planes.
struct Grid {
  int m = 0;
  std::vector<double> v;
  explicit Grid(int interior = 0) : m(interior + 2), v(size_t(m) * m * m, 0.0) {}
  double& operator()(int i3, int i2, int i1) { return v[(size_t(i3) * m + i2) * m + i1]; }
  double operator()(int i3, int i2, int i1) const { return v[(size_t(i3) * m + i2) * m + i1]; }
  void Zero() { std::fill(v.begin(), v.end(), 0.0); }
};

// Periodic boundary: copy the opposite interior planes into the ghosts.
void Comm3(Grid& u) {
  const int n = u.m;
#pragma omp parallel for schedule(static)
  for (int i3 = 1; i3 < n - 1; ++i3) {
    for (int i2 = 1; i2 < n - 1; ++i2) {
      u(i3, i2, 0) = u(i3, i2, n - 2);
      u(i3, i2, n - 1) = u(i3, i2, 1);
    }
    for (int i1 = 0; i1 < n; ++i1) {
      u(i3, 0, i1) = u(i3, n - 2, i1);
      u(i3, n - 1, i1) = u(i3, 1, i1);
    }
  }
  for (int i2 = 0; i2 < n; ++i2)
    for (int i1 = 0; i1 < n; ++i1) {
      u(0, i2, i1) = u(n - 2, i2, i1);
      u(n - 1, i2, i1) = u(1, i2, i1);
    }
}

// The stencils of resid and psinv share their inner sums over the row (i3, i2): the four
// face neighbours and the four edge neighbours in the i3/i2 plane, for every i1.
void NeighbourSums(const Grid& g, int i3, int i2, double* faces, double* edges) {
  for (int i1 = 0; i1 < g.m; ++i1) {
    faces[i1] = g(i3, i2 - 1, i1) + g(i3, i2 + 1, i1) + g(i3 - 1, i2, i1) + g(i3 + 1, i2, i1);
    edges[i1] = g(i3 - 1, i2 - 1, i1) + g(i3 - 1, i2 + 1, i1) + g(i3 + 1, i2 - 1, i1) +
                g(i3 + 1, i2 + 1, i1);
  }
}

// r = v - A u
void Resid(const Grid& u, const Grid& v, Grid& r, const double a[4]) {
  const int n = u.m;
#pragma omp parallel
  {
    std::vector<double> u1(n), u2(n);
#pragma omp for schedule(static)
    for (int i3 = 1; i3 < n - 1; ++i3)
      for (int i2 = 1; i2 < n - 1; ++i2) {
        NeighbourSums(u, i3, i2, u1.data(), u2.data());
        for (int i1 = 1; i1 < n - 1; ++i1)
          r(i3, i2, i1) = v(i3, i2, i1) - a[0] * u(i3, i2, i1) -
                          a[2] * (u2[i1] + u1[i1 - 1] + u1[i1 + 1]) - a[3] * (u2[i1 - 1] + u2[i1 + 1]);
      }
  }
  Comm3(r);
}

// u = u + C r (the smoother)
void Psinv(const Grid& r, Grid& u, const double c[4]) {
  const int n = r.m;
#pragma omp parallel
  {
    std::vector<double> r1(n), r2(n);
#pragma omp for schedule(static)
    for (int i3 = 1; i3 < n - 1; ++i3)
      for (int i2 = 1; i2 < n - 1; ++i2) {
        NeighbourSums(r, i3, i2, r1.data(), r2.data());
        for (int i1 = 1; i1 < n - 1; ++i1)
          u(i3, i2, i1) += c[0] * r(i3, i2, i1) +
                           c[1] * (r(i3, i2, i1 - 1) + r(i3, i2, i1 + 1) + r1[i1]) +
                           c[2] * (r2[i1] + r1[i1 - 1] + r1[i1 + 1]);
      }
  }
  Comm3(u);
}

// Restrict the fine residual r onto the coarse grid s.
void Rprj3(const Grid& r, Grid& s) {
  const int mk = r.m, mj = s.m;
  const int d = mk == 3 ? 2 : 1;
#pragma omp parallel
  {
    std::vector<double> x1(mk), y1(mk);
#pragma omp for schedule(static)
    for (int j3 = 1; j3 < mj - 1; ++j3) {
      const int i3 = 2 * j3 - d;
      for (int j2 = 1; j2 < mj - 1; ++j2) {
        const int i2 = 2 * j2 - d;
        for (int j1 = 1; j1 < mj; ++j1) {
          const int i1 = 2 * j1 - d;
          x1[i1] = r(i3 + 1, i2, i1) + r(i3 + 1, i2 + 2, i1) + r(i3, i2 + 1, i1) + r(i3 + 2, i2 + 1, i1);
          y1[i1] = r(i3, i2, i1) + r(i3 + 2, i2, i1) + r(i3, i2 + 2, i1) + r(i3 + 2, i2 + 2, i1);
        }
        for (int j1 = 1; j1 < mj - 1; ++j1) {
          const int i1 = 2 * j1 - d;
          const double y2 = r(i3, i2, i1 + 1) + r(i3 + 2, i2, i1 + 1) + r(i3, i2 + 2, i1 + 1) +
                            r(i3 + 2, i2 + 2, i1 + 1);
          const double x2 = r(i3 + 1, i2, i1 + 1) + r(i3 + 1, i2 + 2, i1 + 1) +
                            r(i3, i2 + 1, i1 + 1) + r(i3 + 2, i2 + 1, i1 + 1);
          s(j3, j2, j1) = 0.5 * r(i3 + 1, i2 + 1, i1 + 1) +
                          0.25 * (r(i3 + 1, i2 + 1, i1) + r(i3 + 1, i2 + 1, i1 + 2) + x2) +
                          0.125 * (x1[i1] + x1[i1 + 2] + y2) + 0.0625 * (y1[i1] + y1[i1 + 2]);
        }
      }
    }
  }
  Comm3(s);
}

// Add the trilinear interpolation of the coarse z to the fine u.
void Interp(const Grid& z, Grid& u) {
  const int mm = z.m;
#pragma omp parallel
  {
    std::vector<double> z1(mm), z2(mm), z3(mm);
#pragma omp for schedule(static)
    for (int i3 = 0; i3 < mm - 1; ++i3)
      for (int i2 = 0; i2 < mm - 1; ++i2) {
        for (int i1 = 0; i1 < mm; ++i1) {
          z1[i1] = z(i3, i2 + 1, i1) + z(i3, i2, i1);
          z2[i1] = z(i3 + 1, i2, i1) + z(i3, i2, i1);
          z3[i1] = z(i3 + 1, i2 + 1, i1) + z(i3 + 1, i2, i1) + z1[i1];
        }
        for (int i1 = 0; i1 < mm - 1; ++i1) {
          u(2 * i3, 2 * i2, 2 * i1) += z(i3, i2, i1);
          u(2 * i3, 2 * i2, 2 * i1 + 1) += 0.5 * (z(i3, i2, i1 + 1) + z(i3, i2, i1));
          u(2 * i3, 2 * i2 + 1, 2 * i1) += 0.5 * z1[i1];
          u(2 * i3, 2 * i2 + 1, 2 * i1 + 1) += 0.25 * (z1[i1] + z1[i1 + 1]);
          u(2 * i3 + 1, 2 * i2, 2 * i1) += 0.5 * z2[i1];
          u(2 * i3 + 1, 2 * i2, 2 * i1 + 1) += 0.25 * (z2[i1] + z2[i1 + 1]);
          u(2 * i3 + 1, 2 * i2 + 1, 2 * i1) += 0.25 * z3[i1];
          u(2 * i3 + 1, 2 * i2 + 1, 2 * i1 + 1) += 0.125 * (z3[i1] + z3[i1 + 1]);
        }
      }
  }
}

double Norm2(const Grid& r, int n) {
  double s = 0;
#pragma omp parallel for reduction(+ : s) schedule(static)
  for (int i3 = 1; i3 < r.m - 1; ++i3)
    for (int i2 = 1; i2 < r.m - 1; ++i2)
      for (int i1 = 1; i1 < r.m - 1; ++i1) s += r(i3, i2, i1) * r(i3, i2, i1);
  return std::sqrt(s / (double(n) * n * n));
}

// a^n mod 2^46 with the NPB generator's arithmetic.
double Power(double a, long n) {
  double result = 1.0, aj = a;
  for (; n != 0; n /= 2) {
    if (n % 2) npb::Randlc(&result, aj);
    npb::Randlc(&aj, aj);
  }
  return result;
}

// The right-hand side: +1 at the 10 largest, -1 at the 10 smallest of n^3
// random numbers drawn in the specification's order (i1 fastest).
void Zran3(Grid& z, int n) {
  constexpr double kA = 1220703125.0;
  const double a1 = Power(kA, n), a2 = Power(kA, long(n) * n);
  z.Zero();
  double x0 = 314159265.0;
  for (int i3 = 1; i3 <= n; ++i3) {
    double x1 = x0;
    for (int i2 = 1; i2 <= n; ++i2) {
      double xx = x1;
      npb::Vranlc(n, &xx, kA, &z(i3, i2, 1));
      npb::Randlc(&x1, a1);
    }
    npb::Randlc(&x0, a2);
  }
  struct Point {
    double v;
    int i3, i2, i1;
  };
  std::vector<Point> points;
  points.reserve(size_t(n) * n * n);
  for (int i3 = 1; i3 <= n; ++i3)
    for (int i2 = 1; i2 <= n; ++i2)
      for (int i1 = 1; i1 <= n; ++i1) points.push_back({z(i3, i2, i1), i3, i2, i1});
  auto by_value = [](const Point& a, const Point& b) { return a.v < b.v; };
  std::partial_sort(points.begin(), points.begin() + 10, points.end(), by_value);
  std::vector<Point> smallest(points.begin(), points.begin() + 10);
  std::partial_sort(points.rbegin(), points.rbegin() + 10, points.rend(),
                    [&](const Point& a, const Point& b) { return by_value(b, a); });
  std::vector<Point> largest(points.rbegin(), points.rbegin() + 10);
  z.Zero();
  for (const Point& p : smallest) z(p.i3, p.i2, p.i1) = -1.0;
  for (const Point& p : largest) z(p.i3, p.i2, p.i1) = 1.0;
  Comm3(z);
}

struct Hierarchy {
  std::vector<Grid> u, r;  // index k = level (interior 2^k); top level holds the main arrays
};

void VCycle(Hierarchy& h, const Grid& v, int lt, const double a[4], const double c[4]) {
  for (int k = lt; k > 1; --k) Rprj3(h.r[k], h.r[k - 1]);
  h.u[1].Zero();
  Psinv(h.r[1], h.u[1], c);
  for (int k = 2; k < lt; ++k) {
    h.u[k].Zero();
    Interp(h.u[k - 1], h.u[k]);
    Resid(h.u[k], h.r[k], h.r[k], a);
    Psinv(h.r[k], h.u[k], c);
  }
  Interp(h.u[lt - 1], h.u[lt]);
  Resid(h.u[lt], v, h.r[lt], a);
  Psinv(h.r[lt], h.u[lt], c);
}

}  // namespace

int main(int argc, char** argv) {
  const char cls = npb::ParseClass(argc, argv, "SWAB", "npb_mg");
  const ClassSpec& cs = *std::find_if(std::begin(kClasses), std::end(kClasses),
                                      [&](const ClassSpec& s) { return s.cls == cls; });
  const int lt = cs.log2n, n = 1 << lt;
  const double a[4] = {-8.0 / 3.0, 0.0, 1.0 / 6.0, 1.0 / 12.0};
  const double c_swa[4] = {-3.0 / 8.0, 1.0 / 32.0, -1.0 / 64.0, 0.0};
  const double c_b[4] = {-3.0 / 17.0, 1.0 / 33.0, -1.0 / 61.0, 0.0};
  const double* c = cls == 'B' ? c_b : c_swa;

  Hierarchy h;
  h.u.resize(lt + 1);
  h.r.resize(lt + 1);
  for (int k = 1; k <= lt; ++k) {
    h.u[k] = Grid(1 << k);
    h.r[k] = Grid(1 << k);
  }
  Grid v(n);

  // One untimed V-cycle, then start again from scratch, as the specification does.
  Zran3(v, n);
  Resid(h.u[lt], v, h.r[lt], a);
  VCycle(h, v, lt, a, c);
  Resid(h.u[lt], v, h.r[lt], a);
  h.u[lt].Zero();
  Zran3(v, n);

  npb::Timer timer;
  Resid(h.u[lt], v, h.r[lt], a);
  for (int it = 1; it <= cs.nit; ++it) {
    VCycle(h, v, lt, a, c);
    Resid(h.u[lt], v, h.r[lt], a);
  }
  const double rnm2 = Norm2(h.r[lt], n);
  const double seconds = timer.Seconds();
  const double err = std::fabs(rnm2 - cs.verify) / cs.verify;
  std::printf(" MG: L2 norm of the residual = %.13e (reference %.13e, relative error %.2e)\n", rnm2,
              cs.verify, err);
  const double mops = 58.0 * cs.nit * double(n) * n * n / seconds / 1e6;
  return npb::Report("MG", cls, std::to_string(n) + "^3", cs.nit, seconds, mops, err <= 1e-8);
}
