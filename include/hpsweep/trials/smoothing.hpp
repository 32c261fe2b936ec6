#pragma once
// The Step Law study's "smooth loss": a Gaussian filter over the logged loss curve with
// sigma = min(100, 0.01 * steps_logged) / log_interval (in logged points), last value kept.
#include <cstdint>
#include <vector>

namespace hpsweep {

// `step` must be increasing. Returns NaN for an empty curve. Edges use reflection, as
// scipy.ndimage.gaussian_filter1d does by default, truncated at 4 sigma.
double smoothed_final_loss(const std::vector<std::int64_t>& step, const std::vector<double>& loss);

}  // namespace hpsweep
