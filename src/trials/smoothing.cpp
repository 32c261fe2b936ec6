#include "hpsweep/trials/smoothing.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

namespace hpsweep {

double smoothed_final_loss(const std::vector<std::int64_t>& step, const std::vector<double>& loss) {
  const std::size_t n = loss.size();
  if (n == 0) return std::numeric_limits<double>::quiet_NaN();
  if (n == 1) return loss[0];
  const double steps_logged = static_cast<double>(step.back());
  const double log_interval =
      (static_cast<double>(step.back()) - static_cast<double>(step.front())) / static_cast<double>(n - 1);
  const double sigma = std::min(100.0, 0.01 * steps_logged) / std::max(log_interval, 1e-12);
  if (sigma < 1e-3) return loss.back();
  const int radius = static_cast<int>(4.0 * sigma + 0.5);
  const long last = static_cast<long>(n) - 1;
  double num = 0, den = 0;
  for (int k = -radius; k <= radius; ++k) {
    long i = last + k;
    // scipy 'reflect': (d c b a | a b c d | d c b a)
    const long period = 2 * static_cast<long>(n);
    i = ((i % period) + period) % period;
    if (i >= static_cast<long>(n)) i = period - 1 - i;
    const double w = std::exp(-0.5 * (k / sigma) * (k / sigma));
    num += w * loss[static_cast<std::size_t>(i)];
    den += w;
  }
  return num / den;
}

}  // namespace hpsweep
