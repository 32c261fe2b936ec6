#include "hpsweep/transfer/transfer_fit.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <map>
#include <set>

#include "hpsweep/backends/mlp.hpp"
#include "hpsweep/spec/job.hpp"
#include "hpsweep/store/stored_job.hpp"
#include "hpsweep/transfer/format.hpp"
#include "hpsweep/util/error.hpp"
#include "hpsweep/util/json.hpp"
#include "hpsweep/util/text.hpp"

namespace hpsweep {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// The finished trials of one width: loss per (lr, batch, wd) and seed.
struct Runs {
  double width = 0, params = 0, tokens = 0;
  // (lr, batch, wd) -> per-seed losses (inf: diverged)
  std::map<std::tuple<double, std::int64_t, double>, std::vector<double>> losses;
};

double mean_finite(const std::vector<double>& v, std::size_t* ok) {
  double s = 0;
  std::size_t n = 0;
  for (double x : v)
    if (std::isfinite(x)) s += x, ++n;
  *ok = n;
  // A setting that diverged for any seed is not a candidate optimum.
  return n == v.size() && n > 0 ? s / static_cast<double>(n) : kInf;
}

// Optimum of a 1-D curve in ln x by the scaling-law fit's `asym` rule (reducer/cells.hpp): the
// vertex of an asymmetric bowl in ln x with its standard error, or the argmin with the grid
// spacing around it as its error. Diverged points (inf) are left out of the bowl.
struct CurveOptimum {
  double x = std::numeric_limits<double>::quiet_NaN();
  double se_log = std::numeric_limits<double>::quiet_NaN();
  bool edge = false;
};
CurveOptimum curve_optimum(const std::vector<CurvePoint>& c) {
  CurveOptimum o;
  std::size_t i = 0;
  for (std::size_t k = 1; k < c.size(); ++k)
    if (c[k].loss < c[i].loss) i = k;
  o.edge = c.size() > 1 && (i == 0 || i + 1 == c.size());
  if (c.empty() || !std::isfinite(c[i].loss)) return o;
  std::vector<CellPoint> pts;
  TrialId id = 0;
  for (const auto& p : c)
    if (std::isfinite(p.loss)) pts.push_back(CellPoint{++id, p.x, 1.0, 0, p.loss, 1});
  const BowlOptimum b = asym_optimum(pts);
  o.x = std::exp(b.x0);
  o.se_log = b.se_x0;
  return o;
}

// The 1-D curves of one width (means over seeds) through its best setting.
struct Slices {
  std::vector<CurvePoint> lr, wd;
  double best_lr = 0, best_wd = 0, best_loss = kInf;
  std::int64_t best_batch = 0;
};

Slices slices(const Runs& runs) {
  Slices s;
  std::map<std::tuple<double, std::int64_t, double>, CurvePoint> points;  // x filled in below
  for (const auto& [key, v] : runs.losses) {
    std::size_t ok = 0;
    const double m = mean_finite(v, &ok);
    const std::size_t seeds = v.size();
    points[key] = CurvePoint{0, m, seeds, seeds - ok};
    if (m < s.best_loss)
      s.best_loss = m, s.best_lr = std::get<0>(key), s.best_batch = std::get<1>(key), s.best_wd = std::get<2>(key);
  }
  if (!std::isfinite(s.best_loss)) return s;
  // The map is ordered by (lr, batch, wd), so both slices come out sorted by their x.
  for (const auto& [key, p] : points) {
    const auto [lr, batch, wd] = key;
    if (batch != s.best_batch) continue;
    if (wd == s.best_wd) s.lr.push_back({lr, p.loss, p.seeds, p.diverged});
    if (lr == s.best_lr) s.wd.push_back({wd, p.loss, p.seeds, p.diverged});
  }
  // wd = 0 has no log; the wd curve is only used when every swept value is positive.
  if (s.wd.size() < 3 || s.wd.front().x <= 0) s.wd.clear();
  return s;
}

struct GroupInput {
  std::string variant, parametrization, width_source;
  double tokens = 0;  // set when the variant is split by token budget
  std::map<double, Runs> by_width;
  bool mlp = false;
  MlpSettings mlp_settings;
};

// Width of a trial's model: the mlp's actual width, the job's shapes, or sqrt(N) at fixed depth.
// One group per variant; a variant whose widths were each trained on several token budgets is
// split into one group per budget, since kappa compares widths at the same data.
std::vector<GroupInput> group_trials(const SweepLog& log, const JobSpec* job, std::vector<std::string>* warnings) {
  std::map<std::string, GroupInput> variants;                                 // settings per variant
  std::map<std::string, std::map<std::pair<double, double>, Runs>> by_point;  // variant -> (N, D) -> runs
  std::map<double, double> shape_width;
  if (job)
    for (const auto& sh : job->shapes) shape_width[sh.params()] = static_cast<double>(sh.hidden);
  for (const auto& r : log.results) {
    const TrialPoint& p = r.trial.point;
    auto [it, fresh] = variants.try_emplace(p.variant);
    GroupInput& g = it->second;
    if (fresh) {
      g.variant = p.variant;
      g.parametrization = p.variant;
      g.width_source = "width = sqrt(N) (no shapes in the job; exponents in w are then exact, multipliers relative)";
      if (job && job->backend_kind == "mlp") {
        g.mlp = true;
        g.mlp_settings = MlpSettings::from_options(job->options_for(p.variant));
        g.parametrization = to_string(g.mlp_settings.parametrization);
        g.width_source = "the mlp backend's width for each N";
      } else if (!shape_width.empty()) {
        g.width_source = "the job's [scales] shapes";
      }
      if (g.parametrization.empty()) g.parametrization = "(sweep)";
    }
    if (!r.finished) continue;
    double loss;
    if (r.outcome.state == TrialState::Done && std::isfinite(r.outcome.smooth_loss))
      loss = r.outcome.smooth_loss;
    else if (r.outcome.state == TrialState::Diverged)
      loss = kInf;
    else
      continue;  // FAILED, TIMEOUT, LOST say nothing about the landscape
    Runs& runs = by_point[p.variant][{p.params, p.tokens}];
    runs.width = std::sqrt(p.params);
    if (g.mlp)
      runs.width = static_cast<double>(mlp_shape(p, g.mlp_settings).width);
    else if (auto s = shape_width.find(p.params); s != shape_width.end())
      runs.width = s->second;
    runs.params = p.params;
    runs.tokens = p.tokens;
    auto& seeds = runs.losses[{p.lr, p.batch, p.wd}];
    if (seeds.size() <= static_cast<std::size_t>(p.repeat))
      seeds.resize(static_cast<std::size_t>(p.repeat) + 1, std::numeric_limits<double>::quiet_NaN());
    seeds[static_cast<std::size_t>(p.repeat)] = loss;  // a rerun's later record replaces the earlier
  }
  std::vector<GroupInput> out;
  for (auto& [name, settings] : variants) {
    auto& points = by_point[name];
    std::map<double, std::set<double>> budgets_of_n;
    std::set<double> budgets;
    for (const auto& [nd, runs] : points) budgets_of_n[nd.first].insert(nd.second), budgets.insert(nd.second);
    bool split = false;
    for (const auto& [n, b] : budgets_of_n) split = split || b.size() > 1;
    for (double d : split ? budgets : std::set<double>{0.0}) {
      GroupInput g = settings;
      g.tokens = split ? d : 0;
      for (auto& [nd, runs] : points) {
        if (split && nd.second != d) continue;
        // Drop seed slots never filled (NaN) so means count only runs that exist.
        for (auto& [k, v] : runs.losses)
          v.erase(std::remove_if(v.begin(), v.end(), [](double x) { return std::isnan(x); }), v.end());
        auto [slot, added] = g.by_width.emplace(runs.width, runs);
        if (!added && warnings)
          warnings->push_back("N = " + format_short(runs.params) + " and N = " + format_short(slot->second.params) +
                              " have the same width " + format_short(runs.width) +
                              "; only N = " + format_short(slot->second.params) + " is used");
      }
      out.push_back(std::move(g));
    }
  }
  return out;
}

// y*(w) = c * w^kappa by the scaling-law fit's weighted least squares (reducer/laws.hpp): each
// width's optimum weighted by 1/(se^2 + tau^2), covariance scaled by the weighted residuals and
// Student-t quantiles with widths - 2 degrees of freedom. A bootstrap over 2-3 seeds covers the
// true exponent far less often than 95% (it sees at most 10 distinct resamples and ignores the
// noise between seeds that the bowl's residuals measure).
std::optional<PowerLaw> width_law(const std::string& name, const std::vector<double>& widths,
                                  const std::vector<CurveOptimum>& optima, std::string* method) {
  std::vector<LawPoint> pts;
  for (std::size_t i = 0; i < widths.size(); ++i)
    if (std::isfinite(optima[i].x) && optima[i].x > 0) {
      LawPoint p{widths[i], 1, optima[i].x, 0, 0, 0, i};
      p.lr_se_log = optima[i].se_log;
      pts.push_back(p);
    }
  if (pts.size() < 2) return std::nullopt;
  auto features = [](double w, double) {
    Eigen::VectorXd f(2);
    f << 1.0, std::log(w);
    return f;
  };
  PowerLaw law = fit_weighted_law(
      name, name + "* = c * w^kappa", {"c", "kappa"}, pts, [](const LawPoint& p) { return p.lr; },
      [](const LawPoint& p) { return p.lr_se_log; }, features);
  *method = pts.size() > 2 ? "weighted least squares over the widths' optima (their bowl standard errors), "
                             "Student-t quantiles with " +
                                 std::to_string(pts.size() - 2) + " degrees of freedom"
                           : "none: two widths fit the line exactly";
  return law;
}

}  // namespace

std::string transfer_group_name(const TransferGroup& g) {
  return (g.variant.empty() ? std::string("the sweep") : "variant " + g.variant) +
         (g.tokens > 0 ? " at D = " + format_short(g.tokens) : "");
}

TransferReport fit_transfer(const SweepLog& all, const FitOptions& options) {
  double target_width = options.target_width;
  const SweepLog selected = options.variant.empty() ? SweepLog{} : select_variant(all, options.variant);
  const SweepLog& log = options.variant.empty() ? all : selected;
  TransferReport rep;
  rep.options = options;
  std::optional<JobSpec> job;
  try {
    job = stored_job(log);
  } catch (const InputError&) {
  }
  std::vector<GroupInput> inputs = group_trials(log, job ? &*job : nullptr, &rep.warnings);
  if (target_width <= 0 && job && job->target_params > 0) {
    if (job->backend_kind == "mlp" && !inputs.empty() && inputs.front().mlp) {
      TrialPoint t;
      t.params = job->target_params;
      try {
        target_width = static_cast<double>(mlp_shape(t, inputs.front().mlp_settings).width);
      } catch (const InputError&) {
      }
    }
  }
  rep.target_width = target_width;

  for (const auto& in : inputs) {
    TransferGroup g;
    g.variant = in.variant;
    g.tokens = in.tokens;
    g.parametrization = in.parametrization;
    g.width_source = in.width_source;
    if (g.parametrization == "mup" || g.parametrization == "umup")
      g.theory_kappa = 0, g.has_theory = true;
    else if (g.parametrization == "sp")
      g.theory_kappa = -1, g.has_theory = true;

    std::vector<double> widths;
    std::vector<CurveOptimum> lr_star, wd_star;
    std::set<double> tokens;
    for (const auto& [w, runs] : in.by_width) {
      const Slices s = slices(runs);
      WidthOptimum o;
      o.width = w;
      o.params = runs.params;
      o.tokens = runs.tokens;
      tokens.insert(runs.tokens);
      o.lr_curve = s.lr;
      o.wd_curve = s.wd;
      if (!std::isfinite(s.best_loss) || s.lr.size() < 3) {
        o.note = s.lr.size() < 3 ? "fewer than 3 learning rates finished: no optimum" : "every setting diverged";
        o.lr = std::numeric_limits<double>::quiet_NaN();
        g.widths.push_back(o);
        continue;
      }
      const CurveOptimum lr = curve_optimum(s.lr);
      o.lr = lr.x;
      o.lr_edge = lr.edge;
      // The width's optimum with its 95% interval from the bowl's standard error.
      o.lr_boot = t_interval(std::log(lr.x), lr.se_log, HUGE_VAL, true);
      o.loss = s.best_loss;
      const CurveOptimum wd = s.wd.empty() ? CurveOptimum{} : curve_optimum(s.wd);
      o.wd = s.wd.empty() ? s.best_wd : wd.x;
      if (o.lr_edge) o.note = "optimum at the edge of the swept learning rates: extend the grid";
      widths.push_back(w);
      lr_star.push_back(lr);
      wd_star.push_back(wd);
      g.widths.push_back(o);
    }
    if (tokens.size() > 1)
      rep.warnings.push_back(transfer_group_name(g) +
                             " has a different token budget at each width: kappa mixes width "
                             "and data effects");
    g.lr_law = width_law("lr", widths, lr_star, &g.interval_method);
    std::string wd_method;
    g.wd_law = width_law("wd", widths, wd_star, &wd_method);
    if (!g.lr_law) {
      rep.warnings.push_back(transfer_group_name(g) + ": fewer than 2 widths with an optimum, no exponent");
    } else if (g.has_theory && std::isfinite(g.lr_law->coefs[1].lo)) {
      const Interval& k = g.lr_law->coefs[1];
      const bool covers = k.lo <= g.theory_kappa && g.theory_kappa <= k.hi;
      char buf[200];
      std::snprintf(buf, sizeof buf, "kappa %.3f [%.3f, %.3f]; theory %g: %s", k.estimate, k.lo, k.hi, g.theory_kappa,
                    covers
                        ? "consistent"
                        : (std::fabs(k.estimate - g.theory_kappa) < 0.25 ? "close (outside the interval)" : "differs"));
      g.verdict = buf;
    }
    std::size_t edges = 0;
    for (const auto& o : g.widths) edges += o.lr_edge ? 1 : 0;
    if (edges)
      rep.warnings.push_back(transfer_group_name(g) + ": " + std::to_string(edges) +
                             " widths have their best learning rate at the grid's edge");

    // muP-type groups transfer: per-group values at the target width from the base width's optimum.
    if (g.lr_law && target_width > 0 && in.mlp && (g.parametrization == "mup" || g.parametrization == "umup")) {
      const MlpSettings& s = in.mlp_settings;
      BaseModel base;
      base.width = s.base_width;
      base.depth = static_cast<double>(s.depth);
      base.lr = g.lr_law->predict(s.base_width, 1);
      // The optimum weight decay at the base width: the fitted law, else the nearest swept width's.
      base.wd = 0;
      if (g.wd_law) {
        base.wd = g.wd_law->predict(s.base_width, 1);
      } else {
        double best = HUGE_VAL;
        for (const auto& o : g.widths)
          if (std::isfinite(o.wd) && std::fabs(std::log(o.width / s.base_width)) < best)
            best = std::fabs(std::log(o.width / s.base_width)), base.wd = o.wd;
      }
      base.init_std = s.init_std / std::sqrt(s.base_width);
      base.eps = s.eps;
      base.input_multiplier = s.input_mult;
      base.output_multiplier = s.output_mult;
      base.decoupled_wd = s.wd_mode == MlpWdMode::Decoupled;
      base.ffn_width = s.ffn_mult * s.base_width;
      base.input_is_embedding = false;
      TargetModel target;
      target.width = target_width;
      target.depth = static_cast<double>(s.depth);
      target.ffn_width = s.ffn_mult * target_width;
      TransferOptions t;
      t.param = parse_parametrization(g.parametrization);
      t.wd_rule = s.wd_width_rule;
      t.depth_alpha = g.parametrization == "mup" ? s.depth_alpha : 0;
      g.to_target = transfer(base, target, t);
    }
    rep.groups.push_back(std::move(g));
  }
  bool any = false;
  for (const auto& g : rep.groups) any = any || g.lr_law.has_value();
  if (!any) throw Error("cannot fit transfer exponents: no group has 2 widths with a learning-rate optimum");
  return rep;
}

std::string format_transfer_fit(const TransferReport& r) {
  std::string out;
  char buf[512];
  std::snprintf(buf, sizeof buf, "transfer fit: %zu group(s); eta*(w) = c * w^kappa per parametrization\n",
                r.groups.size());
  out += buf;
  for (const auto& g : r.groups) {
    out += "\n" + transfer_group_name(g) + " (" + g.parametrization + "); widths from " + g.width_source + "\n";
    out += "  width        N          lr*  [2.5%, 97.5%]              wd*      loss  \n";
    for (const auto& o : g.widths) {
      std::snprintf(buf, sizeof buf, "  %5s  %9s  %9s  [%9s, %9s]  %9s  %8.5f%s%s\n", format_short(o.width).c_str(),
                    format_short(o.params).c_str(), format_short(o.lr).c_str(), format_short(o.lr_boot.lo).c_str(),
                    format_short(o.lr_boot.hi).c_str(), format_short(o.wd).c_str(), o.loss, o.lr_edge ? "  EDGE" : "",
                    o.note.empty() || o.lr_edge ? "" : ("  (" + o.note + ")").c_str());
      out += buf;
    }
    if (g.lr_law) {
      const auto& c = g.lr_law->coefs;
      std::snprintf(buf, sizeof buf, "  lr* = %s * w^%.3f   kappa [%.3f, %.3f]  c [%s, %s]  R^2 %.3f  (%s)\n",
                    format_short(c[0].estimate).c_str(), c[1].estimate, c[1].lo, c[1].hi, format_short(c[0].lo).c_str(),
                    format_short(c[0].hi).c_str(), g.lr_law->r2, g.interval_method.c_str());
      out += buf;
      if (!g.verdict.empty()) out += "  " + g.verdict + "\n";
      if (r.target_width > 0) {
        const bool has_interval = g.lr_law->dof > 0;
        const Interval p = has_interval ? g.lr_law->predict_interval(r.target_width, 1) : Interval{};
        std::snprintf(buf, sizeof buf, "  at the target width %s: lr* = %s", format_short(r.target_width).c_str(),
                      format_short(g.lr_law->predict(r.target_width, 1)).c_str());
        out += buf;
        if (has_interval) out += " [" + format_short(p.lo) + ", " + format_short(p.hi) + "]";
        out += "\n";
      }
    }
    if (g.wd_law) {
      const auto& c = g.wd_law->coefs;
      std::snprintf(buf, sizeof buf, "  wd* = %s * w^%.3f   [%.3f, %.3f]\n", format_short(c[0].estimate).c_str(),
                    c[1].estimate, c[1].lo, c[1].hi);
      out += buf;
    }
    if (g.to_target) {
      out += "  per-group hyperparameters at the target width (" + g.parametrization + " rules from base width " +
             format_short(g.to_target->base.width) + ", lr " + format_short(g.to_target->base.lr) + "):\n";
      std::string t = format_transfer(*g.to_target);
      std::string indented;
      for (const auto& line : split(t, '\n'))
        if (!line.empty()) indented += "    " + line + "\n";
      out += indented;
    }
  }
  if (!r.warnings.empty()) {
    out += "\nwarnings\n";
    for (const auto& w : r.warnings) out += "  - " + w + "\n";
  }
  return out;
}

namespace {
void interval_json(JsonWriter& j, const char* key, const Interval& i) {
  j.key(key).begin_object().key("estimate").value(i.estimate).key("lo").value(i.lo).key("hi").value(i.hi).end_object();
}
void curve_json(JsonWriter& j, const char* key, const std::vector<CurvePoint>& c) {
  j.key(key).begin_array();
  for (const auto& p : c)
    j.begin_object()
        .key("x")
        .value(p.x)
        .key("loss")
        .value(p.loss)
        .key("seeds")
        .value(p.seeds)
        .key("diverged")
        .value(p.diverged)
        .end_object();
  j.end_array();
}
void law_json(JsonWriter& j, const char* key, const std::optional<PowerLaw>& law) {
  j.key(key);
  if (!law) {
    j.null();
    return;
  }
  j.begin_object();
  interval_json(j, "c", law->coefs[0]);
  interval_json(j, "kappa", law->coefs[1]);
  j.key("r2").value(law->r2).key("widths").value(law->points);
  j.end_object();
}
}  // namespace

std::string transfer_fit_json(const TransferReport& r) {
  JsonWriter j;
  j.begin_object();
  j.key("kind").value("transfer").key("options").value(r.options.text()).key("target_width").value(r.target_width);
  j.key("groups").begin_array();
  for (const auto& g : r.groups) {
    j.begin_object();
    j.key("variant").value(g.variant).key("parametrization").value(g.parametrization).key("tokens").value(g.tokens);
    j.key("width_source").value(g.width_source).key("interval_method").value(g.interval_method);
    j.key("theory_kappa");
    if (g.has_theory)
      j.value(g.theory_kappa);
    else
      j.null();
    j.key("verdict").value(g.verdict);
    law_json(j, "lr_law", g.lr_law);
    law_json(j, "wd_law", g.wd_law);
    if (g.lr_law && r.target_width > 0) j.key("lr_at_target").value(g.lr_law->predict(r.target_width, 1));
    j.key("widths").begin_array();
    for (const auto& o : g.widths) {
      j.begin_object();
      j.key("width").value(o.width).key("params").value(o.params).key("tokens").value(o.tokens);
      j.key("lr").value(o.lr).key("wd").value(o.wd).key("loss").value(o.loss).key("lr_edge").value(o.lr_edge);
      interval_json(j, "lr_interval", o.lr_boot);
      j.key("note").value(o.note);
      curve_json(j, "lr_curve", o.lr_curve);
      curve_json(j, "wd_curve", o.wd_curve);
      j.end_object();
    }
    j.end_array();
    j.key("to_target");
    if (g.to_target)
      j.raw(transfer_json(*g.to_target));
    else
      j.null();
    j.end_object();
  }
  j.end_array();
  j.key("warnings").begin_array();
  for (const auto& w : r.warnings) j.value(w);
  j.end_array();
  j.end_object();
  return j.str();
}

FitRecord to_fit_record(const TransferReport& r, const std::string& name, std::uint64_t results) {
  FitRecord f;
  f.name = name;
  f.kind = ResultKind::Transfer;
  f.options = r.options.text();
  f.json = transfer_fit_json(r);
  f.results = results;
  for (const auto& g : r.groups) {
    const std::string law = "transfer." + (g.variant.empty() ? g.parametrization : g.variant) +
                            (g.tokens > 0 ? "@D=" + format_double(g.tokens) : "");
    auto add = [&](const std::optional<PowerLaw>& pl, const std::string& what) {
      if (!pl) return;
      for (std::size_t k = 0; k < pl->coefs.size(); ++k) {
        const Interval& i = pl->coefs[k];
        f.coefficients.push_back(
            FitCoefficient{law + "." + what, pl->coef_names[k], i.estimate, i.mean, i.median, i.lo, i.hi});
      }
    };
    add(g.lr_law, "lr");
    add(g.wd_law, "wd");
    for (const auto& o : g.widths) f.points.push_back(FitPoint{o.params, o.tokens, o.lr, o.width, o.wd, o.loss});
  }
  return f;
}

}  // namespace hpsweep
