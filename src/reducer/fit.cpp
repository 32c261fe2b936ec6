#include "hpsweep/reducer/fit.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <set>

#include "hpsweep/spec/job.hpp"
#include "hpsweep/util/error.hpp"
#include "hpsweep/util/json.hpp"
#include "hpsweep/util/text.hpp"

namespace hpsweep {

double steplaw_lr(double N, double D) { return 1.79 * std::pow(N, -0.713) * std::pow(D, 0.307); }
double steplaw_batch_tokens(double D) { return 0.58 * std::pow(D, 0.571); }
double deepseek_lr(double C) { return 0.3118 * std::pow(C, -0.1250); }
double deepseek_batch_tokens(double C) { return 0.2920 * std::pow(C, 0.3271); }

std::string FitOptions::text() const {
  const char* kind = selection.kind == SelectKind::Within   ? "within"
                     : selection.kind == SelectKind::Argmin ? "argmin"
                                                            : "bowl";
  return std::string("select=") + kind + ":" + format_double(selection.eps) +
         ";resamples=" + std::to_string(bootstrap.resamples) + ";seed=" + std::to_string(bootstrap.seed) +
         ";resample=" + (bootstrap.by_cell ? "cells" : "points") + ";batch_n_term=" + (batch_n_term ? "1" : "0") +
         ";flops_per_token=" + format_double(flops_per_token) + ";holdout=" + (holdout_largest ? "largest" : "none") +
         ";target_params=" + format_double(target_params) + ";target_tokens=" + format_double(target_tokens) +
         ";seq_len=" + std::to_string(seq_len) + (variant.empty() ? "" : ";variant=" + variant) +
         (transfer ? ";transfer=1" : "") + (target_width > 0 ? ";target_width=" + format_double(target_width) : "");
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
      pts.push_back(LawPoint{optima[c].params, optima[c].tokens, p.lr, p.batch_tokens, p.wd, p.loss, c});
  return pts;
}

LawSet fit_laws(const std::vector<CellOptimum>& optima, const FitOptions& o, std::vector<std::string>* warnings) {
  LawSet s;
  const auto pts = law_points(optima);
  std::set<double> ns, ds, wds;
  for (const auto& p : pts) ns.insert(p.N), ds.insert(p.D), wds.insert(p.wd);
  const bool use_n = ns.size() >= 2, use_d = ds.size() >= 2;
  if (warnings && !use_n) warnings->push_back("only one model size: the lr law has no N term");
  if (warnings && !use_d) warnings->push_back("only one token budget: the laws have no D term");

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
  s.lr = fit_power_law(
      "lr", lr_formula, lr_names, pts, [](const LawPoint& p) { return p.lr; }, lr_features, o.bootstrap);

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
  s.batch = fit_power_law(
      "batch", b_formula, b_names, pts, [](const LawPoint& p) { return p.B; }, b_features, o.bootstrap);

  const double m = o.flops_per_token;
  auto c_features = [m](double N, double D) {
    Eigen::VectorXd f(2);
    f << 1, std::log(m > 0 ? m * D : 6 * N * D);
    return f;
  };
  std::set<double> cs;
  for (const auto& p : pts) cs.insert(m > 0 ? m * p.D : 6 * p.N * p.D);
  if (cs.size() >= 2) {
    const std::string c = m > 0 ? "C = " + format_short(m) + " * D" : "C = 6ND";
    s.lr_c = fit_power_law(
        "lr_compute", "lr = lr_c_coef * C^lr_c_exp, " + c, {"lr_c_coef", "lr_c_exp"}, pts,
        [](const LawPoint& p) { return p.lr; }, c_features, o.bootstrap);
    s.batch_c = fit_power_law(
        "batch_compute", "B (tokens) = batch_c_coef * C^batch_c_exp, " + c, {"batch_c_coef", "batch_c_exp"}, pts,
        [](const LawPoint& p) { return p.B; }, c_features, o.bootstrap);
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
    s.tau = fit_power_law(
        "tau", "tau = B/(lr*wd*D) = tau_coef * (D/N)^tau_exp", {"tau_coef", "tau_exp"}, tau_pts,
        [](const LawPoint& p) { return p.B / (p.lr * p.wd * p.D); },
        [](double N, double D) {
          Eigen::VectorXd f(2);
          f << 1, std::log(D / N);
          return f;
        },
        o.bootstrap);
  }
  return s;
}

std::vector<CellOptimum> optimise_cells(const std::vector<Cell>& cells, const Selection& sel,
                                        std::vector<std::string>* skipped) {
  std::vector<CellOptimum> out;
  for (const auto& c : cells) {
    CellOptimum o;
    std::string why;
    if (select_optimum(c, sel, o, why))
      out.push_back(std::move(o));
    else if (skipped)
      skipped->push_back("N=" + format_short(c.params) + " D=" + format_short(c.tokens) + ": " + why);
  }
  return out;
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
  if ((r.target_params == 0 || r.target_tokens == 0) && !log.job_text.empty()) {
    try {
      const JobSpec job = parse_job(log.job_text, "<job stored in the sweep file>");
      if (r.target_params == 0) r.target_params = job.target_params;
      if (r.target_tokens == 0) r.target_tokens = job.target_tokens;
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
  for (const auto& c : cells) r.trials_used += c.points.size();
  r.optima = optimise_cells(cells, o.selection, &r.skipped_cells);
  if (r.optima.size() < 2)
    throw Error("cannot fit: " + std::to_string(r.optima.size()) + " usable (N, D) cells (need at least 2)");

  LawSet laws = fit_laws(r.optima, o, &r.warnings);
  r.lr_law = std::move(laws.lr);
  r.batch_law = std::move(laws.batch);
  r.lr_compute = std::move(laws.lr_c);
  r.batch_compute = std::move(laws.batch_c);
  r.tau_law = std::move(laws.tau);
  r.tau_note = laws.tau_note;

  std::vector<LawPoint> best;
  for (std::size_t i = 0; i < cells.size(); ++i)
    if (cells[i].points.size() >= 3)
      best.push_back(LawPoint{cells[i].params, cells[i].tokens, 0, 0, 0, cells[i].best().loss, i});
  r.loss_law = fit_loss_law(best, o.bootstrap);

  // Prediction at the target.
  if (r.target_params > 0 && r.target_tokens > 0) {
    Prediction p;
    const double N = r.target_params, D = r.target_tokens;
    p.lr = r.lr_law->predict_interval(N, D);
    p.batch_tokens = r.batch_law->predict_interval(N, D);
    p.batch_sequences = p.batch_tokens.estimate / static_cast<double>(r.seq_len);
    if (r.tau_law) {
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
  if (!o.bootstrap.by_cell && o.bootstrap.resamples > 0 && r.lr_law->coefs.size() > 1) {
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
        hc.loss_at_prediction =
            interpolate_loss(*c, hc.predicted_lr, hc.predicted_batch, hc.method, hc.in_plateau, o.selection.eps);
        hc.gap = hc.loss_at_prediction / hc.best_loss - 1;
        r.holdout.push_back(hc);
      }
    }
  }
  return r;
}

namespace {

std::string interval_text(const Interval& i, int digits = 4) {
  if (!std::isfinite(i.lo)) return format_short(i.estimate, digits) + "  (no bootstrap interval)";
  return format_short(i.estimate, digits) + "  [" + format_short(i.lo, digits) + ", " + format_short(i.hi, digits) +
         "]  mean " + format_short(i.mean, digits) + "  median " + format_short(i.median, digits);
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
  j.key("coefficients").begin_object();
  for (std::size_t k = 0; k < law.coefs.size(); ++k) {
    const Interval& i = law.coefs[k];
    j.key(law.coef_names[k]).begin_object();
    j.key("estimate").value(i.estimate).key("mean").value(i.mean).key("median").value(i.median);
    j.key("lo").value(i.lo).key("hi").value(i.hi).key("ols_se").value(law.ols_se[k]);
    j.end_object();
  }
  j.end_object();
  j.end_object();
}

void interval_json(JsonWriter& j, const char* name, const Interval& i) {
  j.key(name).begin_object();
  j.key("estimate").value(i.estimate).key("mean").value(i.mean).key("median").value(i.median);
  j.key("lo").value(i.lo).key("hi").value(i.hi);
  j.end_object();
}

}  // namespace

std::string format_fit(const FitReport& r) {
  std::string out;
  char buf[512];
  std::snprintf(buf, sizeof buf, "fit: %zu trials in %zu cells, selection %s, %d bootstrap resamples of %s\n",
                r.trials_used, r.optima.size() + r.skipped_cells.size(), r.options.selection.text().c_str(),
                r.options.bootstrap.resamples, r.options.bootstrap.by_cell ? "cells" : "points");
  out += buf;
  out += "\nper-cell optima (N, D: lr, B tokens, wd, loss; points selected; plateau lr and B ranges)\n";
  for (const auto& c : r.optima) {
    std::snprintf(buf, sizeof buf, "  N=%-8s D=%-8s lr=%-9s B=%-9s wd=%-6s L=%.5f  %3zu pts  lr %s-%s  B %s-%s%s%s\n",
                  format_short(c.params).c_str(), format_short(c.tokens).c_str(), format_short(c.lr).c_str(),
                  format_short(c.batch_tokens).c_str(), format_short(c.wd).c_str(), c.loss, c.selected.size(),
                  format_short(c.plateau_lr_lo).c_str(), format_short(c.plateau_lr_hi).c_str(),
                  format_short(c.plateau_b_lo).c_str(), format_short(c.plateau_b_hi).c_str(),
                  c.edges.empty() ? "" : "  EDGE", c.note.empty() ? "" : ("  (" + c.note + ")").c_str());
    out += buf;
    for (const auto& e : c.edges) out += "      edge: " + e + "\n";
  }
  for (const auto& s : r.skipped_cells) out += "  skipped " + s + "\n";

  out += "\nlaws (estimate [2.5%, 97.5%] over bootstrap resamples)\n";
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
    out += "  lr            " + interval_text(p.lr) + "\n";
    out += "  batch tokens  " + interval_text(p.batch_tokens) + "\n";
    std::snprintf(buf, sizeof buf, "  batch seqs    %.0f  [%.0f, %.0f]\n", p.batch_sequences,
                  p.batch_tokens.lo / static_cast<double>(r.seq_len),
                  p.batch_tokens.hi / static_cast<double>(r.seq_len));
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
    for (auto [n, i] :
         std::vector<std::pair<const char*, const Interval*>>{{"lr", &p.lr}, {"batch_tokens", &p.batch_tokens}})
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
    j.key("selected").value(c.selected.size());
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
