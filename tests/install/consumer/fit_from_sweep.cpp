// Reads a sweep file and fits its laws through hpsweep's public API: what a training framework
// that embeds the reducer does. Prints the trial count and the predicted learning rate.
#include <cstdio>
#include <cstdlib>
#include <exception>

#include "hpsweep/reducer/fit.hpp"
#include "hpsweep/store/sweep_store.hpp"

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: %s SWEEP.h5 TARGET_PARAMS TARGET_TOKENS\n", argv[0]);
    return 2;
  }
  try {
    const hpsweep::SweepLog log = hpsweep::load_sweep(argv[1]);
    hpsweep::FitOptions options;
    options.target_params = std::atof(argv[2]);
    options.target_tokens = std::atof(argv[3]);
    const hpsweep::FitReport report = hpsweep::fit_sweep(log, options);
    if (!report.prediction) {
      std::fprintf(stderr, "no prediction\n");
      return 1;
    }
    std::printf("trials %zu lr %.6g\n", log.results.size(), report.prediction->lr.estimate);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
