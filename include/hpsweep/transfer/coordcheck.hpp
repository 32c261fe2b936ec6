#pragma once
// `hpsweep coordcheck`: the coordinate check of muP (Yang et al.). Train the job's mlp a few
// steps at several widths under each parametrization and watch mean |activation| per layer:
// under muP it stays the same size as the width grows (slope ~0 in log-log), under SP the
// Adam updates make it grow with width.
#include <cstdint>
#include <string>
#include <vector>

#include "hpsweep/store/records.hpp"

namespace hpsweep {

struct JobSpec;

struct CoordCheckOptions {
  std::vector<std::int64_t> widths = {64, 128, 256, 512, 1024};
  std::vector<std::string> parametrizations = {"sp", "mup"};
  std::int64_t steps = 10;
  int seeds = 3;
  double lr = 0;             // 0: the geometric middle of the job's [grid] lr
  std::int64_t batch = 0;    // 0: the job's smallest [grid] batch
  std::string text() const;  // canonical, stored with the result
  static CoordCheckOptions parse(const std::string& text);
};

struct CoordCheckSeries {
  std::string parametrization;
  std::int64_t width = 0;
  // mean over seeds of mean |h|: [k][layer] after k updates (k = 0..steps), layers = input,
  // block0..block{L-1}, logits
  std::vector<std::vector<double>> mean_abs;
};

struct CoordCheckResult {
  CoordCheckOptions options;
  std::vector<std::string> layers;
  std::vector<CoordCheckSeries> series;
  // slope of log mean|h| in log width after the last update: [parametrization][layer]
  std::vector<std::vector<double>> slopes;
  std::vector<std::string> notes;
};

// Runs the check with the job's [mlp] settings (throws InputError for another backend).
CoordCheckResult coord_check(const JobSpec& job, const CoordCheckOptions& options);
std::string format_coord_check(const CoordCheckResult& r);
std::string coord_check_json(const CoordCheckResult& r);
// Stored in the sweep file as /fits/<name> (kind coordcheck, coefficients = slopes).
FitRecord to_fit_record(const CoordCheckResult& r, const std::string& name);

}  // namespace hpsweep
