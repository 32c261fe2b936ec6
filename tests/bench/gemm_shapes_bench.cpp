// The mlp trainer's GEMM shapes on one BLAS, one thread (built and run by tests/bench/mlp_bench.sh
// with GEMM_PEERS=1, once per library; not a test). Per width: the six products of a block,
// forward and backward (batch 256, FFN 4w), with the transposes the trainer passes, and their
// mix weighted as in a step. Linked against any library with the Fortran sgemm_ (OpenBLAS,
// BLIS), so the same driver compares them. Times are CPU seconds of this process, best of 5.
// Output: JSON lines.
#include <time.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

extern "C" void sgemm_(const char* ta, const char* tb, const int* m, const int* n, const int* k, const float* alpha,
                       const float* a, const int* lda, const float* b, const int* ldb, const float* beta, float* c,
                       const int* ldc);

namespace {

double cpu_now() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

struct Product {
  const char* name;
  char ta, tb;
  int m, n, k;
};

}  // namespace

int main(int argc, char** argv) {
  const std::string library = argc > 1 ? argv[1] : "?";
  for (int i = 2; i < argc; ++i) {
    const int w = std::atoi(argv[i]), b = 256, f = 4 * w;
    const std::vector<Product> products = {{"u = W1 xn", 'N', 'N', f, b, w},     {"x += W2 a", 'N', 'N', w, b, f},
                                           {"dW2 = dx a^T", 'N', 'T', w, f, b},  {"du = W2^T dx", 'T', 'N', f, b, w},
                                           {"dW1 = du xn^T", 'N', 'T', f, w, b}, {"dxn = W1^T du", 'T', 'N', w, b, f}};
    const std::size_t size = static_cast<std::size_t>(f) * static_cast<std::size_t>(std::max(f, b));
    std::vector<float> a(size), bm(size), c(size);
    for (std::size_t j = 0; j < size; ++j) {
      a[j] = static_cast<float>(j % 97) * 0.01f - 0.5f;
      bm[j] = static_cast<float>(j % 89) * 0.01f - 0.4f;
    }
    double flops = 0, seconds = 0;
    for (const auto& p : products) {
      const int lda = p.ta == 'N' ? p.m : p.k, ldb = p.tb == 'N' ? p.k : p.n, ldc = p.m;
      const float alpha = 0.5f, beta = 0.0f;
      auto run = [&] {
        sgemm_(&p.ta, &p.tb, &p.m, &p.n, &p.k, &alpha, a.data(), &lda, bm.data(), &ldb, &beta, c.data(), &ldc);
      };
      run();
      double best = 1e300;
      for (int rep = 0; rep < 5; ++rep) {
        const double t = cpu_now();
        int n = 0;
        do {
          run();
          ++n;
        } while (cpu_now() - t < 0.1);
        best = std::min(best, (cpu_now() - t) / n);
      }
      const double f_p = 2.0 * p.m * p.n * p.k;
      flops += f_p;
      seconds += best;
      std::printf(
          "{\"library\": \"%s\", \"width\": %d, \"product\": \"%s\", \"op\": \"%c%c\", \"m\": %d, \"n\": %d, \"k\": "
          "%d, "
          "\"gflops\": %.2f}\n",
          library.c_str(), w, p.name, p.ta, p.tb, p.m, p.n, p.k, f_p / best / 1e9);
    }
    std::printf("{\"library\": \"%s\", \"width\": %d, \"product\": \"block mix\", \"gflops\": %.2f}\n", library.c_str(),
                w, flops / seconds / 1e9);
    std::fflush(stdout);
  }
}
