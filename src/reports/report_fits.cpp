// The report sections drawn from the fit: per-cell loss landscapes, the fitted laws against the
// published ones, and the loss law.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <set>

#include "hpsweep/reports/report.hpp"
#include "hpsweep/util/text.hpp"
#include "reports/gnuplot.hpp"

namespace hpsweep {

using gnuplot::DataBlocks;
using gnuplot::num;
using gnuplot::quote;

namespace {

// The compute of a cell the way the fit's compute-form laws define it.
double compute_of(const FitOptions& o, double N, double D) {
  return o.flops_per_token > 0 ? o.flops_per_token * D : 6 * N * D;
}

std::string cell_label(double N, double D) { return "N = " + format_short(N) + ", D = " + format_short(D); }

std::string cell_stem(std::size_t index, double N, double D) {
  char number[16];
  std::snprintf(number, sizeof number, "%02zu", index + 1);
  std::string s = "cell_" + std::string(number) + "_n" + format_short(N) + "_d" + format_short(D);
  for (char& c : s)
    if (c == '.' || c == '+') c = 'p';
  return to_lower(s);
}

// Box edges of a heatmap column/row: geometric midpoints between neighbouring grid values.
std::map<double, std::pair<double, double>> box_edges(const std::set<double>& values) {
  std::map<double, std::pair<double, double>> edges;
  const std::vector<double> v(values.begin(), values.end());
  for (std::size_t i = 0; i < v.size(); ++i) {
    const double lo = i > 0 ? std::sqrt(v[i - 1] * v[i]) : (v.size() > 1 ? v[0] * std::sqrt(v[0] / v[1]) : v[0] / 1.4);
    const double hi =
        i + 1 < v.size() ? std::sqrt(v[i] * v[i + 1]) : (v.size() > 1 ? v[i] * std::sqrt(v[i] / v[i - 1]) : v[i] * 1.4);
    edges[v[i]] = {lo, hi};
  }
  return edges;
}

// A value's box edge if it is a grid value, else the value itself (a bowl's interpolated plateau).
double snap(const std::map<double, std::pair<double, double>>& edges, double v, bool upper) {
  auto it = edges.find(v);
  return it == edges.end() ? v : (upper ? it->second.second : it->second.first);
}

struct TrialXY {
  double lr = 0, batch_tokens = 0, wd = 0;
};

// Runs that ended without a usable loss, per (N, D), as collect_cells counts them.
std::map<std::tuple<std::string, double, double>, std::vector<TrialXY>> unusable_runs(const SweepLog& log) {
  std::map<std::tuple<std::string, double, double>, std::vector<TrialXY>> out;
  for (const auto& [id, r] : log.latest_by_id()) {
    if (!r->finished || !is_terminal(r->outcome.state)) continue;
    if (r->outcome.state == TrialState::Done && std::isfinite(r->outcome.smooth_loss)) continue;
    const TrialPoint& p = r->trial.point;
    out[{p.variant, p.params, p.tokens}].push_back(TrialXY{p.lr, p.batch_tokens(), p.wd});
  }
  for (auto& [k, v] : out)
    std::sort(v.begin(), v.end(), [](auto& a, auto& b) {
      return std::tie(a.wd, a.lr, a.batch_tokens) < std::tie(b.wd, b.lr, b.batch_tokens);
    });
  return out;
}

// `optimum`: the cell's optimum as the fit chose it (select_optima over the cells of its variant),
// or null when the cell has none.
ReportFigure cell_figure(std::size_t index, const Cell& cell, const std::vector<TrialXY>& unusable,
                         const Selection& selection, const CellOptimum* optimum) {
  ReportFigure f;
  f.name = cell_stem(index, cell.params, cell.tokens);
  const bool has_opt = optimum != nullptr;
  const CellOptimum opt = optimum ? *optimum : CellOptimum{};

  std::set<double> wds;
  for (const auto& p : cell.points) wds.insert(p.wd);
  for (const auto& u : unusable) wds.insert(u.wd);
  const std::vector<double> panels(wds.begin(), wds.end());

  // One grid of box edges for every panel, so panels line up.
  std::set<double> lrs, bs;
  for (const auto& p : cell.points) lrs.insert(p.lr), bs.insert(p.batch_tokens);
  for (const auto& u : unusable) lrs.insert(u.lr), bs.insert(u.batch_tokens);
  const auto lr_edges = box_edges(lrs), b_edges = box_edges(bs);

  DataBlocks data;
  double lmin = cell.best().loss, lmax = lmin;
  for (std::size_t k = 0; k < panels.size(); ++k) {
    // Mean over repeats of the same point.
    std::map<std::pair<double, double>, std::pair<double, int>> mean;
    for (const auto& p : cell.points)
      if (p.wd == panels[k]) {
        auto& m = mean[{p.lr, p.batch_tokens}];
        m.first += p.loss;
        ++m.second;
      }
    data.begin("loss " + std::to_string(k),
               "wd=" + num(panels[k]) + "  columns: lr batch_tokens lr_lo lr_hi batch_lo batch_hi smoothed_loss");
    for (const auto& [xy, m] : mean) {
      const double loss = m.first / m.second;
      lmax = std::max(lmax, loss);
      const auto& le = lr_edges.at(xy.first);
      const auto& be = b_edges.at(xy.second);
      data.row({xy.first, xy.second, le.first, le.second, be.first, be.second, loss});
    }
    data.begin("unusable " + std::to_string(k),
               "wd=" + num(panels[k]) + "  diverged or failed runs; columns: lr batch_tokens");
    for (const auto& u : unusable)
      if (u.wd == panels[k]) data.row({u.lr, u.batch_tokens});
  }
  if (has_opt) {
    data.begin("optimum", "columns: lr batch_tokens wd loss");
    data.row({opt.lr, opt.batch_tokens, opt.wd, opt.loss});
    data.begin("plateau", "near-optimal plateau outline; columns: lr batch_tokens");
    const double x0 = snap(lr_edges, opt.plateau_lr_lo, false), x1 = snap(lr_edges, opt.plateau_lr_hi, true);
    const double y0 = snap(b_edges, opt.plateau_b_lo, false), y1 = snap(b_edges, opt.plateau_b_hi, true);
    for (auto [x, y] : std::vector<std::pair<double, double>>{{x0, y0}, {x1, y0}, {x1, y1}, {x0, y1}, {x0, y0}})
      data.row({x, y});
    data.begin("selected", "runs entering the law fits; columns: lr batch_tokens wd loss");
    for (const auto& p : opt.selected) data.row({p.lr, p.batch_tokens, p.wd, p.loss});
  }
  f.data = data.text();

  // Colours span the best loss to +10% (or the worst loss if closer): the bowl stays visible.
  const double cb_hi = std::max(std::min(lmax, lmin * 1.10), lmin * 1.0005);
  const bool clipped = lmax > cb_hi;
  const bool edge = has_opt && !opt.edges.empty();
  f.title = (cell.variant.empty() ? "" : cell.variant + ": ") + cell_label(cell.params, cell.tokens);
  const std::string eps = format_short(selection.eps * 100) + "%";

  std::string& s = f.plot;
  s += std::string(gnuplot::kLossPalette) + "\n";
  s += "set cbrange [" + num(lmin) + ":" + num(cb_hi) + "]\n";
  s += "set cblabel " + quote(std::string("smoothed final loss") + (clipped ? " (clipped)" : "")) + " offset 1,0\n";
  s += "set rmargin 13\n";
  // A mid-grey key: the white plateau and circles and the black crosses all show on it.
  const std::string key =
      "set key outside below center horizontal maxrows 2 samplen 1.5 font \",11\" opaque fc rgb \"#9a9a9a\" box lc rgb "
      "\"#808080\"\n";
  s += "set bmargin 7\n";
  s += "set grid noxtics noytics\n";
  s += gnuplot::log_axis("x", lr_edges.begin()->second.first, lr_edges.rbegin()->second.second, "peak learning rate η",
                         1.0);
  s += gnuplot::log_axis("y", b_edges.begin()->second.first, b_edges.rbegin()->second.second, "batch size B (tokens)",
                         1.0);
  const int columns = static_cast<int>(std::min<std::size_t>(panels.size(), 3));
  const int rows = static_cast<int>((panels.size() + columns - 1) / columns);
  f.width = 640 * columns;
  f.height = 540 * rows;
  const std::string heading = f.title + "  (6ND = " + format_short(cell.compute()) + " FLOPs)";
  if (panels.size() > 1) {
    s += "set multiplot layout " + std::to_string(rows) + "," + std::to_string(columns) + " title " +
         quote(heading + (edge ? "  {/:Bold optimum on the grid edge}" : "")) +
         (edge ? " textcolor rgb \"#c00000\"" : "") + "\n";
  } else {
    s += "set title " + quote(heading + (edge ? "\n{/:Bold optimum on the grid edge}" : "")) +
         (edge ? " textcolor rgb \"#c00000\"" : "") + "\n";
  }
  for (std::size_t k = 0; k < panels.size(); ++k) {
    const bool here = has_opt && opt.wd == panels[k];
    if (panels.size() > 1) s += "set title " + quote("weight decay " + format_short(panels[k])) + "\n";
    std::vector<std::string> elements;
    const std::string loss = "loss " + std::to_string(k), bad = "unusable " + std::to_string(k);
    if (data.has_rows(loss))
      elements.push_back(DataBlocks::source(loss) +
                         " using 1:2:3:4:5:6:7 with boxxyerror fs solid 1.0 noborder lc palette notitle");
    if (here) {
      elements.push_back(DataBlocks::source("plateau") + " using 1:2 with lines lw 2.5 dt 2 lc rgb \"#ffffff\" title " +
                         quote("plateau (" + eps + ")"));
      if (opt.selected.size() > 1 || (selection.kind != SelectKind::Bowl && selection.kind != SelectKind::Asym))
        elements.push_back(DataBlocks::source("selected") +
                           " using 1:2 with points pt 6 ps 1.1*PS lw 1.5 lc rgb \"#ffffff\" title " +
                           quote("selected"));
      elements.push_back(DataBlocks::source("optimum") +
                         " using 1:2 with points pt 3 ps 3*PS lw 3 lc rgb \"#ff3030\" title " +
                         quote(selection.kind == SelectKind::Bowl   ? "optimum (bowl)"
                               : selection.kind == SelectKind::Asym ? "optimum (asymmetric bowl)"
                                                                    : "optimum"));
    }
    if (data.has_rows(bad))
      elements.push_back(DataBlocks::source(bad) +
                         " using 1:2 with points pt 2 ps 1.4*PS lw 2.5 lc rgb \"#000000\" title " + quote("diverged"));
    s += here || data.has_rows(bad) ? key : "unset key\n";  // no empty key box on a panel without markers
    if (elements.empty()) elements.push_back("NaN notitle");
    s += gnuplot::plot_command(elements);
  }
  if (panels.size() > 1) s += "unset multiplot\n";

  std::string& c = f.caption;
  c = "Best smoothed loss " + format_short(cell.best().loss, 5) + " over " + std::to_string(cell.points.size()) +
      " runs";
  if (!unusable.empty()) c += ", " + std::to_string(unusable.size()) + " diverged or failed (X)";
  if (has_opt) {
    c += ". Optimum η = " + format_short(opt.lr) + ", B = " + format_short(opt.batch_tokens) + " tokens";
    if (panels.size() > 1) c += ", weight decay " + format_short(opt.wd);
    c += "; " + std::to_string(opt.selected.size()) + " runs selected (" + selection.text() + ")";
    if (!opt.note.empty()) c += "; " + opt.note;
    for (const auto& e : opt.edges) c += ". Grid edge: " + e;
  } else {
    CellOptimum none;
    std::string why;
    select_optimum(cell, selection, none, why);  // the reason select_optima skipped the cell
    c += ". No optimum: " + why;
  }
  c += ".";
  return f;
}

// Where laws of N and D are drawn against one axis: the path through (N, D) at a fixed
// tokens-per-parameter ratio (the target's, or the sweep's typical one).
struct RatioPath {
  double ratio = 20;
  const FitOptions* options = nullptr;
  // (N, D) with compute C (as the compute-form laws define it).
  std::pair<double, double> at_compute(double C) const {
    if (options->flops_per_token > 0) {
      const double D = C / options->flops_per_token;
      return {D / ratio, D};
    }
    const double N = std::sqrt(C / (6 * ratio));
    return {N, ratio * N};
  }
  std::pair<double, double> at_tokens(double D) const { return {D / ratio, D}; }
};

RatioPath ratio_path(const FitReport& r) {
  RatioPath p;
  p.options = &r.options;
  if (r.target_params > 0 && r.target_tokens > 0) {
    p.ratio = r.target_tokens / r.target_params;
  } else {
    double sum = 0;
    for (const auto& c : r.optima) sum += std::log(c.tokens / c.params);
    p.ratio = std::exp(sum / static_cast<double>(r.optima.size()));
  }
  return p;
}

std::vector<double> log_grid(double lo, double hi, int n = 80) {
  std::vector<double> g;
  for (int i = 0; i < n; ++i) g.push_back(lo * std::pow(hi / lo, i / static_cast<double>(n - 1)));
  return g;
}

struct LawAxis {
  std::string what;  // "lr" | "batch"
  bool against_compute = false;
};

// One law figure: measured optima against C (lr) or D (batch), the fitted law with its bootstrap
// band, the published laws and the prediction at the target.
ReportFigure law_figure(const FitReport& r, const LawAxis& axis) {
  const bool lr = axis.what == "lr";
  const RatioPath path = ratio_path(r);
  const std::string ratio_text = "D/N = " + format_short(path.ratio);
  const bool has_target = r.prediction.has_value();
  auto x_of = [&](double N, double D) { return axis.against_compute ? compute_of(r.options, N, D) : D; };
  auto nd_of = [&](double x) { return axis.against_compute ? path.at_compute(x) : path.at_tokens(x); };

  ReportFigure f;
  f.name = lr ? "laws_lr" : "laws_batch";
  DataBlocks data;
  double xlo = HUGE_VAL, xhi = 0, ylo = HUGE_VAL, yhi = 0;
  auto extend = [&](double x, double y) {
    if (!(x > 0) || !(y > 0) || !std::isfinite(x) || !std::isfinite(y)) return;
    xlo = std::min(xlo, x), xhi = std::max(xhi, x), ylo = std::min(ylo, y), yhi = std::max(yhi, y);
  };
  data.begin("selected", "runs selected per cell; columns: x y N D");
  for (const auto& c : r.optima)
    for (const auto& p : c.selected) {
      const double y = lr ? p.lr : p.batch_tokens;
      data.row({x_of(c.params, c.tokens), y, c.params, c.tokens});
      extend(x_of(c.params, c.tokens), y);
    }
  for (const bool edge : {false, true}) {
    data.begin(edge ? "edge optima" : "optima",
               std::string(edge ? "cells whose optimum is on the grid edge; " : "") + "cell optima; columns: x y N D");
    for (const auto& c : r.optima)
      if (c.edges.empty() != edge) {
        const double y = lr ? c.lr : c.batch_tokens;
        data.row({x_of(c.params, c.tokens), y, c.params, c.tokens});
        extend(x_of(c.params, c.tokens), y);
      }
  }
  double tx = 0;
  if (has_target) {
    tx = x_of(r.target_params, r.target_tokens);
    const Interval& i = lr ? r.prediction->lr : r.prediction->batch_tokens;
    data.begin("target", "prediction at the target (N, D law) and its 95% interval; columns: x estimate lo hi");
    data.row({tx, i.estimate, std::isfinite(i.lo) ? i.lo : i.estimate, std::isfinite(i.hi) ? i.hi : i.estimate});
    extend(tx, i.estimate);
    if (std::isfinite(i.lo)) extend(tx, i.lo), extend(tx, i.hi);
  }
  const double x0 = xlo / 2, x1 = xhi * 2;

  // The fitted law: lr against C uses the compute form; B against D the batch law (in D).
  const PowerLaw* law = lr ? (r.lr_compute ? &*r.lr_compute : nullptr) : &*r.batch_law;
  if (law) {
    data.begin("fit", law->formula + "; bootstrap 95% band; columns: x estimate lo hi");
    for (double x : log_grid(x0, x1)) {
      const auto [N, D] = nd_of(x);
      const Interval i = law->predict_interval(N, D);
      data.row({x, i.estimate, std::isfinite(i.lo) ? i.lo : i.estimate, std::isfinite(i.hi) ? i.hi : i.estimate});
    }
  }
  if (lr) {
    data.begin("fit nd", r.lr_law->formula + " along " + ratio_text + "; columns: x lr");
    for (double x : log_grid(x0, x1)) {
      const auto [N, D] = nd_of(x);
      data.row({x, r.lr_law->predict(N, D)});
    }
  }
  data.begin("steplaw", "Step Law along " + ratio_text + "; columns: x y");
  for (double x : log_grid(x0, x1)) {
    const auto [N, D] = nd_of(x);
    data.row({x, lr ? steplaw_lr(N, D) : steplaw_batch_tokens(D)});
  }
  data.begin("deepseek", "DeepSeek (C = 6ND) along " + ratio_text + "; columns: x y");
  for (double x : log_grid(x0, x1)) {
    const auto [N, D] = nd_of(x);
    data.row({x, lr ? deepseek_lr(6 * N * D) : deepseek_batch_tokens(6 * N * D)});
  }
  f.data = data.text();

  // Published laws can leave the data's range at the far end: show them, within reason.
  for (const auto& [N, D] : {nd_of(x0), nd_of(x1)}) {
    for (double y : {lr ? steplaw_lr(N, D) : steplaw_batch_tokens(D),
                     lr ? deepseek_lr(6 * N * D) : deepseek_batch_tokens(6 * N * D)})
      if (y > ylo / 10 && y < yhi * 10) extend(x_of(N, D), y);
  }
  const std::string x_label =
      axis.against_compute
          ? (r.options.flops_per_token > 0 ? "compute C = " + format_short(r.options.flops_per_token) + "·D (FLOPs)"
                                           : "compute C = 6ND (FLOPs)")
          : "training tokens D";
  f.title = lr ? "Optimal learning rate vs compute" : "Optimal batch size vs training tokens";
  std::string& s = f.plot;
  s += "set key outside below center horizontal maxrows 4 font \",11\"\nset bmargin 8.5\n";
  f.height = 620;
  s += gnuplot::log_axis("x", x0, x1, x_label, 1.0);
  s += gnuplot::log_axis("y", ylo, yhi, lr ? "optimal peak learning rate η*" : "optimal batch size B* (tokens)", 1.6);
  s += "set title " + quote(f.title) + "\n";
  const std::string blue = gnuplot::series_colour(0);
  std::vector<std::string> el;
  if (law) {
    el.push_back(DataBlocks::source("fit") +
                 " using 1:3:4 with filledcurves fs transparent solid 0.18 noborder lc rgb " + quote(blue) + " title " +
                 quote("fit, 95% band"));
    el.push_back(DataBlocks::source("fit") + " using 1:2 with lines lw 2 lc rgb " + quote(blue) + " notitle");
  }
  if (lr)
    el.push_back(DataBlocks::source("fit nd") + " using 1:2 with lines lw 1.5 dt 2 lc rgb " + quote(blue) + " title " +
                 quote("fit η(N, D), " + ratio_text));
  el.push_back(DataBlocks::source("steplaw") + " using 1:2 with lines lw 1.5 dt 4 lc rgb " +
               quote(gnuplot::series_colour(1)) + " title " + quote("Step Law, " + ratio_text));
  el.push_back(DataBlocks::source("deepseek") + " using 1:2 with lines lw 1.5 dt 5 lc rgb " +
               quote(gnuplot::series_colour(2)) + " title " + quote("DeepSeek, " + ratio_text));
  if (data.has_rows("selected"))
    el.push_back(DataBlocks::source("selected") + " using 1:2 with points pt 7 ps 0.45*PS lc rgb \"#9a9a9a\" title " +
                 quote("selected runs"));
  if (data.has_rows("optima"))
    el.push_back(DataBlocks::source("optima") +
                 " using 1:2 with points pt 7 ps 1.3*PS lc rgb \"#000000\" title \"cell optimum\"");
  if (data.has_rows("edge optima"))
    el.push_back(DataBlocks::source("edge optima") +
                 " using 1:2 with points pt 6 ps 1.5*PS lw 2 lc rgb \"#c00000\" title " +
                 quote("optimum at grid edge"));
  if (has_target)
    el.push_back(DataBlocks::source("target") +
                 " using 1:2:3:4 with yerrorbars pt 13 ps 2*PS lw 2 lc rgb \"#d00000\" title " +
                 quote("target, 95% interval"));
  s += gnuplot::plot_command(el);

  std::string& c = f.caption;
  if (lr) {
    c = "Per-cell optimal learning rate against compute. Solid: " +
        (law ? law->formula : std::string("no compute-form law")) + " with its bootstrap band; dashed: the fitted " +
        r.lr_law->formula + " and the published laws, drawn along " + ratio_text +
        (has_target ? " (the target's ratio)" : " (the sweep's typical ratio)") + ".";
  } else {
    c = "Per-cell optimal batch size against training tokens. Solid: " + r.batch_law->formula +
        " with its bootstrap band; dashed: the published laws along " + ratio_text + ".";
  }
  if (has_target) {
    const Interval& i = lr ? r.prediction->lr : r.prediction->batch_tokens;
    c += " Target N = " + format_short(r.target_params) + ", D = " + format_short(r.target_tokens) + ": " +
         format_short(i.estimate, 4) + " [" + format_short(i.lo, 4) + ", " + format_short(i.hi, 4) + "].";
  }
  return f;
}

// Measured optimum / fitted law at each cell, against compute: how well the (N, D) laws fit.
ReportFigure residual_figure(const FitReport& r) {
  ReportFigure f;
  f.name = "laws_residuals";
  f.title = "Cell optima relative to the fitted laws";
  DataBlocks data;
  double lo = 1, hi = 1, xlo = HUGE_VAL, xhi = 0;
  for (const bool lr : {true, false}) {
    data.begin(lr ? "lr" : "batch", std::string("measured / fitted ") + (lr ? "η*" : "B*") + "; columns: C ratio N D");
    for (const auto& c : r.optima) {
      const double C = compute_of(r.options, c.params, c.tokens);
      const double q =
          lr ? c.lr / r.lr_law->predict(c.params, c.tokens) : c.batch_tokens / r.batch_law->predict(c.params, c.tokens);
      data.row({C, q, c.params, c.tokens});
      lo = std::min(lo, q), hi = std::max(hi, q), xlo = std::min(xlo, C), xhi = std::max(xhi, C);
    }
  }
  f.data = data.text();
  std::string& s = f.plot;
  s += "set title " + quote(f.title) + "\n";
  s += "set key outside below center vertical font \",11\"\nset bmargin 6.5\n";
  f.height = 560;
  s += gnuplot::log_axis("x", xlo, xhi,
                         r.options.flops_per_token > 0 ? "compute C = M·D (FLOPs)" : "compute C = 6ND (FLOPs)");
  s += gnuplot::log_axis("y", std::min(lo, 0.5), std::max(hi, 2.0), "measured optimum / fitted law", 1.2);
  s += "set arrow from graph 0, first 1 to graph 1, first 1 nohead lc rgb \"#606060\" dt 2\n";
  s += gnuplot::plot_command(
      {DataBlocks::source("lr") + " using 1:2 with points pt 7 ps 1.3*PS lc rgb " + quote(gnuplot::series_colour(0)) +
           " title \"η*: " + r.lr_law->formula + "\" noenhanced",
       DataBlocks::source("batch") + " using 1:2 with points pt 5 ps 1.1*PS lc rgb " +
           quote(gnuplot::series_colour(1)) + " title \"B*: " + r.batch_law->formula + "\" noenhanced"});
  f.caption =
      "Each cell's optimum divided by the fitted law at its (N, D): points on the dashed line are fitted exactly; "
      "a trend with compute means the power-law form does not hold over the swept range.";
  return f;
}

}  // namespace

ReportSection cells_section(const ReportInput& in) {
  ReportSection s;
  s.id = "cells";
  s.title = "Loss landscape per (N, D) cell";
  if (in.cells.empty()) {
    s.missing = "no (N, D) cell has a finished run with a finite loss yet";
    return s;
  }
  const auto unusable = unusable_runs(in.log);
  // The optima the fit uses: chosen over all cells of a variant at once (the asym rule shares the
  // landscape's shape between cells).
  std::map<std::string, std::vector<Cell>> by_variant;
  for (const auto& c : in.cells) by_variant[c.variant].push_back(c);
  std::map<std::tuple<std::string, double, double>, CellOptimum> optima;
  for (const auto& [variant, cells] : by_variant)
    for (auto& o : select_optima(cells, in.options.fit.selection)) optima[{variant, o.params, o.tokens}] = o;
  for (std::size_t i = 0; i < in.cells.size(); ++i) {
    const Cell& c = in.cells[i];
    auto it = unusable.find({c.variant, c.params, c.tokens});
    auto opt = optima.find({c.variant, c.params, c.tokens});
    s.figures.push_back(cell_figure(i, c, it == unusable.end() ? std::vector<TrialXY>{} : it->second,
                                    in.options.fit.selection, opt == optima.end() ? nullptr : &opt->second));
  }
  s.html =
      "<p>Smoothed final loss over learning rate and batch size, one map per cell (one panel per weight decay when "
      "it was swept). Colours run from the cell's best loss to 10% above it. The red cross is the chosen optimum, "
      "the dashed white outline the near-optimal plateau, white circles the runs that enter the law fits, black X "
      "the runs that diverged or failed.</p>\n";
  return s;
}

ReportSection laws_section(const ReportInput& in) {
  ReportSection s;
  s.id = "laws";
  s.title = "Fitted laws";
  if (!in.fit) {
    s.missing = "no fit: " + in.fit_error;
    return s;
  }
  s.figures.push_back(law_figure(*in.fit, {"lr", true}));
  s.figures.push_back(law_figure(*in.fit, {"batch", false}));
  s.figures.push_back(residual_figure(*in.fit));
  s.html = "<p>Per-cell optima with the laws fitted to them (bootstrap bands: 2.5% to 97.5% of " +
           std::to_string(in.fit->options.bootstrap.resamples) + " resamples of " +
           (in.fit->options.bootstrap.by_cell ? "cells" : "points") +
           "), compared with the published Step Law and DeepSeek laws.</p>\n";
  return s;
}

ReportSection loss_section(const ReportInput& in) {
  ReportSection s;
  s.id = "loss";
  s.title = "Loss law";
  if (!in.fit) {
    s.missing = "no fit: " + in.fit_error;
    return s;
  }
  const LossLaw& law = in.fit->loss_law;
  if (!law.ok) {
    s.missing = "the loss law was not fitted: " + law.note;
    return s;
  }
  ReportFigure f;
  f.name = "loss_law";
  f.title = "Best loss per cell vs the fitted L(N, D)";
  std::map<double, std::vector<std::pair<double, double>>> by_n;  // N -> (D, best loss)
  double dlo = HUGE_VAL, dhi = 0, llo = HUGE_VAL, lhi = 0;
  for (const auto& c : in.cells)
    if (c.points.size() >= 3) {
      const double l = c.best().loss;
      by_n[c.params].push_back({c.tokens, l});
      dlo = std::min(dlo, c.tokens), dhi = std::max(dhi, c.tokens), llo = std::min(llo, l), lhi = std::max(lhi, l);
    }
  DataBlocks data;
  std::size_t k = 0;
  std::vector<std::string> el;
  for (const auto& [N, pts] : by_n) {
    const std::string name = "N " + std::to_string(k), colour = quote(gnuplot::series_colour(k));
    data.begin(name + " measured", "N=" + num(N) + "; columns: D best_smoothed_loss");
    for (const auto& [D, l] : pts) data.row({D, l});
    data.begin(name + " law", "N=" + num(N) + "; fitted L(N, D); columns: D loss");
    for (double D : log_grid(dlo / 1.5, dhi * 1.5, 60)) data.row({D, law.predict(N, D)});
    el.push_back(DataBlocks::source(name + " law") + " using 1:2 with lines lw 2 lc rgb " + colour + " notitle");
    el.push_back(DataBlocks::source(name + " measured") + " using 1:2 with points pt 7 ps 1.3*PS lc rgb " + colour +
                 " title " + quote("N = " + format_short(N)));
    ++k;
  }
  f.data = data.text();
  const double pad = 0.08 * (lhi - llo + 1e-3);
  f.plot = "set title " + quote(f.title) + "\n" + "set key outside right top title \"model size\" font \",11\"\n" +
           gnuplot::log_axis("x", dlo, dhi, "training tokens D", 1.5) + "set yrange [" + num(llo - pad) + ":" +
           num(lhi + pad) + "]\nset format y \"%.2f\"\nset ylabel \"best smoothed final loss\"\n" +
           gnuplot::plot_command(el);
  f.width = 720;
  char buf[256];
  std::snprintf(buf, sizeof buf, "L(N, D) = %.4g + %.4g / N^%.3f + %.4g / D^%.3f", law.E.estimate, law.A.estimate,
                law.alpha.estimate, law.B.estimate, law.beta.estimate);
  f.caption = std::string("Points: the best smoothed loss of each cell; lines: the fitted ") + buf +
              " (Huber loss on log L, " + std::to_string(law.cells) + " cells), one colour per model size.";
  s.figures.push_back(std::move(f));
  return s;
}

}  // namespace hpsweep
