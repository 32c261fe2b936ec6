#pragma once
// Internal to the mlp backend: the elementwise passes of a training step (activation, AdamW) in
// float. Plain loops that GCC compiles three times (AVX-512, AVX2+FMA, SSE2) and picks from when
// the library loads (target_clones), so the default build runs them at the node's vector width,
// as the GEMMs do, with no per-node rebuild. Eigen cannot do this: it picks its vector width at
// compile time, and one Eigen function compiled twice with different flags breaks the
// one-definition rule. On one machine the same clone always runs: results are bit-identical run
// to run (another CPU may take another clone and differ in the last bits, as with the GEMMs).
#include <cstddef>
#include <string>

namespace hpsweep::mlp_detail {

// One AdamW step: g' = clip * g + l2 * p; m = b1 m + (1 - b1) g'; v = b2 v + (1 - b2) g'^2;
// p = keep * p - step_size * m / (sqrt(v) * inv_sqrt_bc2 + eps).
struct AdamStep {
  float clip, l2, b1, one_minus_b1, b2, one_minus_b2, keep, step_size, inv_sqrt_bc2, eps;
};
void adam_update(const AdamStep& a, float* p, const float* g, float* m, float* v, std::ptrdiff_t size);

// a = GELU(u) (tanh form) and da = GELU'(u), elementwise over size values.
void gelu_tanh(const float* u, float* a, float* da, std::ptrdiff_t size);
// a = max(u, 0) and da = (u > 0), elementwise.
void relu(const float* u, float* a, float* da, std::ptrdiff_t size);

// x *= y, elementwise (the backward pass through the activation: du *= act'(u)).
void multiply(float* x, const float* y, std::ptrdiff_t size);

// Asks Linux to back [p, p + bytes) with transparent huge pages, and drops what the range holds:
// call it before the buffer is written (the network's Buffers do). Only for 2 MiB or more; a
// no-op where THP is off ("never") and on other systems.
void prefer_huge_pages(void* p, std::size_t bytes);

// The instruction set the clones above run on this CPU: "AVX-512", "AVX2+FMA" or "SSE2".
std::string elementwise_isa();

}  // namespace hpsweep::mlp_detail
