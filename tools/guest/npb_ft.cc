// NPB FT (3-D FFT PDE solver), written from the NPB specification.
//
//   npb_ft [--class S|W|A] [--threads N]
//
// Solves du/dt = alpha del^2 u on a periodic grid spectrally: the initial
// field (NPB random numbers, one seed per z-plane) is transformed once;
// each iteration multiplies the spectrum by exp(-4 alpha pi^2 |k|^2) again
// and transforms back, and a checksum of 1024 sampled points (divided by
// the grid size: the transforms are unnormalised) is compared with the
// official complex value of that iteration (relative error <= 1e-12).
// Class B is refused: its 20 official checksums are not included here.
#include <algorithm>
#include <cmath>
#include <complex>
#include <vector>

#include "npb_common.h"

namespace {

using cplx = std::complex<double>;

struct ClassSpec {
  char cls;
  int nx, ny, nz, niter;
  double sums[6][2];   // official checksums, iterations 1..6
};

constexpr ClassSpec kClasses[] = {
    {'S', 64, 64, 64, 6,
     {{5.546087004964e+02, 4.845363331978e+02}, {5.546385409189e+02, 4.865304269511e+02},
      {5.546148406171e+02, 4.883910722336e+02}, {5.545423607415e+02, 4.901273169046e+02},
      {5.544255039624e+02, 4.917475857993e+02}, {5.542683411902e+02, 4.932597244941e+02}}},
    {'W', 128, 128, 32, 6,
     {{5.673612178944e+02, 5.293246849175e+02}, {5.631436885271e+02, 5.282149986629e+02},
      {5.594024089970e+02, 5.270996558037e+02}, {5.560698047020e+02, 5.260027904925e+02},
      {5.530898991250e+02, 5.249400845633e+02}, {5.504159734538e+02, 5.239212247086e+02}}},
    {'A', 256, 256, 128, 6,
     {{5.046735008193e+02, 5.114047905510e+02}, {5.059412319734e+02, 5.098809666433e+02},
      {5.069376896287e+02, 5.098144042213e+02}, {5.077892868474e+02, 5.101336130759e+02},
      {5.085233095391e+02, 5.104914655194e+02}, {5.091487099959e+02, 5.107917842803e+02}}},
};

// In-place radix-2 FFT of n points spaced `stride` apart; sign -1 forward.
void Fft1d(cplx* data, int n, long stride, int sign, std::vector<cplx>& buf) {
  buf.resize(n);
  for (int i = 0; i < n; ++i) buf[i] = data[i * stride];
  for (int i = 1, j = 0; i < n; ++i) {   // bit reversal
    int bit = n >> 1;
    for (; j & bit; bit >>= 1) j ^= bit;
    j ^= bit;
    if (i < j) std::swap(buf[i], buf[j]);
  }
  for (int len = 2; len <= n; len <<= 1) {
    const double angle = sign * 2 * M_PI / len;
    const cplx wlen(std::cos(angle), std::sin(angle));
    for (int i = 0; i < n; i += len) {
      cplx w(1);
      for (int k = 0; k < len / 2; ++k) {
        const cplx u = buf[i + k], v = buf[i + k + len / 2] * w;
        buf[i + k] = u + v;
        buf[i + k + len / 2] = u - v;
        w *= wlen;
      }
    }
  }
  for (int i = 0; i < n; ++i) data[i * stride] = buf[i];
}

// 3-D transform of a [nz][ny][nx] array (x fastest), unnormalised.
void Fft3d(std::vector<cplx>& u, const ClassSpec& c, int sign) {
  const long nx = c.nx, ny = c.ny, nz = c.nz;
#pragma omp parallel
  {
    std::vector<cplx> buf;
#pragma omp for collapse(2) schedule(static)
    for (long k = 0; k < nz; ++k)
      for (long j = 0; j < ny; ++j) Fft1d(&u[(k * ny + j) * nx], int(nx), 1, sign, buf);
#pragma omp for collapse(2) schedule(static)
    for (long k = 0; k < nz; ++k)
      for (long i = 0; i < nx; ++i) Fft1d(&u[k * ny * nx + i], int(ny), nx, sign, buf);
#pragma omp for collapse(2) schedule(static)
    for (long j = 0; j < ny; ++j)
      for (long i = 0; i < nx; ++i) Fft1d(&u[j * nx + i], int(nz), nx * ny, sign, buf);
  }
}

}  // namespace

int main(int argc, char** argv) {
  const char cls = npb::ParseClass(argc, argv, "SWA", "npb_ft");
  const ClassSpec& c = *std::find_if(std::begin(kClasses), std::end(kClasses),
                                     [&](const ClassSpec& s) { return s.cls == cls; });
  const long nx = c.nx, ny = c.ny, nz = c.nz, ntotal = nx * ny * nz;
  constexpr double kA = 1220703125.0, kAlpha = 1e-6;

  // Initial conditions: plane k starts at seed * a^(2*nx*ny*k); each row is
  // 2*nx consecutive numbers (real and imaginary parts).
  std::vector<cplx> u0(ntotal), u1(ntotal);
  {
    double start = 314159265.0, an = 1.0;
    const long jump = 2 * nx * ny;
    double aj = kA;
    for (long e = jump; e != 0; e /= 2) {   // an = a^jump
      if (e % 2) npb::Randlc(&an, aj);
      npb::Randlc(&aj, aj);
    }
    std::vector<double> row(2 * nx);
    for (long k = 0; k < nz; ++k) {
      double x0 = start;
      for (long j = 0; j < ny; ++j) {
        npb::Vranlc(int(2 * nx), &x0, kA, row.data());
        for (long i = 0; i < nx; ++i) u1[(k * ny + j) * nx + i] = cplx(row[2 * i], row[2 * i + 1]);
      }
      npb::Randlc(&start, an);
    }
  }
  // exp(-4 alpha pi^2 |k|^2) with frequencies folded to [-n/2, n/2).
  std::vector<double> twiddle(ntotal);
  const double ap = -4.0 * kAlpha * M_PI * M_PI;
  for (long k = 0; k < nz; ++k) {
    const long kk = (k + nz / 2) % nz - nz / 2;
    for (long j = 0; j < ny; ++j) {
      const long jj = (j + ny / 2) % ny - ny / 2;
      for (long i = 0; i < nx; ++i) {
        const long ii = (i + nx / 2) % nx - nx / 2;
        twiddle[(k * ny + j) * nx + i] = std::exp(ap * double(ii * ii + jj * jj + kk * kk));
      }
    }
  }

  npb::Timer timer;
  u0 = u1;
  Fft3d(u0, c, -1);
  bool verified = true;
  for (int it = 1; it <= c.niter; ++it) {
#pragma omp parallel for schedule(static)
    for (long p = 0; p < ntotal; ++p) {
      u0[p] *= twiddle[p];
      u1[p] = u0[p];
    }
    Fft3d(u1, c, +1);
    cplx chk(0);
    for (long j = 1; j <= 1024; ++j) {
      const long q = j % nx, r = 3 * j % ny, s = 5 * j % nz;
      chk += u1[(s * ny + r) * nx + q];
    }
    chk /= double(ntotal);
    const double er = std::fabs((chk.real() - c.sums[it - 1][0]) / c.sums[it - 1][0]);
    const double ei = std::fabs((chk.imag() - c.sums[it - 1][1]) / c.sums[it - 1][1]);
    const bool ok = er <= 1e-12 && ei <= 1e-12;
    verified = verified && ok;
    std::printf(" FT: T = %2d  checksum = %22.12e %22.12e  %s\n", it, chk.real(), chk.imag(),
                ok ? "ok" : "WRONG");
  }
  const double seconds = timer.Seconds();
  const double n = double(ntotal);
  const double mops = 1e-6 * n * (14.8157 + 7.19641 * std::log(n) + (5.23518 + 7.21113 * std::log(n)) * c.niter) / seconds;
  return npb::Report("FT", cls, std::to_string(nx) + "x" + std::to_string(ny) + "x" + std::to_string(nz),
                     c.niter, seconds, mops, verified);
}
