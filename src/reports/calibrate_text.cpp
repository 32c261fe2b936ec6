#include "hpsweep/reports/calibrate_text.hpp"

#include <cmath>
#include <cstdio>

#include "hpsweep/util/json.hpp"
#include "hpsweep/util/text.hpp"

namespace hpsweep {

std::string format_calibration(const CalibrationReport& r) {
  std::string out;
  char buf[512];
  std::snprintf(
      buf, sizeof buf,
      "calibrate: %s: %zu trial points in %zu cells; target N=%s D=%s\n"
      "  selection %s, %d replicate sweeps per condition%s\n",
      r.design.source.c_str(), r.design.points.size(), r.design.cells, format_short(r.design.target_params).c_str(),
      format_short(r.design.target_tokens).c_str(), r.selection.c_str(), r.replicates,
      r.selection.rfind("asym", 0) == 0 ? "" : (", " + std::to_string(r.resamples) + " bootstrap resamples").c_str());
  out += buf;
  out +=
      "  bias and RMSE of the estimate, coverage of its 95% interval (nominal 95%), mean interval width;\n"
      "  coefficients and targets in natural-log units\n";
  for (const auto& c : r.conditions) {
    std::snprintf(buf, sizeof buf, "\ntruth %s, noise %s%%%s\n", c.truth.c_str(), format_short(c.noise * 100).c_str(),
                  c.failed ? (" (" + std::to_string(c.failed) + " fits failed)").c_str() : "");
    out += buf;
    std::snprintf(buf, sizeof buf, "  %-42s %9s %9s %8s %9s %8s\n", "quantity", "truth", "bias", "RMSE", "coverage",
                  "width");
    out += buf;
    for (const auto& s : c.stats) {
      std::snprintf(buf, sizeof buf, "  %-42s %9.4f %+9.4f %8.4f %8.1f%% %8.4f\n", s.name.c_str(), s.truth, s.bias,
                    s.rmse, 100 * s.coverage, s.mean_width);
      out += buf;
    }
  }
  return out;
}

std::string calibration_json(const CalibrationReport& r) {
  JsonWriter j;
  j.begin_object();
  j.key("design").begin_object();
  j.key("source").value(r.design.source).key("points").value(r.design.points.size());
  j.key("cells").value(r.design.cells).key("target_params").value(r.design.target_params);
  j.key("target_tokens").value(r.design.target_tokens);
  j.end_object();
  j.key("selection").value(r.selection).key("replicates").value(static_cast<long long>(r.replicates));
  j.key("resamples").value(static_cast<long long>(r.resamples));
  j.key("conditions").begin_array();
  for (const auto& c : r.conditions) {
    j.begin_object();
    j.key("truth").value(c.truth).key("noise").value(c.noise).key("failed").value(c.failed);
    j.key("quantities").begin_array();
    for (const auto& s : c.stats) {
      j.begin_object();
      j.key("name").value(s.name).key("truth").value(s.truth).key("bias").value(s.bias).key("rmse").value(s.rmse);
      j.key("coverage").value(s.coverage).key("mean_width").value(s.mean_width).key("fits").value(s.fits);
      j.end_object();
    }
    j.end_array();
    j.end_object();
  }
  j.end_array();
  j.end_object();
  return j.str() + "\n";
}

}  // namespace hpsweep
