// Benchmark driver for the mlp backend (built and run by tests/bench/mlp_bench.sh; not a test).
// Linked against the libhpsweep of a build tree (build/release by default), so it measures
// exactly what that build runs.
//
// 1. Peak: the FP32 FMA throughput of one core, from independent FMA chains (12 accumulators of
//    the widest vectors the CPU has: AVX-512, else AVX2+FMA, else SSE multiply-add), chosen at
//    run time. Every other figure is also given as a fraction of it.
// 2. GEMM: a 1024^3 SGEMM through the trainer's GEMM (OpenBLAS, on the kernels libhpsweep runs)
//    and through Eigen's own product compiled like this driver (the default build's flags).
// 3. Per width: training steps/s of the default network (depth 4, FFN 4w, batch 256, d_in =
//    classes = 64, teacher 256) through MlpBackend::run, the step loop only (data, forward,
//    backward, AdamW), split into data, forward+backward and update; and the same step's GEMMs
//    alone (same shapes and transposes, through the same library), which gives "% of GEMM".
// Times are CPU time of the measuring thread (everything runs on it: one GEMM thread), so
// other jobs on the machine do not count as ours; the wall-clock rate is printed too.
// Output: JSON lines.
#include <cblas.h>

#include <time.h>
#include <Eigen/Core>
#include <algorithm>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "hpsweep/backends/mlp.hpp"

using namespace hpsweep;
using Mat = Eigen::MatrixXf;
using clk = std::chrono::steady_clock;

namespace {

double seconds_since(clk::time_point t) { return std::chrono::duration<double>(clk::now() - t).count(); }

// CPU seconds of the calling thread: on a machine shared with other jobs, the time this thread
// actually ran (waiting for a core is not counted; caches shared with the others still are).
double cpu_now() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

// ---------------------------------------------------------------------------------------------
// Peak FP32 FLOP/s of one core: 12 independent accumulators (enough to cover FMA latency x
// ports on current cores), FLOPs = 2 per lane per FMA. Inline assembly so that the compiler
// can neither spill the accumulators nor drop the loop.
// ---------------------------------------------------------------------------------------------

#if defined(__x86_64__)
#define FMA12(insn, reg, a, b)                                                                                        \
  insn " " a ", " b ", %%" reg "0\n\t" insn " " a ", " b ", %%" reg "1\n\t" insn " " a ", " b ", %%" reg "2\n\t" insn \
       " " a ", " b ", %%" reg "3\n\t" insn " " a ", " b ", %%" reg "4\n\t" insn " " a ", " b ", %%" reg "5\n\t" insn \
       " " a ", " b ", %%" reg "6\n\t" insn " " a ", " b ", %%" reg "7\n\t" insn " " a ", " b ", %%" reg "8\n\t" insn \
       " " a ", " b ", %%" reg "9\n\t" insn " " a ", " b ", %%" reg "10\n\t" insn " " a ", " b ", %%" reg "11\n\t"

__attribute__((target("avx512f"))) void fma_avx512(long iters) {
  asm volatile(
      "vxorps %%xmm30, %%xmm30, %%xmm30\n\tvxorps %%xmm31, %%xmm31, %%xmm31\n\t"
      "1:\n\t" FMA12("vfmadd231ps", "zmm", "%%zmm30", "%%zmm31")
          FMA12("vfmadd231ps", "zmm", "%%zmm30", "%%zmm31") "dec %0\n\tjnz 1b\n\tvzeroupper"
      : "+r"(iters)
      :
      : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm30",
        "xmm31", "cc");
}
__attribute__((target("avx2,fma"))) void fma_avx2(long iters) {
  asm volatile(
      "vxorps %%xmm14, %%xmm14, %%xmm14\n\tvxorps %%xmm15, %%xmm15, %%xmm15\n\t"
      "1:\n\t" FMA12("vfmadd231ps", "ymm", "%%ymm14", "%%ymm15")
          FMA12("vfmadd231ps", "ymm", "%%ymm14", "%%ymm15") "dec %0\n\tjnz 1b\n\tvzeroupper"
      : "+r"(iters)
      :
      : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm14",
        "xmm15", "cc");
}
#endif

struct Peak {
  std::string isa;
  double gflops = 0;
};

// 24 FMA instructions per iteration (two FMA12 blocks of 12), best of 5 runs of ~0.2 s.
Peak peak_fp32() {
  Peak p;
#if defined(__x86_64__)
  __builtin_cpu_init();
  void (*kernel)(long) = nullptr;
  int lanes = 0;
  if (__builtin_cpu_supports("avx512f")) {
    kernel = fma_avx512, lanes = 16, p.isa = "AVX-512 FMA";
  } else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
    kernel = fma_avx2, lanes = 8, p.isa = "AVX2 FMA";
  }
  if (kernel) {
    long iters = 1000000;
    kernel(iters);
    for (int rep = 0; rep < 5; ++rep) {
      const double t = cpu_now();
      kernel(iters);
      const double s = cpu_now() - t;
      p.gflops = std::max(p.gflops, 2.0 * lanes * 24.0 * static_cast<double>(iters) / s / 1e9);
      if (s < 0.2) iters = static_cast<long>(static_cast<double>(iters) * 0.2 / s) + 1;
    }
    return p;
  }
#endif
  p.isa = "unknown (no AVX2/AVX-512 probe)";
  return p;
}

// ---------------------------------------------------------------------------------------------
// GEMM
// ---------------------------------------------------------------------------------------------

void sgemm(bool ta, bool tb, long m, long n, long k, float alpha, const Mat& a, const Mat& b, float beta, Mat& c) {
  cblas_sgemm(CblasColMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n, k, alpha, a.data(),
              a.rows(), b.data(), b.rows(), beta, c.data(), c.rows());
}

template <class F>
double best_seconds(F&& f, double window) {
  f();
  double best = 1e300;
  for (int rep = 0; rep < 3; ++rep) {
    int n = 0;
    const auto t = clk::now();
    const double c = cpu_now();
    do {
      f();
      ++n;
    } while (seconds_since(t) < window);
    best = std::min(best, (cpu_now() - c) / n);
  }
  return best;
}

// Seconds for the student GEMMs of one training step (forward + backward) at this shape.
double step_gemm_seconds(const MlpShape& sh, long b) {
  const long w = sh.width, f = sh.ffn, d = sh.d_in, c = sh.classes, L = sh.depth;
  Mat win = Mat::Random(w, d), wout = Mat::Random(c, w), w1 = Mat::Random(f, w), w2 = Mat::Random(w, f);
  Mat x = Mat::Random(d, b), xs = Mat::Random(w, b), xn = Mat::Random(w, b), u = Mat::Random(f, b),
      a = Mat::Random(f, b);
  Mat logits(c, b), dl = Mat::Random(c, b), dx = Mat::Random(w, b), dxn(w, b), du(f, b);
  Mat dwin(w, d), dwout(c, w), dw1(f, w), dw2(w, f);
  const float s = 0.5f;
  return best_seconds(
      [&] {
        sgemm(false, false, w, b, d, s, win, x, 0, xs);
        for (long l = 0; l < L; ++l) {
          sgemm(false, false, f, b, w, s, w1, xn, 0, u);
          sgemm(false, false, w, b, f, s, w2, a, 1, xs);
        }
        sgemm(false, false, c, b, w, s, wout, xn, 0, logits);
        sgemm(false, true, c, w, b, s, dl, xn, 0, dwout);
        sgemm(true, false, w, b, c, s, wout, dl, 0, dxn);
        for (long l = 0; l < L; ++l) {
          sgemm(false, true, w, f, b, s, dx, a, 0, dw2);
          sgemm(true, false, f, b, w, s, w2, dx, 0, du);
          sgemm(false, true, f, w, b, s, du, xn, 0, dw1);
          sgemm(true, false, w, b, f, s, w1, du, 0, dxn);
        }
        sgemm(false, true, w, d, b, s, dx, x, 0, dwin);
      },
      0.3);
}

double square_gflops(long n, bool eigen) {
  Mat A = Mat::Random(n, n), B = Mat::Random(n, n), C(n, n);
  const double s = best_seconds(
      [&] {
        if (eigen)
          C.noalias() = A * B;
        else
          sgemm(false, false, n, n, n, 1, A, B, 0, C);
      },
      1.0);
  return 2.0 * n * n * n / s / 1e9;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<long> widths = {64, 128, 256, 512, 1024};
  long batch = 256, depth = 4;
  double min_seconds = 3.0;
  bool gemm_only = false;
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    const char* v = i + 1 < argc ? argv[i + 1] : "";
    if (k == "--gemm-only") {
      gemm_only = true;
      continue;
    }
    ++i;
    if (k == "--widths") {
      widths.clear();
      const std::string list = v;
      for (std::size_t p = 0; p < list.size();) {
        const std::size_t q = list.find(',', p);
        widths.push_back(std::stol(list.substr(p, q - p)));
        p = q == std::string::npos ? list.size() : q + 1;
      }
    } else if (k == "--batch")
      batch = std::stol(v);
    else if (k == "--depth")
      depth = std::stol(v);
    else if (k == "--min-seconds")
      min_seconds = std::stod(v);
  }
  const Peak peak = peak_fp32();
  const double blas = square_gflops(1024, false);
  std::printf(
      "{\"peak_isa\": \"%s\", \"peak_gflops\": %.2f, \"gemm_library\": \"%s\", \"elementwise_isa\": \"%s\", "
      "\"sgemm_1024_gflops\": %.2f, "
      "\"eigen_gemm_1024_gflops\": %.2f, \"eigen_simd\": \"%s\"}\n",
      peak.isa.c_str(), peak.gflops, mlp_gemm_library().c_str(), mlp_elementwise_isa().c_str(), blas,
      gemm_only ? 0.0 : square_gflops(1024, true), Eigen::SimdInstructionSetsInUse());
  std::fflush(stdout);
  if (gemm_only) return 0;
  for (long w : widths) {
    // eval_size 256: the held-out loss is not timed, a smaller set only saves the benchmark's time.
    MlpBackend backend(MlpSettings::from_options(
                           {{"width", std::to_string(w)}, {"depth", std::to_string(depth)}, {"eval_size", "256"}}),
                       1);
    auto run = [&](long steps) {
      Trial t;
      t.id = 1;
      t.point = TrialPoint{0, static_cast<double>(steps * batch), 1e-3, batch, 1, 0.1, 0};
      const TrialOutcome out = backend.run(t);
      if (out.state != TrialState::Done) std::fprintf(stderr, "width %ld: %s\n", w, out.error.c_str());
      return backend.last_stats();
    };
    // CPU time per step from two runs of different length (setup and held-out loss cancel);
    // the step's parts are the shares of the wall time the trainer measures.
    const MlpRunStats probe = run(3);
    const long steps = std::max<long>(6, static_cast<long>(min_seconds / (probe.train_seconds / 3)));
    const long short_steps = std::max<long>(2, steps / 4);
    double c = cpu_now();
    (void)run(short_steps);
    const double short_cpu = cpu_now() - c;
    c = cpu_now();
    const MlpRunStats st = run(steps);
    const double step_s = (cpu_now() - c - short_cpu) / static_cast<double>(steps - short_steps);
    const double n = static_cast<double>(st.steps);
    const double wall_step_s = st.train_seconds / n;
    const double share = step_s / wall_step_s;  // wall ms -> CPU ms
    const MlpShape sh = mlp_shape(TrialPoint{0, 1, 1e-3, batch, 1, 0, 0}, backend.settings());
    const double g = step_gemm_seconds(sh, batch);
    const double gflops = st.flops_per_step / step_s / 1e9;
    std::printf(
        "{\"width\": %ld, \"batch\": %ld, \"depth\": %ld, \"steps\": %ld, \"steps_per_s\": %.3f, \"step_ms\": %.4f, "
        "\"wall_steps_per_s\": %.3f, "
        "\"data_ms\": %.4f, \"fwd_bwd_ms\": %.4f, \"update_ms\": %.4f, \"gflops\": %.2f, \"pct_of_peak\": %.1f, "
        "\"gemm_ms\": %.4f, \"gemm_gflops\": %.2f, \"pct_of_gemm\": %.1f, \"setup_s\": %.3f, \"eval_s\": %.3f}\n",
        w, batch, depth, static_cast<long>(st.steps), 1.0 / step_s, step_s * 1e3, 1.0 / wall_step_s,
        share * st.data_seconds / n * 1e3, share * (st.train_seconds - st.data_seconds - st.update_seconds) / n * 1e3,
        share * st.update_seconds / n * 1e3, gflops, peak.gflops > 0 ? 100.0 * gflops / peak.gflops : 0.0, g * 1e3,
        st.flops_per_step / g / 1e9, 100.0 * g / step_s, st.setup_seconds, st.eval_seconds);
    std::fflush(stdout);
  }
}
