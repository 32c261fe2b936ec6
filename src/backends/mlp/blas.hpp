#pragma once
// Internal to the mlp backend: the GEMMs of the network go to OpenBLAS (cblas), whose
// DYNAMIC_ARCH build picks AVX2 or AVX-512 kernels for the CPU it runs on, so the default build
// uses the node's full vector width without a per-node rebuild. Everything else stays in Eigen.
#include <Eigen/Core>
#include <string>

namespace hpsweep::mlp_detail {

// C = alpha * op(A) * op(B) + beta * C on column-major storage (Eigen matrices, maps and
// column blocks of them). op(X) = X^T when the flag is set. Sizes are checked in debug builds.
void gemm(bool trans_a, bool trans_b, Eigen::Index m, Eigen::Index n, Eigen::Index k, float alpha, const float* a,
          Eigen::Index lda, const float* b, Eigen::Index ldb, float beta, float* c, Eigen::Index ldc);
void gemm(bool trans_a, bool trans_b, Eigen::Index m, Eigen::Index n, Eigen::Index k, double alpha, const double* a,
          Eigen::Index lda, const double* b, Eigen::Index ldb, double beta, double* c, Eigen::Index ldc);

// c = alpha * op(a) * op(b) + beta * c for Eigen column-major objects with contiguous columns.
template <class S, class A, class B, class C>
void product(S alpha, const A& a, bool trans_a, const B& b, bool trans_b, S beta, C&& c) {
  const Eigen::Index m = trans_a ? a.cols() : a.rows(), k = trans_a ? a.rows() : a.cols();
  const Eigen::Index n = trans_b ? b.rows() : b.cols();
  eigen_assert((trans_b ? b.cols() : b.rows()) == k && c.rows() == m && c.cols() == n);
  gemm(trans_a, trans_b, m, n, k, alpha, a.data(), a.outerStride(), b.data(), b.outerStride(), beta, c.data(),
       c.outerStride());
}

// Threads the GEMMs of the calling process use from now on (OpenBLAS's count is per process).
void set_gemm_threads(int threads);

}  // namespace hpsweep::mlp_detail
