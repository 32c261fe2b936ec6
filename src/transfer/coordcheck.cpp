#include "hpsweep/transfer/coordcheck.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <map>
#include <set>

#include "hpsweep/backends/mlp.hpp"
#include "hpsweep/spec/job.hpp"
#include "hpsweep/util/error.hpp"
#include "hpsweep/util/json.hpp"
#include "hpsweep/util/text.hpp"

namespace hpsweep {

namespace {
template <class T, class F>
std::string join_list(const std::vector<T>& v, F f) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ",") + f(x);
  return s;
}
double slope_in_log_width(const std::vector<double>& widths, const std::vector<double>& values) {
  // Least-squares slope of log value on log width.
  double mx = 0, my = 0;
  const double n = static_cast<double>(widths.size());
  for (std::size_t i = 0; i < widths.size(); ++i) mx += std::log(widths[i]) / n, my += std::log(values[i]) / n;
  double sxy = 0, sxx = 0;
  for (std::size_t i = 0; i < widths.size(); ++i) {
    const double dx = std::log(widths[i]) - mx;
    sxy += dx * (std::log(values[i]) - my);
    sxx += dx * dx;
  }
  return sxx > 0 ? sxy / sxx : std::numeric_limits<double>::quiet_NaN();
}
}  // namespace

std::string CoordCheckOptions::text() const {
  return "coordcheck;widths=" + join_list(widths, [](std::int64_t w) { return std::to_string(w); }) +
         ";parametrizations=" + join_list(parametrizations, [](const std::string& p) { return p; }) +
         ";steps=" + std::to_string(steps) + ";seeds=" + std::to_string(seeds) + ";lr=" + format_double(lr) +
         ";batch=" + std::to_string(batch);
}

CoordCheckOptions CoordCheckOptions::parse(const std::string& text) {
  CoordCheckOptions o;
  for (const auto& item : split(text, ';')) {
    const auto eq = item.find('=');
    if (eq == std::string::npos) continue;
    const std::string k = item.substr(0, eq), v = item.substr(eq + 1);
    if (k == "widths") {
      o.widths.clear();
      for (const auto& w : split(v, ',')) o.widths.push_back(std::stoll(w));
    } else if (k == "parametrizations") {
      o.parametrizations = split(v, ',');
    } else if (k == "steps")
      o.steps = std::stoll(v);
    else if (k == "seeds")
      o.seeds = std::stoi(v);
    else if (k == "lr")
      o.lr = std::stod(v);
    else if (k == "batch")
      o.batch = std::stoll(v);
    else
      throw InputError("unknown coordcheck option '" + k + "' in '" + text + "'");
  }
  return o;
}

CoordCheckResult coord_check(const JobSpec& job, const CoordCheckOptions& given) {
  if (job.backend_kind != "mlp")
    throw InputError(job.path + ": coordcheck trains the mlp backend; this job's [backend] kind is '" +
                     job.backend_kind + "'");
  CoordCheckOptions o = given;
  if (o.widths.size() < 2) throw InputError("coordcheck needs at least 2 widths");
  for (auto w : o.widths)
    if (w < 8 || w > 65536) throw InputError("coordcheck width " + std::to_string(w) + " is outside [8, 65536]");
  if (o.steps < 1 || o.seeds < 1) throw InputError("coordcheck needs --steps >= 1 and --seeds >= 1");
  if (o.lr <= 0) {
    double lo = *std::min_element(job.lr.begin(), job.lr.end()), hi = *std::max_element(job.lr.begin(), job.lr.end());
    o.lr = std::sqrt(lo * hi);
  }
  if (o.batch <= 0) o.batch = *std::min_element(job.batch.begin(), job.batch.end());
  std::sort(o.widths.begin(), o.widths.end());

  CoordCheckResult r;
  r.options = o;
  std::vector<double> widths(o.widths.begin(), o.widths.end());
  for (const auto& name : o.parametrizations) {
    // The job's own settings for this parametrization: a [variants] row that selects it, else
    // the [mlp] section with the parametrization changed, less the μP rules it does not have
    // (depth_alpha; under SP also wd_width_rule).
    std::map<std::string, std::string> options = job.backend_options;
    bool from_variant = false;
    for (const auto& v : job.variants)
      if (v.backend_options.at("parametrization") == name) {
        options = v.backend_options;
        from_variant = true;
        break;
      }
    if (!from_variant && options["parametrization"] != name) {
      if (name != "mup") options["depth_alpha"] = "0";
      if (name == "sp") options["wd_width_rule"] = "none";
    }
    options["parametrization"] = name;
    MlpSettings s;
    try {
      s = MlpSettings::from_options(options);
    } catch (const InputError& e) {
      throw InputError(std::string("coordcheck --parametrization: ") + e.what());
    }
    // A constant learning rate from the first step: the check looks at the updates' size.
    s.schedule = MlpSchedule::Constant;
    s.warmup_frac = 0;
    s.decay_frac = 0;
    s.final_lr_frac = 1;
    s.diverge_factor = 1e300;  // only non-finite losses stop the trace
    s.max_steps = std::max(s.max_steps, o.steps);
    std::vector<std::vector<double>> last_by_width;
    for (std::int64_t w : o.widths) {
      s.width = w;
      MlpBackend backend(s, job.seed);
      CoordCheckSeries series;
      series.parametrization = name;
      series.width = w;
      // Row k: the forward pass after k updates (row 0: at initialisation).
      const std::int64_t rows = o.steps + 1;
      series.mean_abs.assign(static_cast<std::size_t>(rows),
                             std::vector<double>(static_cast<std::size_t>(s.depth) + 2, 0.0));
      std::int64_t steps_seen = rows;
      for (int seed = 0; seed < o.seeds; ++seed) {
        Trial t;
        t.id = 0xC00DC4EC0000ull + static_cast<std::uint64_t>(seed);  // the same data and init stream at every width
        t.point = TrialPoint{0, static_cast<double>(rows * o.batch), o.lr, o.batch, 1, 0, seed, ""};
        const auto trace = backend.activation_trace(t, rows);
        steps_seen = std::min<std::int64_t>(steps_seen, static_cast<std::int64_t>(trace.size()));
        for (std::size_t k = 0; k < trace.size(); ++k)
          for (std::size_t l = 0; l < trace[k].size(); ++l) series.mean_abs[k][l] += trace[k][l] / o.seeds;
      }
      if (steps_seen < rows) {
        r.notes.push_back(name + " width " + std::to_string(w) + ": the loss became non-finite after " +
                          std::to_string(steps_seen - 1) + " updates; its rows stop there");
        series.mean_abs.resize(static_cast<std::size_t>(steps_seen));
      }
      last_by_width.push_back(series.mean_abs.empty() ? std::vector<double>() : series.mean_abs.back());
      r.series.push_back(std::move(series));
    }
    if (r.layers.empty()) {
      r.layers.push_back("input");
      for (std::int64_t l = 0; l < s.depth; ++l) r.layers.push_back("block" + std::to_string(l));
      r.layers.push_back("logits");
    }
    std::vector<double> slopes;
    for (std::size_t l = 0; l < r.layers.size(); ++l) {
      std::vector<double> ws, vs;
      for (std::size_t i = 0; i < widths.size(); ++i)
        if (l < last_by_width[i].size() && last_by_width[i][l] > 0 && std::isfinite(last_by_width[i][l]))
          ws.push_back(widths[i]), vs.push_back(last_by_width[i][l]);
      slopes.push_back(ws.size() >= 2 ? slope_in_log_width(ws, vs) : std::numeric_limits<double>::quiet_NaN());
    }
    r.slopes.push_back(slopes);
  }
  return r;
}

std::string format_coord_check(const CoordCheckResult& r) {
  std::string out;
  char buf[256];
  std::snprintf(buf, sizeof buf, "coordinate check: %lld updates at constant lr %s, batch %lld, mean over %d seeds\n",
                static_cast<long long>(r.options.steps), format_short(r.options.lr).c_str(),
                static_cast<long long>(r.options.batch), r.options.seeds);
  out += buf;
  out += "mean |activation| per layer after the last update, and its slope in log width (muP: ~0; SP: > 0)\n";
  for (std::size_t p = 0; p < r.options.parametrizations.size(); ++p) {
    out += "\n" + r.options.parametrizations[p] + "\n  layer     ";
    for (auto w : r.options.widths) {
      std::snprintf(buf, sizeof buf, "%10s", ("w=" + std::to_string(w)).c_str());
      out += buf;
    }
    out += "     slope\n";
    for (std::size_t l = 0; l < r.layers.size(); ++l) {
      std::snprintf(buf, sizeof buf, "  %-9s ", r.layers[l].c_str());
      out += buf;
      for (const auto& s : r.series) {
        if (s.parametrization != r.options.parametrizations[p]) continue;
        const double v = s.mean_abs.empty() ? std::numeric_limits<double>::quiet_NaN() : s.mean_abs.back()[l];
        std::snprintf(buf, sizeof buf, "%10.4g", v);
        out += buf;
      }
      std::snprintf(buf, sizeof buf, "  %+8.3f\n", r.slopes[p][l]);
      out += buf;
    }
  }
  for (const auto& n : r.notes) out += "note: " + n + "\n";
  return out;
}

std::string coord_check_json(const CoordCheckResult& r) {
  JsonWriter j;
  j.begin_object();
  j.key("kind").value("coordcheck").key("options").value(r.options.text());
  j.key("layers").begin_array();
  for (const auto& l : r.layers) j.value(l);
  j.end_array();
  j.key("slopes").begin_object();
  for (std::size_t p = 0; p < r.slopes.size(); ++p) {
    j.key(r.options.parametrizations[p]).begin_array();
    for (double s : r.slopes[p]) j.value(s);
    j.end_array();
  }
  j.end_object();
  j.key("series").begin_array();
  for (const auto& s : r.series) {
    j.begin_object()
        .key("parametrization")
        .value(s.parametrization)
        .key("width")
        .value(static_cast<long long>(s.width));
    j.key("mean_abs").begin_array();
    for (const auto& row : s.mean_abs) {
      j.begin_array();
      for (double v : row) j.value(v);
      j.end_array();
    }
    j.end_array().end_object();
  }
  j.end_array();
  j.key("notes").begin_array();
  for (const auto& n : r.notes) j.value(n);
  j.end_array();
  j.end_object();
  return j.str();
}

FitRecord to_fit_record(const CoordCheckResult& r, const std::string& name) {
  FitRecord f;
  f.name = name;
  f.kind = ResultKind::CoordCheck;
  f.options = r.options.text();
  f.json = coord_check_json(r);
  for (std::size_t p = 0; p < r.slopes.size(); ++p)
    for (std::size_t l = 0; l < r.layers.size(); ++l) {
      const double s = r.slopes[p][l];
      f.coefficients.push_back(
          FitCoefficient{"coordcheck." + r.options.parametrizations[p], r.layers[l] + ".slope", s, s, s, s, s});
    }
  return f;
}

}  // namespace hpsweep
