#include "hpsweep/reports/fit_text.hpp"

#include <cmath>
#include <cstdio>
#include <map>

#include "hpsweep/util/json.hpp"
#include "hpsweep/util/text.hpp"

namespace hpsweep {

namespace {

std::string interval_text(const Interval& i, int digits = 4) {
  if (!std::isfinite(i.lo))
    return format_short(i.estimate, digits) + (i.analytic ? "  (no interval)" : "  (no bootstrap interval)");
  const std::string range = "  [" + format_short(i.lo, digits) + ", " + format_short(i.hi, digits) + "]";
  if (i.analytic) return format_short(i.estimate, digits) + range;
  // A quantity summarised in log space: its mean is the geometric mean.
  return format_short(i.estimate, digits) + range + (i.geometric ? "  geometric mean " : "  mean ") +
         format_short(i.mean, digits) + "  median " + format_short(i.median, digits);
}

// Published values of the same coefficients, printed beside the user's.
std::string published_coefficient(const std::string& name) {
  static const std::map<std::string, std::string> known = {
      {"lr_coef", "Step Law 1.79"},    {"lr_n_exp", "Step Law -0.713"},     {"lr_d_exp", "Step Law 0.307"},
      {"batch_coef", "Step Law 0.58"}, {"batch_d_exp", "Step Law 0.571"},   {"lr_c_coef", "DeepSeek 0.3118"},
      {"lr_c_exp", "DeepSeek -0.125"}, {"batch_c_coef", "DeepSeek 0.2920"}, {"batch_c_exp", "DeepSeek 0.3271"},
      {"tau_exp", "Power Lines -0.53"}};
  auto it = known.find(name);
  return it == known.end() ? "" : "   (" + it->second + ")";
}

void law_text(std::string& out, const PowerLaw& law) {
  char buf[256];
  if (law.weighted)
    std::snprintf(buf, sizeof buf,
                  "  %s   (%zu cells, %.0f dof, weighted R^2 %.3f, scatter of cells about the law %s)\n",
                  law.formula.c_str(), law.cells, law.dof, law.r2,
                  law.scatter_var > 0 ? ("sd " + format_short(std::sqrt(law.scatter_var), 3) + " in ln").c_str()
                                      : "none beyond their errors");
  else
    std::snprintf(buf, sizeof buf, "  %s   (%zu points, %zu cells, R^2 %.3f)\n", law.formula.c_str(), law.points,
                  law.cells, law.r2);
  out += buf;
  for (std::size_t k = 0; k < law.coefs.size(); ++k) {
    std::snprintf(buf, sizeof buf, "    %-13s %s%s\n", law.coef_names[k].c_str(), interval_text(law.coefs[k]).c_str(),
                  published_coefficient(law.coef_names[k]).c_str());
    out += buf;
  }
}

void law_json(JsonWriter& j, const PowerLaw& law) {
  j.begin_object();
  j.key("formula").value(law.formula).key("points").value(law.points).key("cells").value(law.cells);
  j.key("r2").value(law.r2);
  j.key("interval").value(law.weighted ? "t" : "bootstrap");
  if (law.weighted) j.key("dof").value(law.dof).key("scatter_var").value(law.scatter_var);
  j.key("coefficients").begin_object();
  for (std::size_t k = 0; k < law.coefs.size(); ++k) {
    const Interval& i = law.coefs[k];
    j.key(law.coef_names[k]).begin_object();
    j.key("estimate").value(i.estimate).key("mean").value(i.mean).key("median").value(i.median);
    j.key("mean_is_geometric").value(i.geometric);
    j.key("lo").value(i.lo).key("hi").value(i.hi).key("ols_se").value(law.ols_se[k]);
    j.end_object();
  }
  j.end_object();
  j.end_object();
}

void interval_json(JsonWriter& j, const char* name, const Interval& i) {
  j.key(name).begin_object();
  j.key("estimate").value(i.estimate).key("mean").value(i.mean).key("median").value(i.median);
  j.key("mean_is_geometric").value(i.geometric);
  j.key("lo").value(i.lo).key("hi").value(i.hi);
  j.end_object();
}

}  // namespace

std::string format_fit(const FitReport& r) {
  std::string out;
  char buf[512];
  const bool weighted = r.lr_law && r.lr_law->weighted;
  if (weighted)
    std::snprintf(buf, sizeof buf,
                  "fit: %zu trials in %zu cells, selection %s: laws weighted by the per-cell errors, t intervals; "
                  "%d bootstrap resamples for the loss law\n",
                  r.trials_used, r.optima.size() + r.skipped_cells.size(), r.options.selection.text().c_str(),
                  r.options.bootstrap.resamples);
  else
    std::snprintf(buf, sizeof buf, "fit: %zu trials in %zu cells, selection %s, %d bootstrap resamples of %s\n",
                  r.trials_used, r.optima.size() + r.skipped_cells.size(), r.options.selection.text().c_str(),
                  r.options.bootstrap.resamples, r.options.bootstrap.by_cell ? "cells" : "points");
  out += buf;
  out +=
      "\nper-cell optima (N, D: lr, B tokens, wd, loss; runs selected, or a fitted bowl's runs; plateau lr and B "
      "ranges)\n";
  for (const auto& c : r.optima) {
    std::snprintf(buf, sizeof buf, "  N=%-8s D=%-8s lr=%-9s B=%-9s wd=%-6s L=%.5f  %3zu runs  lr %s-%s  B %s-%s%s%s\n",
                  format_short(c.params).c_str(), format_short(c.tokens).c_str(), format_short(c.lr).c_str(),
                  format_short(c.batch_tokens).c_str(), format_short(c.wd).c_str(), c.loss,
                  c.fitted_points > 0 ? c.fitted_points : c.selected.size(), format_short(c.plateau_lr_lo).c_str(),
                  format_short(c.plateau_lr_hi).c_str(), format_short(c.plateau_b_lo).c_str(),
                  format_short(c.plateau_b_hi).c_str(), c.edges.empty() ? "" : "  EDGE",
                  c.note.empty() ? "" : ("  (" + c.note + ")").c_str());
    out += buf;
    if (std::isfinite(c.lr_sd_log))
      out += "      standard error of ln lr* " + format_short(c.lr_sd_log, 3) + ", of ln B* " +
             format_short(c.batch_sd_log, 3) +
             (std::isfinite(c.lr_asymmetry) ? "; lr curvature above/below " + format_short(c.lr_asymmetry, 3) : "") +
             "\n";
    for (const auto& f : c.flags) out += "      flag: " + f + "\n";
    for (const auto& e : c.edges) out += "      edge: " + e + "\n";
  }
  for (const auto& s : r.skipped_cells) out += "  skipped " + s + "\n";

  out += weighted ? "\nlaws (estimate [95% confidence interval, t quantiles]; loss law: [2.5%, 97.5%] of bootstrap "
                    "resamples)\n"
                  : "\nlaws (estimate [2.5%, 97.5%] over bootstrap resamples)\n";
  law_text(out, *r.lr_law);
  law_text(out, *r.batch_law);
  if (r.lr_compute) law_text(out, *r.lr_compute);
  if (r.batch_compute) law_text(out, *r.batch_compute);
  if (r.tau_law)
    law_text(out, *r.tau_law);
  else
    out += "  weight decay: " + r.tau_note + "\n";
  if (r.loss_law.ok) {
    std::snprintf(buf, sizeof buf, "  L = E + A/N^alpha + B/D^beta   (Huber delta %g on log L, %zu cells)\n",
                  r.loss_law.huber_delta, r.loss_law.cells);
    out += buf;
    for (auto [n, i] : std::vector<std::pair<const char*, const Interval*>>{{"E", &r.loss_law.E},
                                                                            {"A", &r.loss_law.A},
                                                                            {"alpha", &r.loss_law.alpha},
                                                                            {"B", &r.loss_law.B},
                                                                            {"beta", &r.loss_law.beta}}) {
      std::snprintf(buf, sizeof buf, "    %-13s %s\n", n, interval_text(*i).c_str());
      out += buf;
    }
  } else {
    out += "  loss law: " + r.loss_law.note + "\n";
  }

  if (r.prediction) {
    const Prediction& p = *r.prediction;
    std::snprintf(buf, sizeof buf, "\nprediction for N=%s, D=%s (seq_len %lld)\n",
                  format_short(r.target_params).c_str(), format_short(r.target_tokens).c_str(),
                  static_cast<long long>(r.seq_len));
    out += buf;
    auto range = [](const Interval& i, double scale = 1) {
      return "[" + format_short(i.lo / scale, 4) + ", " + format_short(i.hi / scale, 4) + "]";
    };
    const double seq = static_cast<double>(r.seq_len);
    out +=
        "  95% prediction interval: where the target's optimum lies (the law's uncertainty plus the scatter\n"
        "  of cell optima about it); 95% confidence interval: where the law's value lies\n";
    out += "  lr            " + format_short(p.lr.estimate, 4) + "  prediction " + range(p.lr_prediction) +
           "  confidence of the law " + range(p.lr) + "\n";
    out += "  batch tokens  " + format_short(p.batch_tokens.estimate, 4) + "  prediction " + range(p.batch_prediction) +
           "  confidence of the law " + range(p.batch_tokens) + "\n";
    std::snprintf(buf, sizeof buf, "  batch seqs    %.0f  prediction %s  confidence of the law %s\n", p.batch_sequences,
                  range(p.batch_prediction, seq).c_str(), range(p.batch_tokens, seq).c_str());
    out += buf;
    if (p.has_wd) out += "  weight decay  " + interval_text(p.wd) + "\n";
    if (p.has_loss) out += "  loss          " + interval_text(p.loss) + "\n";
    out += "  published laws at this target:\n";
    for (const auto& pub : r.published) {
      std::snprintf(buf, sizeof buf, "    %-48s lr %s  B %s tokens\n", pub.name.c_str(),
                    format_short(pub.lr, 4).c_str(), format_short(pub.batch_tokens, 4).c_str());
      out += buf;
    }
  } else {
    out += "\nno target: give --target-params and --target-tokens (or [target] in the job) for a prediction\n";
  }
  if (!r.holdout.empty()) {
    out += "\nhold-out (largest compute, fitted on the others): loss gap at the predicted (lr, B)\n";
    for (const auto& h : r.holdout) {
      std::snprintf(buf, sizeof buf,
                    "  N=%-8s D=%-8s predicted lr=%s B=%s  loss %.5f vs best %.5f  gap %+.3f%%  %s plateau  (%s)\n",
                    format_short(h.params).c_str(), format_short(h.tokens).c_str(),
                    format_short(h.predicted_lr).c_str(), format_short(h.predicted_batch).c_str(), h.loss_at_prediction,
                    h.best_loss, 100 * h.gap, h.in_plateau ? "inside the" : "outside the", h.method.c_str());
      out += buf;
    }
  }
  if (!r.warnings.empty()) {
    out += "\nwarnings\n";
    for (const auto& w : r.warnings) out += "  - " + w + "\n";
  }
  return out;
}

FitRecord to_fit_record(const FitReport& r, const std::string& name, std::uint64_t results) {
  FitRecord f;
  f.results = results;
  f.name = name;
  f.options = r.options.text();
  f.created = unix_now();
  f.json = fit_json(r);
  auto add = [&](const std::optional<PowerLaw>& law) {
    if (!law) return;
    for (std::size_t k = 0; k < law->coefs.size(); ++k) {
      const Interval& i = law->coefs[k];
      f.coefficients.push_back(FitCoefficient{law->name, law->coef_names[k], i.estimate, i.mean, i.median, i.lo, i.hi});
    }
  };
  add(r.lr_law);
  add(r.batch_law);
  add(r.lr_compute);
  add(r.batch_compute);
  add(r.tau_law);
  if (r.loss_law.ok)
    for (auto [n, i] : std::vector<std::pair<const char*, const Interval*>>{{"E", &r.loss_law.E},
                                                                            {"A", &r.loss_law.A},
                                                                            {"alpha", &r.loss_law.alpha},
                                                                            {"B", &r.loss_law.B},
                                                                            {"beta", &r.loss_law.beta}})
      f.coefficients.push_back(FitCoefficient{"loss", n, i->estimate, i->mean, i->median, i->lo, i->hi});
  if (r.prediction) {
    const Prediction& p = *r.prediction;
    for (auto [n, i] : std::vector<std::pair<const char*, const Interval*>>{
             {"lr", &p.lr},
             {"batch_tokens", &p.batch_tokens},
             {"lr_prediction_interval", &p.lr_prediction},
             {"batch_tokens_prediction_interval", &p.batch_prediction}})
      f.coefficients.push_back(FitCoefficient{"prediction", n, i->estimate, i->mean, i->median, i->lo, i->hi});
    if (p.has_wd)
      f.coefficients.push_back(
          FitCoefficient{"prediction", "wd", p.wd.estimate, p.wd.mean, p.wd.median, p.wd.lo, p.wd.hi});
  }
  for (const auto& c : r.optima)
    for (const auto& p : c.selected)
      f.points.push_back(FitPoint{c.params, c.tokens, p.lr, p.batch_tokens, p.wd, p.loss});
  return f;
}

std::string fit_json(const FitReport& r) {
  JsonWriter j;
  j.begin_object();
  j.key("options").value(r.options.text());
  j.key("trials_used").value(r.trials_used);
  j.key("cells").begin_array();
  for (const auto& c : r.optima) {
    j.begin_object();
    j.key("params").value(c.params).key("tokens").value(c.tokens).key("lr").value(c.lr);
    j.key("batch_tokens").value(c.batch_tokens).key("wd").value(c.wd).key("loss").value(c.loss);
    j.key("selected").value(c.selected.size()).key("fitted_points").value(c.fitted_points);
    j.key("lr_se_log").value(c.lr_sd_log).key("batch_se_log").value(c.batch_sd_log);
    j.key("lr_asymmetry").value(c.lr_asymmetry);
    j.key("flags").begin_array();
    for (const auto& f : c.flags) j.value(f);
    j.end_array();
    j.key("plateau_lr").begin_array().value(c.plateau_lr_lo).value(c.plateau_lr_hi).end_array();
    j.key("plateau_batch_tokens").begin_array().value(c.plateau_b_lo).value(c.plateau_b_hi).end_array();
    j.key("edges").begin_array();
    for (const auto& e : c.edges) j.value(e);
    j.end_array();
    j.end_object();
  }
  j.end_array();
  j.key("skipped_cells").begin_array();
  for (const auto& s : r.skipped_cells) j.value(s);
  j.end_array();
  j.key("laws").begin_object();
  j.key("lr");
  law_json(j, *r.lr_law);
  j.key("batch");
  law_json(j, *r.batch_law);
  if (r.lr_compute) j.key("lr_compute"), law_json(j, *r.lr_compute);
  if (r.batch_compute) j.key("batch_compute"), law_json(j, *r.batch_compute);
  if (r.tau_law) j.key("tau"), law_json(j, *r.tau_law);
  if (r.loss_law.ok) {
    j.key("loss").begin_object();
    interval_json(j, "E", r.loss_law.E);
    interval_json(j, "A", r.loss_law.A);
    interval_json(j, "alpha", r.loss_law.alpha);
    interval_json(j, "B", r.loss_law.B);
    interval_json(j, "beta", r.loss_law.beta);
    j.end_object();
  }
  j.end_object();
  if (r.prediction) {
    const Prediction& p = *r.prediction;
    j.key("prediction").begin_object();
    j.key("params")
        .value(r.target_params)
        .key("tokens")
        .value(r.target_tokens)
        .key("seq_len")
        .value(static_cast<long long>(r.seq_len));
    interval_json(j, "lr", p.lr);
    interval_json(j, "batch_tokens", p.batch_tokens);
    interval_json(j, "lr_prediction_interval", p.lr_prediction);
    interval_json(j, "batch_tokens_prediction_interval", p.batch_prediction);
    j.key("batch_sequences").value(p.batch_sequences);
    if (p.has_wd) interval_json(j, "wd", p.wd);
    if (p.has_loss) interval_json(j, "loss", p.loss);
    j.key("published").begin_array();
    for (const auto& pub : r.published)
      j.begin_object()
          .key("law")
          .value(pub.name)
          .key("lr")
          .value(pub.lr)
          .key("batch_tokens")
          .value(pub.batch_tokens)
          .end_object();
    j.end_array();
    j.end_object();
  }
  j.key("holdout").begin_array();
  for (const auto& h : r.holdout) {
    j.begin_object();
    j.key("params").value(h.params).key("tokens").value(h.tokens).key("predicted_lr").value(h.predicted_lr);
    j.key("predicted_batch_tokens").value(h.predicted_batch).key("best_loss").value(h.best_loss);
    j.key("loss_at_prediction").value(h.loss_at_prediction).key("gap").value(h.gap);
    j.key("in_plateau").value(h.in_plateau).key("method").value(h.method);
    j.end_object();
  }
  j.end_array();
  j.key("warnings").begin_array();
  for (const auto& w : r.warnings) j.value(w);
  j.end_array();
  j.end_object();
  return j.str() + "\n";
}

}  // namespace hpsweep
