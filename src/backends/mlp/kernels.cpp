// The elementwise passes of the mlp trainer, compiled for three instruction sets (see
// kernels.hpp). Built with -O3 -fno-math-errno (CMakeLists.txt): without the latter, sqrt may set
// errno and the AdamW loop is not vectorised.
#include "backends/mlp/kernels.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <cmath>
#include <cstdint>

#include "hpsweep/backends/mlp.hpp"

namespace hpsweep::mlp_detail {

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define HPSWEEP_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define HPSWEEP_CLONES
#endif

namespace {

// tanh as Eigen's float rational approximation (numerator of degree 13, denominator of degree 6;
// |x| < 4e-4 returns x), written so that every clone vectorises it.
inline float tanh_rational(float u) {
  const float x =
      u > 7.99881172180175781f ? 7.99881172180175781f : (u < -7.99881172180175781f ? -7.99881172180175781f : u);
  const float x2 = x * x;
  float p = x2 * -2.76076847742355e-16f + 2.00018790482477e-13f;
  p = x2 * p + -8.60467152213735e-11f;
  p = x2 * p + 5.12229709037114e-08f;
  p = x2 * p + 1.48572235717979e-05f;
  p = x2 * p + 6.37261928875436e-04f;
  p = x2 * p + 4.89352455891786e-03f;
  p = x * p;
  float q = x2 * 1.19825839466702e-06f + 1.18534705686654e-04f;
  q = x2 * q + 2.26843463243900e-03f;
  q = x2 * q + 4.89352518554385e-03f;
  const float t = p / q;
  // Beyond the clamp tanh rounds to +-1 (the rational's value there is 4 ulps short: GELU' would
  // keep a spurious (1 - t^2) x^3 term of 1e-3 at |u| = 30).
  const float sat = std::fabs(u) >= 7.99881172180175781f ? std::copysign(1.0f, u) : t;
  return std::fabs(u) < 0.0004f ? u : sat;
}

}  // namespace

HPSWEEP_CLONES
void adam_update(const AdamStep& a, float* __restrict p, const float* __restrict g, float* __restrict m,
                 float* __restrict v, std::ptrdiff_t size) {
  const AdamStep s = a;  // local copy: no aliasing with the arrays
  for (std::ptrdiff_t i = 0; i < size; ++i) {
    const float gi = g[i] * s.clip + s.l2 * p[i];
    const float mi = s.b1 * m[i] + s.one_minus_b1 * gi;
    const float vi = s.b2 * v[i] + s.one_minus_b2 * (gi * gi);
    m[i] = mi;
    v[i] = vi;
    p[i] = p[i] * s.keep - (s.step_size * mi) / (std::sqrt(vi) * s.inv_sqrt_bc2 + s.eps);
  }
}

HPSWEEP_CLONES
void gelu_tanh(const float* __restrict u, float* __restrict a, float* __restrict da, std::ptrdiff_t size) {
  constexpr float c0 = 0.7978845608028654f, c1 = 0.044715f;  // sqrt(2/pi), GELU's cubic term
  for (std::ptrdiff_t i = 0; i < size; ++i) {
    const float x = u[i];
    const float t = tanh_rational(c0 * (x + c1 * x * x * x));
    a[i] = 0.5f * x * (1.0f + t);
    da[i] = 0.5f * (1.0f + t) + (0.5f * c0) * x * (1.0f - t * t) * (1.0f + (3.0f * c1) * x * x);
  }
}

HPSWEEP_CLONES
void relu(const float* __restrict u, float* __restrict a, float* __restrict da, std::ptrdiff_t size) {
  for (std::ptrdiff_t i = 0; i < size; ++i) {
    a[i] = u[i] > 0.0f ? u[i] : 0.0f;
    da[i] = u[i] > 0.0f ? 1.0f : 0.0f;
  }
}

HPSWEEP_CLONES
void multiply(float* __restrict x, const float* __restrict y, std::ptrdiff_t size) {
  for (std::ptrdiff_t i = 0; i < size; ++i) x[i] *= y[i];
}

void prefer_huge_pages(void* p, std::size_t bytes) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  constexpr std::size_t kLarge = std::size_t{2} << 20;  // one huge page
  static const auto page = static_cast<std::uintptr_t>(sysconf(_SC_PAGESIZE));
  if (bytes < kLarge || page == 0) return;
  // Whole pages inside the buffer only: malloc's bookkeeping next to it stays untouched.
  const auto start = (reinterpret_cast<std::uintptr_t>(p) + page - 1) / page * page;
  const auto end = (reinterpret_cast<std::uintptr_t>(p) + bytes) / page * page;
  if (end <= start) return;
  void* range = reinterpret_cast<void*>(start);
  // Memory malloc hands out again may be backed by 4 KiB pages already: drop them, so that the
  // first write faults in huge ones. Failures only cost speed.
  (void)madvise(range, end - start, MADV_DONTNEED);
  (void)madvise(range, end - start, MADV_HUGEPAGE);
#else
  (void)p;
  (void)bytes;
#endif
}

std::string elementwise_isa() {
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("x86-64-v4")) return "AVX-512";
  if (__builtin_cpu_supports("x86-64-v3")) return "AVX2+FMA";
  return "SSE2";
#else
  return "as compiled";
#endif
}

}  // namespace hpsweep::mlp_detail

namespace hpsweep {
std::string mlp_elementwise_isa() { return mlp_detail::elementwise_isa(); }
}  // namespace hpsweep
