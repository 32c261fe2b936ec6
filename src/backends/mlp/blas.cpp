// The network's GEMMs on OpenBLAS. OpenBLAS (Debian's is built DYNAMIC_ARCH) picks its kernels
// for the CPU when it loads: AVX-512 (SkylakeX, Cooperlake) or AVX2 (Haswell, Zen), unless the
// environment forces them with OPENBLAS_CORETYPE.
#include "backends/mlp/blas.hpp"

#include <cblas.h>

#include <cstdlib>
#include <string>

#include "hpsweep/backends/mlp.hpp"

namespace hpsweep {
namespace mlp_detail {

namespace {

CBLAS_TRANSPOSE op(bool transposed) { return transposed ? CblasTrans : CblasNoTrans; }

// One GEMM thread unless a trial asks for more (set_gemm_threads): OpenBLAS starts with one per
// core, and a sweep runs one trial per core. Set while the library loads, before any GEMM.
[[maybe_unused]] const bool one_thread_at_load = [] {
  openblas_set_num_threads(1);
  return true;
}();

}  // namespace

void gemm(bool trans_a, bool trans_b, Eigen::Index m, Eigen::Index n, Eigen::Index k, float alpha, const float* a,
          Eigen::Index lda, const float* b, Eigen::Index ldb, float beta, float* c, Eigen::Index ldc) {
  cblas_sgemm(CblasColMajor, op(trans_a), op(trans_b), static_cast<blasint>(m), static_cast<blasint>(n),
              static_cast<blasint>(k), alpha, a, static_cast<blasint>(lda), b, static_cast<blasint>(ldb), beta, c,
              static_cast<blasint>(ldc));
}

void gemm(bool trans_a, bool trans_b, Eigen::Index m, Eigen::Index n, Eigen::Index k, double alpha, const double* a,
          Eigen::Index lda, const double* b, Eigen::Index ldb, double beta, double* c, Eigen::Index ldc) {
  cblas_dgemm(CblasColMajor, op(trans_a), op(trans_b), static_cast<blasint>(m), static_cast<blasint>(n),
              static_cast<blasint>(k), alpha, a, static_cast<blasint>(lda), b, static_cast<blasint>(ldb), beta, c,
              static_cast<blasint>(ldc));
}

void set_gemm_threads(int threads) {
  if (threads != openblas_get_num_threads()) openblas_set_num_threads(threads);
}

}  // namespace mlp_detail

std::string mlp_gemm_library() {
  const char* config = openblas_get_config();
  const char* forced = std::getenv("OPENBLAS_CORETYPE");
  return std::string(config ? config : "OpenBLAS") + "; kernels: " + openblas_get_corename() +
         (forced ? std::string(" (forced by OPENBLAS_CORETYPE=") + forced + ")" : "");
}

}  // namespace hpsweep
