// Benchmark driver for the mlp backend (built and run by tests/bench/mlp_bench.sh; not a test).
// For each width: trains the default network (depth 4, FFN 4w, batch 256) through
// MlpBackend::run and reports training steps/s (the step loop only: data, forward, backward,
// AdamW), then times Eigen's own GEMM on exactly the products of one step (same shapes, same
// transposes) to give the share of the step's time that GEMM alone would need.
// Output: one JSON line per width.
#include <Eigen/Core>
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

// Seconds for the GEMMs of one training step (forward + backward) at this shape, best of a few.
double gemm_seconds(const MlpShape& sh, long batch) {
  const long w = sh.width, f = sh.ffn, d = sh.d_in, c = sh.classes, b = batch, L = sh.depth;
  Mat win = Mat::Random(w, d), wout = Mat::Random(c, w), w1 = Mat::Random(f, w), w2 = Mat::Random(w, f);
  Mat x = Mat::Random(d, b), xs = Mat::Random(w, b), xn = Mat::Random(w, b), u = Mat::Random(f, b),
      a = Mat::Random(f, b);
  Mat logits(c, b), dl = Mat::Random(c, b), dx = Mat::Random(w, b), dxn(w, b), du(f, b);
  Mat dwin(w, d), dwout(c, w), dw1(f, w), dw2(w, f);
  const float s = 0.5f;
  auto one_step = [&] {
    xs.noalias() = s * (win * x);
    for (long l = 0; l < L; ++l) {
      u.noalias() = s * (w1 * xn);
      xs.noalias() += s * (w2 * a);
    }
    logits.noalias() = s * (wout * xn);
    dwout.noalias() = s * (dl * xn.transpose());
    dxn.noalias() = s * (wout.transpose() * dl);
    for (long l = 0; l < L; ++l) {
      dw2.noalias() = s * (dx * a.transpose());
      du.noalias() = s * (w2.transpose() * dx);
      dw1.noalias() = s * (du * xn.transpose());
      dxn.noalias() = s * (w1.transpose() * du);
    }
    dwin.noalias() = s * (dx * x.transpose());
  };
  one_step();
  double best = 1e300;
  for (int rep = 0; rep < 3; ++rep) {
    int n = 0;
    const auto t = clk::now();
    do {
      one_step();
      ++n;
    } while (seconds_since(t) < 0.3);
    best = std::min(best, seconds_since(t) / n);
  }
  return best;
}

double square_gemm_gflops(long n) {
  Mat A = Mat::Random(n, n), B = Mat::Random(n, n), C(n, n);
  C.noalias() = A * B;
  int r = 0;
  const auto t = clk::now();
  do {
    C.noalias() = A * B;
    ++r;
  } while (seconds_since(t) < 1.0);
  return 2.0 * n * n * n * r / seconds_since(t) / 1e9;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<long> widths = {64, 128, 256, 512, 1024};
  long batch = 256, depth = 4;
  double min_seconds = 3.0;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i];
    if (k == "--widths") {
      widths.clear();
      std::string v = argv[i + 1];
      for (std::size_t p = 0; p < v.size();) {
        const std::size_t q = v.find(',', p);
        widths.push_back(std::stol(v.substr(p, q - p)));
        p = q == std::string::npos ? v.size() : q + 1;
      }
    } else if (k == "--batch")
      batch = std::stol(argv[i + 1]);
    else if (k == "--depth")
      depth = std::stol(argv[i + 1]);
    else if (k == "--min-seconds")
      min_seconds = std::stod(argv[i + 1]);
  }
  std::printf("{\"square_gemm_1024_gflops\": %.2f}\n", square_gemm_gflops(1024));
  for (long w : widths) {
    MlpBackend backend(MlpSettings::from_options({{"width", std::to_string(w)}, {"depth", std::to_string(depth)}}), 1);
    auto run = [&](long steps) {
      Trial t;
      t.id = 1;
      t.point = TrialPoint{0, static_cast<double>(steps * batch), 1e-3, batch, 1, 0.1, 0};
      const TrialOutcome out = backend.run(t);
      if (out.state != TrialState::Done) std::fprintf(stderr, "width %ld: %s\n", w, out.error.c_str());
      return backend.last_stats();
    };
    const MlpRunStats probe = run(3);
    const long steps = std::max<long>(5, static_cast<long>(min_seconds / (probe.train_seconds / 3)));
    const MlpRunStats st = run(steps);
    const double step_s = st.train_seconds / static_cast<double>(st.steps);
    const MlpShape sh = mlp_shape(TrialPoint{0, 1, 1e-3, batch, 1, 0, 0}, backend.settings());
    const double g = gemm_seconds(sh, batch);
    std::printf(
        "{\"width\": %ld, \"batch\": %ld, \"depth\": %ld, \"steps\": %ld, \"steps_per_s\": %.3f, \"step_ms\": %.4f, "
        "\"gflops\": %.2f, \"gemm_ms\": %.4f, \"gemm_gflops\": %.2f, \"pct_of_gemm\": %.1f, \"setup_s\": %.3f, "
        "\"eval_s\": %.3f}\n",
        w, batch, depth, static_cast<long>(st.steps), 1.0 / step_s, step_s * 1e3, st.flops_per_step / step_s / 1e9,
        g * 1e3, st.flops_per_step / g / 1e9, 100.0 * g / step_s, st.setup_seconds, st.eval_seconds);
    std::fflush(stdout);
  }
}
