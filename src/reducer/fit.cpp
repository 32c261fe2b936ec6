#include "hpsweep/reducer/fit.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <map>
#include <set>

#include "hpsweep/spec/job.hpp"
#include "hpsweep/store/stored_job.hpp"
#include "hpsweep/util/error.hpp"
#include "hpsweep/util/text.hpp"

namespace hpsweep {

double steplaw_lr(double N, double D) { return 1.79 * std::pow(N, -0.713) * std::pow(D, 0.307); }
double steplaw_batch_tokens(double D) { return 0.58 * std::pow(D, 0.571); }
double deepseek_lr(double C) { return 0.3118 * std::pow(C, -0.1250); }
double deepseek_batch_tokens(double C) { return 0.2920 * std::pow(C, 0.3271); }

std::string FitOptions::text() const {
  const char* kind = selection.kind == SelectKind::Within   ? "within"
                     : selection.kind == SelectKind::Argmin ? "argmin"
                     : selection.kind == SelectKind::Bowl   ? "bowl"
                                                            : "asym";
  return std::string("select=") + kind + ":" + format_double(selection.eps) +
         ";resamples=" + std::to_string(bootstrap.resamples) + ";seed=" + std::to_string(bootstrap.seed) +
         ";resample=" + (bootstrap.by_cell ? "cells" : "points") + ";batch_n_term=" + (batch_n_term ? "1" : "0") +
         ";flops_per_token=" + format_double(flops_per_token) + ";holdout=" + (holdout_largest ? "largest" : "none") +
         ";target_params=" + format_double(target_params) + ";target_tokens=" + format_double(target_tokens) +
         ";seq_len=" + std::to_string(seq_len) + (variant.empty() ? "" : ";variant=" + variant) +
         (transfer ? ";transfer=1" : "") + (target_width > 0 ? ";target_width=" + format_double(target_width) : "") +
         (loss_law ? "" : ";loss_law=0");
}

FitOptions FitOptions::parse(const std::string& text) {
  FitOptions o;
  for (const auto& item : split(text, ';')) {
    const auto eq = item.find('=');
    if (eq == std::string::npos) continue;
    const std::string k = item.substr(0, eq), v = item.substr(eq + 1);
    if (k == "select")
      o.selection = parse_selection(v);
    else if (k == "resamples")
      o.bootstrap.resamples = std::stoi(v);
    else if (k == "seed")
      o.bootstrap.seed = std::stoull(v);
    else if (k == "resample")
      o.bootstrap.by_cell = v == "cells";
    else if (k == "batch_n_term")
      o.batch_n_term = v == "1";
    else if (k == "flops_per_token")
      o.flops_per_token = std::stod(v);
    else if (k == "holdout")
      o.holdout_largest = v == "largest";
    else if (k == "target_params")
      o.target_params = std::stod(v);
    else if (k == "target_tokens")
      o.target_tokens = std::stod(v);
    else if (k == "seq_len")
      o.seq_len = std::stoll(v);
    else if (k == "variant")
      o.variant = v;
    else if (k == "transfer")
      o.transfer = v == "1";
    else if (k == "target_width")
      o.target_width = std::stod(v);
    else if (k == "loss_law")
      o.loss_law = v != "0";
    else
      throw InputError("unknown fit option '" + k + "' in stored options '" + text + "'");
  }
  return o;
}

namespace {

struct LawSet {
  std::optional<PowerLaw> lr, batch, lr_c, batch_c, tau;
  std::string tau_note;
};

std::vector<LawPoint> law_points(const std::vector<CellOptimum>& optima) {
  std::vector<LawPoint> pts;
  for (std::size_t c = 0; c < optima.size(); ++c)
    for (const auto& p : optima[c].selected)
      pts.push_back(LawPoint{optima[c].params, optima[c].tokens, p.lr, p.batch_tokens, p.wd, p.loss, c,
                             optima[c].lr_sd_log, optima[c].batch_sd_log});
  return pts;
}

// One law over the cells' optima: weighted least squares with t intervals for asym, the
// bootstrap otherwise.
auto law_fitter(const FitOptions& o) {
  return
      [&o](const std::string& name, const std::string& formula, std::vector<std::string> names,
           const std::vector<LawPoint>& points, const std::function<double(const LawPoint&)>& y,
           const std::function<double(const LawPoint&)>& se, std::function<Eigen::VectorXd(double, double)> features) {
        return o.selection.kind == SelectKind::Asym
                   ? fit_weighted_law(name, formula, std::move(names), points, y, se, std::move(features))
                   : fit_power_law(name, formula, std::move(names), points, y, std::move(features), o.bootstrap);
      };
}
double lr_of(const LawPoint& p) { return p.lr; }
double b_of(const LawPoint& p) { return p.B; }
double lr_se(const LawPoint& p) { return p.lr_se_log; }
double b_se(const LawPoint& p) { return p.batch_se_log; }

}  // namespace

LrBatchLaws fit_lr_batch_laws(const std::vector<CellOptimum>& optima, const FitOptions& o,
                              std::vector<std::string>* warnings) {
  LrBatchLaws s;
  const auto pts = law_points(optima);
  if (pts.empty()) throw Error("no per-cell optimum to fit the laws on");
  std::set<double> ns, ds;
  for (const auto& p : pts) ns.insert(p.N), ds.insert(p.D);
  // A term whose regressor barely varies is not fitted: its exponent would be noise.
  const double n_span = *ns.rbegin() / *ns.begin(), d_span = *ds.rbegin() / *ds.begin();
  const bool use_n = n_span >= kMinLawSpan, use_d = d_span >= kMinLawSpan;
  auto span_text = [](const std::set<double>& v) {
    return format_short(*v.begin()) + " to " + format_short(*v.rbegin()) + ", a factor " +
           format_short(*v.rbegin() / *v.begin(), 4);
  };
  if (warnings && !use_n)
    warnings->push_back(ns.size() < 2 ? "only one model size: the lr law has no N term"
                                      : "N barely varies over the cells (" + span_text(ns) +
                                            "): its exponent cannot be determined, the lr law has no N term");
  if (warnings && !use_d)
    warnings->push_back(ds.size() < 2 ? "only one token budget: the laws have no D term"
                                      : "D barely varies over the cells (" + span_text(ds) +
                                            "): its exponent cannot be determined, the laws have no D term");
  if (warnings && use_n && use_d) {
    // D = k N for every cell (or nearly): the N and D exponents trade off against each other.
    std::vector<double> ln_n, ln_d;
    for (const auto& p : pts) ln_n.push_back(std::log(p.N)), ln_d.push_back(std::log(p.D));
    const auto m = static_cast<double>(pts.size());
    double mn = 0, md = 0;
    for (std::size_t i = 0; i < pts.size(); ++i) mn += ln_n[i] / m, md += ln_d[i] / m;
    double snn = 0, sdd = 0, snd = 0;
    for (std::size_t i = 0; i < pts.size(); ++i)
      snn += (ln_n[i] - mn) * (ln_n[i] - mn), sdd += (ln_d[i] - md) * (ln_d[i] - md),
          snd += (ln_n[i] - mn) * (ln_d[i] - md);
    const double corr2 = snd * snd / (snn * sdd);
    if (corr2 > 0.99)
      warnings->push_back("ln N and ln D are collinear over the cells (correlation " +
                          format_short(std::sqrt(corr2), 4) +
                          "; e.g. one tokens-per-parameter ratio): the N and D exponents are inseparable, "
                          "only their combination is determined");
  }
  const auto law = law_fitter(o);

  auto lr_features = [use_n, use_d](double N, double D) {
    Eigen::VectorXd f(1 + use_n + use_d);
    int k = 0;
    f(k++) = 1;
    if (use_n) f(k++) = std::log(N);
    if (use_d) f(k++) = std::log(D);
    return f;
  };
  std::vector<std::string> lr_names = {"lr_coef"};
  std::string lr_formula = "lr = lr_coef";
  if (use_n) lr_names.push_back("lr_n_exp"), lr_formula += " * N^lr_n_exp";
  if (use_d) lr_names.push_back("lr_d_exp"), lr_formula += " * D^lr_d_exp";
  s.lr = law("lr", lr_formula, lr_names, pts, lr_of, lr_se, lr_features);

  const bool b_n = o.batch_n_term && use_n;
  auto b_features = [use_d, b_n](double N, double D) {
    Eigen::VectorXd f(1 + use_d + b_n);
    int k = 0;
    f(k++) = 1;
    if (use_d) f(k++) = std::log(D);
    if (b_n) f(k++) = std::log(N);
    return f;
  };
  std::vector<std::string> b_names = {"batch_coef"};
  std::string b_formula = "B (tokens) = batch_coef";
  if (use_d) b_names.push_back("batch_d_exp"), b_formula += " * D^batch_d_exp";
  if (b_n) b_names.push_back("batch_n_exp"), b_formula += " * N^batch_n_exp";
  s.batch = law("batch", b_formula, b_names, pts, b_of, b_se, b_features);
  return s;
}

namespace {

LawSet fit_laws(const std::vector<CellOptimum>& optima, const FitOptions& o, std::vector<std::string>* warnings) {
  LawSet s;
  LrBatchLaws hp = fit_lr_batch_laws(optima, o, warnings);
  s.lr = std::move(hp.lr);
  s.batch = std::move(hp.batch);
  const auto pts = law_points(optima);
  std::set<double> wds;
  for (const auto& p : pts) wds.insert(p.wd);
  const auto law = law_fitter(o);

  const double m = o.flops_per_token;
  auto c_features = [m](double N, double D) {
    Eigen::VectorXd f(2);
    f << 1, std::log(m > 0 ? m * D : 6 * N * D);
    return f;
  };
  std::set<double> cs;
  for (const auto& p : pts) cs.insert(m > 0 ? m * p.D : 6 * p.N * p.D);
  if (cs.size() >= 2 && *cs.rbegin() / *cs.begin() >= kMinLawSpan) {
    const std::string c = m > 0 ? "C = " + format_short(m) + " * D" : "C = 6ND";
    s.lr_c = law("lr_compute", "lr = lr_c_coef * C^lr_c_exp, " + c, {"lr_c_coef", "lr_c_exp"}, pts, lr_of, lr_se,
                 c_features);
    s.batch_c = law("batch_compute", "B (tokens) = batch_c_coef * C^batch_c_exp, " + c, {"batch_c_coef", "batch_c_exp"},
                    pts, b_of, b_se, c_features);
  }

  std::vector<LawPoint> tau_pts;
  std::set<double> ratios;
  for (const auto& p : pts)
    if (p.wd > 0) tau_pts.push_back(p), ratios.insert(p.D / p.N);
  if (wds.size() < 2) {
    s.tau_note = "weight decay was not swept: no timescale law";
  } else if (ratios.size() < 2 || tau_pts.size() < 3) {
    s.tau_note = "needs optima at two or more tokens-per-parameter ratios with weight decay > 0";
  } else {
    s.tau = law(
        "tau", "tau = B/(lr*wd*D) = tau_coef * (D/N)^tau_exp", {"tau_coef", "tau_exp"}, tau_pts,
        [](const LawPoint& p) { return p.B / (p.lr * p.wd * p.D); },
        [](const LawPoint& p) { return std::hypot(p.lr_se_log, p.batch_se_log); },
        [](double N, double D) {
          Eigen::VectorXd f(2);
          f << 1, std::log(D / N);
          return f;
        });
  }
  return s;
}

double ci_width(const Interval& i) { return i.hi - i.lo; }

}  // namespace

std::vector<std::string> sweep_variants(const SweepLog& log) {
  std::set<std::string> names;
  for (const auto& r : log.results) names.insert(r.trial.point.variant);
  return {names.begin(), names.end()};
}

SweepLog select_variant(const SweepLog& log, const std::string& variant) {
  const auto names = sweep_variants(log);
  if (std::find(names.begin(), names.end(), variant) == names.end()) {
    std::string list;
    for (const auto& n : names) list += (list.empty() ? "" : ", ") + (n.empty() ? std::string("(none)") : n);
    throw InputError("the sweep has no trials of variant '" + variant + "'; its variants: " + list);
  }
  SweepLog out;
  out.schema_version = log.schema_version;
  out.job_path = log.job_path;
  out.job_text = log.job_text;
  out.launches = log.launches;
  for (const auto& r : log.results)
    if (r.trial.point.variant == variant) out.add_result(r);
  return out;
}

FitReport fit_sweep(const SweepLog& all, const FitOptions& o) {
  const auto variants = sweep_variants(all);
  if (o.variant.empty() && variants.size() > 1) {
    std::string list;
    for (const auto& n : variants) list += (list.empty() ? "" : ", ") + (n.empty() ? std::string("(none)") : n);
    throw InputError("the sweep runs " + std::to_string(variants.size()) + " variants (" + list +
                     "): scaling laws are fitted one variant at a time, choose one with --variant NAME "
                     "(or compare them with --transfer)");
  }
  const SweepLog selected = o.variant.empty() ? SweepLog{} : select_variant(all, o.variant);
  const SweepLog& log = o.variant.empty() ? all : selected;
  FitReport r;
  r.options = o;
  r.target_params = o.target_params;
  r.target_tokens = o.target_tokens;
  if (r.target_params == 0 || r.target_tokens == 0) {
    try {
      if (const auto job = stored_job(log)) {
        if (r.target_params == 0) r.target_params = job->target_params;
        if (r.target_tokens == 0) r.target_tokens = job->target_tokens;
      }
    } catch (const InputError&) {
    }
  }
  const std::vector<Cell> cells = collect_cells(log);
  std::map<std::int64_t, std::size_t> seq_lens;
  for (const auto& rec : log.results) ++seq_lens[rec.trial.point.seq_len];
  r.seq_len = o.seq_len > 0
                  ? o.seq_len
                  : (seq_lens.empty() ? 2048 : std::max_element(seq_lens.begin(), seq_lens.end(), [](auto& a, auto& b) {
                                                 return a.second < b.second;
                                               })->first);
  return fit_cells(cells, o, r.target_params, r.target_tokens, r.seq_len);
}

FitReport fit_cells(const std::vector<Cell>& cells, const FitOptions& o, double target_params, double target_tokens,
                    std::int64_t seq_len) {
  FitReport r;
  r.options = o;
  r.target_params = target_params;
  r.target_tokens = target_tokens;
  r.seq_len = seq_len;
  for (const auto& c : cells) r.trials_used += c.points.size();
  r.optima = select_optima(cells, o.selection, &r.skipped_cells);
  if (r.optima.size() < 2)
    throw Error("cannot fit: " + std::to_string(r.optima.size()) + " usable (N, D) cells (need at least 2)");

  LawSet laws = fit_laws(r.optima, o, &r.warnings);
  r.lr_law = std::move(laws.lr);
  r.batch_law = std::move(laws.batch);
  r.lr_compute = std::move(laws.lr_c);
  r.batch_compute = std::move(laws.batch_c);
  r.tau_law = std::move(laws.tau);
  r.tau_note = laws.tau_note;

  if (o.loss_law) {
    std::vector<LawPoint> best;
    if (o.selection.kind == SelectKind::Asym) {
      // The bowl's vertex value: the minimum noisy loss is biased low by about one noise sd.
      for (std::size_t i = 0; i < r.optima.size(); ++i)
        best.push_back(LawPoint{r.optima[i].params, r.optima[i].tokens, 0, 0, 0, r.optima[i].loss, i});
    } else {
      for (std::size_t i = 0; i < cells.size(); ++i)
        if (cells[i].points.size() >= 3)
          best.push_back(LawPoint{cells[i].params, cells[i].tokens, 0, 0, 0, cells[i].best().loss, i});
    }
    r.loss_law = fit_loss_law(best, o.bootstrap);
  } else {
    r.loss_law.note = "not fitted (loss_law=0)";
  }

  // Prediction at the target.
  if (r.target_params > 0 && r.target_tokens > 0) {
    Prediction p;
    const double N = r.target_params, D = r.target_tokens;
    p.lr = r.lr_law->predict_interval(N, D);
    p.batch_tokens = r.batch_law->predict_interval(N, D);
    p.lr_prediction = r.lr_law->prediction_interval(N, D);
    p.batch_prediction = r.batch_law->prediction_interval(N, D);
    p.batch_sequences = p.batch_tokens.estimate / static_cast<double>(r.seq_len);
    if (r.tau_law && r.tau_law->weighted) {
      // ln lambda = ln B - ln lr - ln D - ln tau: the three laws' errors added as if independent.
      const double est = std::log(r.batch_law->predict(N, D)) - std::log(r.lr_law->predict(N, D)) - std::log(D) -
                         std::log(r.tau_law->predict(N, D));
      const double se = std::hypot(std::hypot(r.batch_law->log_se(N, D, false), r.lr_law->log_se(N, D, false)),
                                   r.tau_law->log_se(N, D, false));
      p.wd = t_interval(est, se, std::min({r.lr_law->dof, r.batch_law->dof, r.tau_law->dof}), true);
      p.has_wd = true;
    } else if (r.tau_law) {
      // lambda = B / (lr * D * tau(D/N)), paired resample by resample.
      auto lambda = [&](const Eigen::VectorXd& bl, const Eigen::VectorXd& bb, const Eigen::VectorXd& bt) {
        return r.batch_law->features(N, D).dot(bb) - r.lr_law->features(N, D).dot(bl) - std::log(D) -
               r.tau_law->features(N, D).dot(bt);
      };
      std::vector<double> s;
      for (std::size_t i = 0; i < r.lr_law->boot.size(); ++i)
        s.push_back(lambda(r.lr_law->boot[i], r.batch_law->boot[i], r.tau_law->boot[i]));
      p.wd = summarize_log(lambda(r.lr_law->beta, r.batch_law->beta, r.tau_law->beta), std::move(s));
      p.has_wd = true;
    }
    if (r.loss_law.ok) {
      p.loss = r.loss_law.predict_interval(N, D);
      p.has_loss = true;
    }
    r.prediction = p;
    r.published.push_back(
        {"Step Law (1.79 N^-0.713 D^0.307; 0.58 D^0.571)", steplaw_lr(N, D), steplaw_batch_tokens(D)});
    r.published.push_back(
        {"DeepSeek (0.3118 C^-0.125; 0.2920 C^0.3271)", deepseek_lr(6 * N * D), deepseek_batch_tokens(6 * N * D)});
    double max_c = 0;
    for (const auto& c : r.optima) max_c = std::max(max_c, 6 * c.params * c.tokens);
    const double ratio = 6 * N * D / max_c;
    if (ratio > 10)
      r.warnings.push_back("the target is " + format_short(ratio) +
                           "x the largest swept compute: a long extrapolation; trust the intervals, not the point");
  }

  // Warnings a careful reader would raise.
  std::size_t small = 0, edge = 0;
  for (const auto& c : r.optima) {
    if (6 * c.params * c.tokens < 2e15) ++small;
    if (!c.edges.empty()) ++edge;
  }
  if (small)
    r.warnings.push_back(std::to_string(small) +
                         " cells are below 2e15 FLOPs, where small models are known to break the power laws");
  if (edge)
    r.warnings.push_back(
        std::to_string(edge) +
        " cells have their optimum on the edge of the swept grid (not a measured optimum; see the cell table)");
  if (r.optima.size() < 5)
    r.warnings.push_back("the laws rest on " + std::to_string(r.optima.size()) +
                         " cells: intervals from so few cells are fragile");
  std::size_t flagged = 0;
  for (const auto& c : r.optima)
    if (!c.flags.empty()) ++flagged;
  if (flagged)
    r.warnings.push_back(std::to_string(flagged) +
                         " cells have an asymmetric or poorly identified optimum (see the flags in the cell table)");
  bool several_per_cell = false;
  for (const auto& c : r.optima) several_per_cell = several_per_cell || c.selected.size() > 1;
  // With one point per cell (argmin, bowl), resampling points is resampling cells.
  if (several_per_cell && !o.bootstrap.by_cell && o.bootstrap.resamples > 0 && r.lr_law->coefs.size() > 1) {
    // Points within a cell are not independent; compare with a resampling of whole cells.
    FitOptions oc = o;
    oc.bootstrap.by_cell = true;
    oc.bootstrap.resamples = std::min(o.bootstrap.resamples, 400);
    const LawSet by_cell = fit_laws(r.optima, oc, nullptr);
    for (std::size_t k = 1; k < r.lr_law->coefs.size(); ++k) {
      const double wp = ci_width(r.lr_law->coefs[k]), wc = ci_width(by_cell.lr->coefs[k]);
      if (wc > 0 && wp < 0.5 * wc)
        r.warnings.push_back("the 95% interval of " + r.lr_law->coef_names[k] + " (width " + format_short(wp) +
                             ") is less than half of the interval from resampling whole cells (" + format_short(wc) +
                             "): points of one cell are not independent; consider --resample cells");
    }
  }

  if (o.holdout_largest) {
    double max_c = 0;
    for (const auto& c : r.optima) max_c = std::max(max_c, c.params * c.tokens);
    std::vector<CellOptimum> train;
    std::vector<const Cell*> held;
    for (const auto& c : r.optima)
      if (c.params * c.tokens < max_c * (1 - 1e-9)) train.push_back(c);
    for (const auto& c : cells)
      if (c.params * c.tokens >= max_c * (1 - 1e-9)) held.push_back(&c);
    if (train.size() < 2) {
      r.warnings.push_back("--holdout largest: fewer than 2 cells left to fit on");
    } else {
      FitOptions oh = o;
      oh.bootstrap.resamples = 0;
      const LawSet h = fit_laws(train, oh, nullptr);
      for (const Cell* c : held) {
        HoldoutCell hc;
        hc.params = c->params;
        hc.tokens = c->tokens;
        hc.predicted_lr = h.lr->predict(c->params, c->tokens);
        hc.predicted_batch = h.batch->predict(c->params, c->tokens);
        hc.best_loss = c->best().loss;
        hc.loss_at_prediction = interpolate_loss(*c, hc.predicted_lr, hc.predicted_batch, hc.method, hc.in_plateau,
                                                 o.selection.eps, o.selection.kind == SelectKind::Asym);
        hc.gap = hc.loss_at_prediction / hc.best_loss - 1;
        r.holdout.push_back(hc);
      }
    }
  }
  return r;
}

}  // namespace hpsweep
