// NPB CG (conjugate gradient), written from the NPB specification.
//
//   npb_cg [--class S|W|A|B] [--threads N]
//
// Estimates the smallest eigenvalue of a large sparse symmetric positive-
// definite matrix by inverse power iteration; each iteration solves A z = x
// with 25 steps of unpreconditioned conjugate gradient. The matrix is built
// exactly as the specification's makea/sprnvc/vecset/sparse do (the same
// random numbers, in the same order), so the eigenvalue estimate zeta can be
// verified against the official value to 1e-10.
#include <algorithm>
#include <cmath>
#include <vector>

#include "npb_common.h"

namespace {

constexpr double kRcond = 0.1;
constexpr int kCgIterations = 25;

struct ClassSpec {
  char cls;
  int na, nonzer, niter;
  double shift, zeta;
};

constexpr ClassSpec kClasses[] = {
    {'S', 1400, 7, 15, 10.0, 8.5971775078648},
    {'W', 7000, 8, 15, 12.0, 10.362595087124},
    {'A', 14000, 11, 15, 20.0, 17.130235054029},
    {'B', 75000, 13, 75, 60.0, 22.712745482631},
};

// The generator state the matrix construction shares (as in the specification).
double tran = 314159265.0;
constexpr double kAmult = 1220703125.0;

// nz distinct random positions in [1, n], with random values.
void Sprnvc(int n, int nz, int nn1, std::vector<double>& v, std::vector<int>& iv) {
  int nzv = 0;
  while (nzv < nz) {
    const double vecelt = npb::Randlc(&tran, kAmult);
    const double vecloc = npb::Randlc(&tran, kAmult);
    const int i = int(nn1 * vecloc) + 1;
    if (i > n) continue;
    if (std::find(iv.begin(), iv.begin() + nzv, i) != iv.begin() + nzv) continue;
    v[nzv] = vecelt;
    iv[nzv] = i;
    ++nzv;
  }
}

// Sets element i of the sparse vector to val, appending it if absent.
void Vecset(std::vector<double>& v, std::vector<int>& iv, int* nzv, int i, double val) {
  bool set = false;
  for (int k = 0; k < *nzv; ++k) {
    if (iv[k] == i) {
      v[k] = val;
      set = true;
    }
  }
  if (!set) {
    v[*nzv] = val;
    iv[*nzv] = i;
    ++*nzv;
  }
}

struct Csr {
  std::vector<double> a;
  std::vector<int> colidx, rowstr;
};

// The matrix: sum over i of (size_i * outer product of sparse vector i), plus
// (rcond - shift) on the diagonal, with size_i shrinking geometrically.
Csr Makea(const ClassSpec& c) {
  const int n = c.na, w = c.nonzer + 1;
  const long nz = long(n) * w * w;
  int nn1 = 1;
  do nn1 *= 2; while (nn1 < n);
  std::vector<int> arow(n), acol(size_t(n) * w);
  std::vector<double> aelt(size_t(n) * w);
  std::vector<double> vc(w);
  std::vector<int> ivc(w);
  for (int i = 0; i < n; ++i) {
    int nzv = c.nonzer;
    Sprnvc(n, nzv, nn1, vc, ivc);
    Vecset(vc, ivc, &nzv, i + 1, 0.5);
    arow[i] = nzv;
    for (int k = 0; k < nzv; ++k) {
      acol[size_t(i) * w + k] = ivc[k] - 1;
      aelt[size_t(i) * w + k] = vc[k];
    }
  }

  // sparse(): count, insert in column order summing duplicates, compact.
  Csr m;
  m.rowstr.assign(n + 1, 0);
  for (int i = 0; i < n; ++i)
    for (int k = 0; k < arow[i]; ++k) m.rowstr[acol[size_t(i) * w + k] + 1] += arow[i];
  for (int j = 1; j <= n; ++j) m.rowstr[j] += m.rowstr[j - 1];
  if (m.rowstr[n] > nz) {
    std::fprintf(stderr, "npb_cg: %d nonzeros exceed the bound %ld\n", m.rowstr[n], nz);
    std::exit(1);
  }
  m.a.assign(m.rowstr[n], 0.0);
  m.colidx.assign(m.rowstr[n], -1);
  std::vector<int> nzloc(n, 0);
  double size = 1.0;
  const double ratio = std::pow(kRcond, 1.0 / double(n));
  for (int i = 0; i < n; ++i) {
    for (int ka = 0; ka < arow[i]; ++ka) {
      const int j = acol[size_t(i) * w + ka];
      const double scale = size * aelt[size_t(i) * w + ka];
      for (int kr = 0; kr < arow[i]; ++kr) {
        const int jcol = acol[size_t(i) * w + kr];
        double va = aelt[size_t(i) * w + kr] * scale;
        if (jcol == j && j == i) va += kRcond - c.shift;
        int k = m.rowstr[j];
        for (; k < m.rowstr[j + 1]; ++k) {
          if (m.colidx[k] > jcol) {
            for (int kk = m.rowstr[j + 1] - 2; kk >= k; --kk) {
              if (m.colidx[kk] > -1) {
                m.a[kk + 1] = m.a[kk];
                m.colidx[kk + 1] = m.colidx[kk];
              }
            }
            m.colidx[k] = jcol;
            m.a[k] = 0.0;
            break;
          }
          if (m.colidx[k] == -1) {
            m.colidx[k] = jcol;
            break;
          }
          if (m.colidx[k] == jcol) {
            ++nzloc[j];
            break;
          }
        }
        if (k == m.rowstr[j + 1]) {
          std::fprintf(stderr, "npb_cg: internal error building row %d\n", j);
          std::exit(1);
        }
        m.a[k] += va;
      }
    }
    size *= ratio;
  }
  for (int j = 1; j < n; ++j) nzloc[j] += nzloc[j - 1];
  for (int j = 0; j < n; ++j) {
    const int j1 = j > 0 ? m.rowstr[j] - nzloc[j - 1] : 0;
    const int j2 = m.rowstr[j + 1] - nzloc[j];
    int from = m.rowstr[j];
    for (int k = j1; k < j2; ++k, ++from) {
      m.a[k] = m.a[from];
      m.colidx[k] = m.colidx[from];
    }
  }
  for (int j = 1; j <= n; ++j) m.rowstr[j] -= nzloc[j - 1];
  m.a.resize(m.rowstr[n]);
  m.colidx.resize(m.rowstr[n]);
  return m;
}

void Matvec(const Csr& m, const std::vector<double>& v, std::vector<double>& out, int n) {
#pragma omp for schedule(static)
  for (int j = 0; j < n; ++j) {
    double sum = 0.0;
    for (int k = m.rowstr[j]; k < m.rowstr[j + 1]; ++k) sum += m.a[k] * v[m.colidx[k]];
    out[j] = sum;
  }
}

// 25 CG steps on A z = x; returns ||x - A z||.
double ConjGrad(const Csr& m, int n, const std::vector<double>& x, std::vector<double>& z,
                std::vector<double>& p, std::vector<double>& q, std::vector<double>& r) {
  double rho = 0, d = 0, sum = 0;
#pragma omp parallel
  {
#pragma omp for reduction(+ : rho)
    for (int j = 0; j < n; ++j) {
      q[j] = z[j] = 0.0;
      r[j] = p[j] = x[j];
      rho += r[j] * r[j];
    }
    for (int it = 0; it < kCgIterations; ++it) {
      Matvec(m, p, q, n);
#pragma omp single
      d = 0;
#pragma omp for reduction(+ : d)
      for (int j = 0; j < n; ++j) d += p[j] * q[j];
      const double alpha = rho / d, rho0 = rho;
#pragma omp barrier
#pragma omp single
      rho = 0;
#pragma omp for reduction(+ : rho)
      for (int j = 0; j < n; ++j) {
        z[j] += alpha * p[j];
        r[j] -= alpha * q[j];
        rho += r[j] * r[j];
      }
      const double beta = rho / rho0;
#pragma omp for
      for (int j = 0; j < n; ++j) p[j] = r[j] + beta * p[j];
    }
    Matvec(m, z, r, n);
#pragma omp for reduction(+ : sum)
    for (int j = 0; j < n; ++j) sum += (x[j] - r[j]) * (x[j] - r[j]);
  }
  return std::sqrt(sum);
}

}  // namespace

int main(int argc, char** argv) {
  const char cls = npb::ParseClass(argc, argv, "SWAB", "npb_cg");
  const ClassSpec& c = *std::find_if(std::begin(kClasses), std::end(kClasses),
                                     [&](const ClassSpec& s) { return s.cls == cls; });
  const int n = c.na;
  npb::Randlc(&tran, kAmult);   // the specification draws one number first
  const Csr m = Makea(c);

  std::vector<double> x(n, 1.0), z(n), p(n), q(n), r(n);
  auto power_step = [&](double* zeta) {
    const double rnorm = ConjGrad(m, n, x, z, p, q, r);
    double t1 = 0, t2 = 0;
    for (int j = 0; j < n; ++j) {
      t1 += x[j] * z[j];
      t2 += z[j] * z[j];
    }
    t2 = 1.0 / std::sqrt(t2);
    *zeta = c.shift + 1.0 / t1;
    for (int j = 0; j < n; ++j) x[j] = t2 * z[j];
    return rnorm;
  };
  double zeta = 0;
  power_step(&zeta);            // untimed warm-up, as the specification does
  std::fill(x.begin(), x.end(), 1.0);

  npb::Timer timer;
  double rnorm = 0;
  for (int it = 1; it <= c.niter; ++it) {
    rnorm = power_step(&zeta);
    if (it == 1 || it == c.niter) std::printf(" CG: iteration %3d  ||r|| = %.14e  zeta = %.13f\n", it, rnorm, zeta);
  }
  const double seconds = timer.Seconds();
  const double err = std::fabs(zeta - c.zeta) / c.zeta;
  std::printf(" CG: zeta = %.13f (reference %.13f, relative error %.2e)\n", zeta, c.zeta, err);
  const double w = c.nonzer;
  const double mops = 2.0 * c.niter * n * (3.0 + w * (w + 1) + 25.0 * (5.0 + w * (w + 1)) + 3.0) / seconds / 1e6;
  return npb::Report("CG", cls, std::to_string(n), c.niter, seconds, mops, err <= 1e-10);
}
