// The report section for sweeps over widths: loss against learning rate per width under each
// parametrization, the measured optimum against width with the fitted eta* = c w^kappa, and the
// coordinate check stored by `hpsweep coordcheck`.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <set>
#include <sstream>

#include "hpsweep/reports/report.hpp"
#include "hpsweep/transfer/coordcheck.hpp"
#include "hpsweep/util/json_value.hpp"
#include "hpsweep/util/text.hpp"
#include "reports/gnuplot.hpp"

namespace hpsweep {

using gnuplot::DataBlocks;
using gnuplot::num;
using gnuplot::quote;

namespace {

std::string parametrization_label(const std::string& p) {
  return p == "mup" ? "μP" : p == "umup" ? "u-μP" : p == "sp" ? "SP" : p;
}

std::string group_label(const TransferGroup& g) {
  const std::string p = parametrization_label(g.parametrization);
  return (g.variant.empty() || g.variant == g.parametrization ? p : g.variant + " (" + p + ")") +
         (g.tokens > 0 ? ", D = " + format_short(g.tokens) : "");
}

std::string kappa_text(const TransferGroup& g) {
  if (!g.lr_law) return "no exponent";
  const Interval& k = g.lr_law->coefs[1];
  char buf[128];
  std::snprintf(buf, sizeof buf, "κ = %.2f [%.2f, %.2f]", k.estimate, k.lo, k.hi);
  return buf;
}

std::string stem(const std::string& prefix, const std::string& name) {
  std::string s = prefix + "_" + to_lower(name);
  for (char& c : s)
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  return s;
}

// Width axis: log base 2 with a tick at every swept width.
std::string width_axis(const std::set<double>& widths) {
  std::string s = "set logscale x 2\nset xrange [" + num(*widths.begin() / 1.3) + ":" + num(*widths.rbegin() * 1.3) +
                  "]\nset xtics (";
  bool first = true;
  for (double w : widths) s += (first ? "" : ", ") + quote(format_short(w)) + " " + num(w), first = false;
  return s + ")\nset mxtics default\nset xlabel \"width\"\n";
}

ReportFigure curves_figure(const TransferGroup& g, std::size_t index) {
  ReportFigure f;
  // The index keeps names unique when two variants differ only in case or punctuation.
  f.name = stem("transfer_curves_" + std::to_string(index + 1), g.variant.empty() ? g.parametrization : g.variant);
  f.title = group_label(g) + ": loss against learning rate per width";
  DataBlocks data;
  std::vector<std::string> el;
  double xlo = HUGE_VAL, xhi = 0, ylo = HUGE_VAL;
  std::vector<double> finite;
  for (std::size_t k = 0; k < g.widths.size(); ++k) {
    const WidthOptimum& o = g.widths[k];
    const std::string name = "w " + std::to_string(k), colour = quote(gnuplot::series_colour(k));
    data.begin(name, "width=" + num(o.width) + "; columns: lr mean_loss seeds diverged");
    for (const auto& p : o.lr_curve) {
      xlo = std::min(xlo, p.x), xhi = std::max(xhi, p.x);
      if (std::isfinite(p.loss)) {
        data.row({p.x, p.loss, static_cast<double>(p.seeds), static_cast<double>(p.diverged)});
        finite.push_back(p.loss);
        ylo = std::min(ylo, p.loss);
      }
    }
    if (data.has_rows(name))
      el.push_back(DataBlocks::source(name) + " using 1:2 with linespoints lw 2 pt 7 ps 0.8*PS lc rgb " + colour +
                   " title " + quote("w = " + format_short(o.width)));
    if (std::isfinite(o.lr)) {
      data.begin(name + " optimum", "the fitted optimum lr* and the best mean loss; columns: lr loss");
      data.row({o.lr, o.loss});
      el.push_back(DataBlocks::source(name + " optimum") + " using 1:2 with points pt 9 ps 2.2*PS lc rgb " + colour +
                   " notitle");
    }
  }
  if (finite.empty()) return f;
  std::sort(finite.begin(), finite.end());
  // Show the bowls, not the blow-ups next to divergence: up to the 75th percentile of the losses.
  const double yhi = finite[static_cast<std::size_t>(0.75 * static_cast<double>(finite.size() - 1))];
  const double pad = 0.06 * (yhi - ylo + 1e-3);
  f.data = data.text();
  f.plot = "set title " + quote(group_label(g) + ": " + kappa_text(g)) +
           "\nset key outside right top title \"width\" font \",11\"\n" +
           gnuplot::log_axis("x", xlo, xhi, "peak learning rate η", 1.2) + "set yrange [" + num(ylo - pad) + ":" +
           num(yhi + pad) + "]\nset format y \"%.2f\"\nset ylabel \"final held-out loss (mean over seeds)\"\n" +
           gnuplot::plot_command(el);
  f.width = 700;
  f.caption =
      "Mean final loss over seeds against the peak learning rate, one colour per width; the triangle marks each "
      "width's optimum (parabola vertex in log η through the best point and its neighbours). Runs that diverged "
      "for any seed are left out of a curve.";
  return f;
}

ReportFigure optimum_figure(const TransferReport& r) {
  ReportFigure f;
  f.name = "transfer_lr_vs_width";
  f.title = "Optimal learning rate against width";
  DataBlocks data;
  std::vector<std::string> el;
  std::set<double> widths;
  double ylo = HUGE_VAL, yhi = 0;
  for (std::size_t k = 0; k < r.groups.size(); ++k) {
    const TransferGroup& g = r.groups[k];
    const std::string name = "g " + std::to_string(k), colour = quote(gnuplot::series_colour(k));
    data.begin(name + " optima", group_label(g) + "; columns: width lr* lo hi (95% over seed resamples)");
    for (const auto& o : g.widths)
      if (std::isfinite(o.lr)) {
        data.row({o.width, o.lr, o.lr_boot.lo, o.lr_boot.hi});
        widths.insert(o.width);
        ylo = std::min(ylo, o.lr_boot.lo > 0 ? o.lr_boot.lo : o.lr), yhi = std::max(yhi, std::max(o.lr_boot.hi, o.lr));
      }
    if (!data.has_rows(name + " optima")) continue;
    el.push_back(DataBlocks::source(name + " optima") + " using 1:2:3:4 with yerrorbars pt 7 ps 1.1*PS lw 1.5 lc rgb " +
                 colour + " title " + quote(group_label(g) + " measured"));
    if (g.lr_law) {
      data.begin(name + " law", "fitted lr* = c w^kappa; columns: width lr");
      const double w0 = *widths.begin() / 1.2, w1 = *widths.rbegin() * 1.2;
      for (int i = 0; i <= 20; ++i) {
        const double w = w0 * std::pow(w1 / w0, i / 20.0);
        data.row({w, g.lr_law->predict(w, 1)});
      }
      el.push_back(DataBlocks::source(name + " law") + " using 1:2 with lines lw 2 dt 2 lc rgb " + colour + " title " +
                   quote(group_label(g) + " fit: " + kappa_text(g) +
                         (g.has_theory ? ", theory " + format_short(g.theory_kappa) : "")));
    }
  }
  if (widths.empty()) return f;
  f.data = data.text();
  // Room under the lowest optimum for the key, so it covers no point or line.
  f.plot = "set title " + quote(f.title) + "\nset key bottom left samplen 3 box opaque font \",11\"\n" +
           width_axis(widths) + gnuplot::log_axis("y", ylo / 3.5, yhi * 1.5, "optimal peak learning rate η*", 1.0) +
           gnuplot::plot_command(el);
  f.height = 540;
  f.width = 700;
  f.caption =
      "Each width's optimal learning rate with its 95% interval over seed resamples, and the fitted η* = c·w^κ "
      "(dashed). Under μP the optimum should not move with width (κ ≈ 0); under SP with Adam it falls about as "
      "1/width (κ ≈ −1).";
  return f;
}

// The coordinate check stored in /fits/coordcheck: mean |activation| after the last update vs width.
std::vector<ReportFigure> coordcheck_figures(const FitRecord& rec, const JsonValue& root);
std::vector<ReportFigure> coordcheck_figures(const FitRecord& rec, std::string* problem) {
  JsonValue root;
  std::string why;
  if (!parse_json_value(rec.json, root, why)) {
    *problem = "the stored coordinate check /fits/" + rec.name + " cannot be read: " + why;
    return {};
  }
  const JsonValue* layers = root.find("layers");
  const JsonValue* series = root.find("series");
  if (!layers || layers->kind != JsonValue::Kind::Array || !series || series->kind != JsonValue::Kind::Array) {
    *problem = "the stored coordinate check /fits/" + rec.name + " cannot be read: no \"layers\" and \"series\" arrays";
    return {};
  }
  return coordcheck_figures(rec, root);
}

// A stored number; null (a non-finite value) and anything else read as NaN.
double number_or_nan(const JsonValue* v) { return v && v->kind == JsonValue::Kind::Number ? v->number : NAN; }

std::vector<ReportFigure> coordcheck_figures(const FitRecord& rec, const JsonValue& root) {
  std::vector<ReportFigure> out;
  std::vector<std::string> layers;
  for (const auto& l : root.find("layers")->items) layers.push_back(l.text);
  // parametrization -> width -> last step's values
  std::map<std::string, std::map<double, std::vector<double>>> last;
  for (const auto& s : root.find("series")->items) {
    const JsonValue* p = s.find("parametrization");
    const JsonValue* steps = s.find("mean_abs");
    if (!p || !steps || steps->items.empty()) continue;
    std::vector<double> row;
    for (const auto& v : steps->items.back().items) row.push_back(number_or_nan(&v));
    last[p->text][number_or_nan(s.find("width"))] = row;
  }
  for (const auto& [param, by_width] : last) {
    ReportFigure f;
    f.name = stem("coordcheck_" + std::to_string(out.size() + 1), param);
    f.title = "Coordinate check, " + parametrization_label(param);
    DataBlocks data;
    std::vector<std::string> el;
    std::set<double> widths;
    double ylo = HUGE_VAL, yhi = 0;
    for (std::size_t l = 0; l < layers.size(); ++l) {
      const std::string name = "layer " + std::to_string(l);
      data.begin(name, layers[l] + "; columns: width mean_abs_activation (last step, mean over seeds)");
      for (const auto& [w, row] : by_width)
        if (l < row.size() && row[l] > 0 && std::isfinite(row[l])) {
          data.row({w, row[l]});
          widths.insert(w);
          ylo = std::min(ylo, row[l]), yhi = std::max(yhi, row[l]);
        }
      if (data.has_rows(name))
        el.push_back(DataBlocks::source(name) + " using 1:2 with linespoints lw 2 pt 7 ps 0.9*PS lc rgb " +
                     quote(gnuplot::series_colour(l)) + " title " + quote(layers[l]));
    }
    if (widths.empty()) continue;
    const JsonValue* all_slopes = root.find("slopes");
    const JsonValue* slopes = all_slopes ? all_slopes->find(param) : nullptr;
    std::string slope_text;
    if (slopes) {
      double mx = 0;
      for (const auto& v : slopes->items)
        mx = std::max(mx, std::fabs(v.kind == JsonValue::Kind::Number ? v.number : 0.0));
      char buf[64];
      std::snprintf(buf, sizeof buf, "largest |slope| in log width: %.2f", mx);
      slope_text = buf;
    }
    f.data = data.text();
    f.plot = "set title " + quote(f.title + (slope_text.empty() ? "" : " (" + slope_text + ")")) +
             "\nset key outside right top title \"layer\" font \",11\"\n" + width_axis(widths) +
             gnuplot::log_axis("y", ylo, yhi, "mean |activation| after the last step", 1.5) + gnuplot::plot_command(el);
    f.width = 640;
    const CoordCheckOptions o = CoordCheckOptions::parse(rec.options);
    f.caption = "Mean absolute activation of each layer's output after " + std::to_string(o.steps) +
                " Adam steps at a constant learning rate of " + format_short(o.lr) + " (batch " +
                std::to_string(o.batch) + ", mean over " + std::to_string(o.seeds) +
                " seeds), against width. Flat lines: the activations keep "
                "their size as the model widens, as μP intends; rising lines: the updates grow with width.";
    out.push_back(std::move(f));
  }
  return out;
}

}  // namespace

ReportSection transfer_section(const ReportInput& in) {
  ReportSection s;
  s.id = "transfer";
  s.title = "Transfer across widths";
  if (!in.transfer) {
    s.missing = in.transfer_error.empty() ? "no transfer fit" : in.transfer_error;
    return s;
  }
  const TransferReport& r = *in.transfer;
  std::string rows;
  for (const auto& g : r.groups) {
    rows += "<tr><td>" + html_escape(group_label(g)) + "</td><td>" + std::to_string(g.widths.size()) + "</td><td>";
    if (g.lr_law) {
      const Interval& k = g.lr_law->coefs[1];
      char buf[160];
      std::snprintf(buf, sizeof buf, "%.3f</td><td>[%.3f, %.3f]</td><td>%s", k.estimate, k.lo, k.hi,
                    g.has_theory ? format_short(g.theory_kappa).c_str() : "–");
      rows += buf;
    } else {
      rows += "–</td><td>–</td><td>–";
    }
    rows += "</td><td>" + html_escape(g.interval_method) + "</td></tr>\n";
  }
  s.html =
      "<p>η*(w) = c·w<sup>κ</sup> fitted per parametrization on each width's optimal learning rate "
      "(<code>hpsweep fit --transfer</code>).</p>\n<table><tr><th>parametrization</th><th>widths</th><th>κ</th>"
      "<th>95% interval</th><th>theory</th><th>interval from</th></tr>\n" +
      rows + "</table>\n";
  for (const auto& w : r.warnings) s.html += "<p class=\"warning\">" + html_escape(w) + "</p>\n";
  ReportFigure opt = optimum_figure(r);
  if (!opt.data.empty()) s.figures.push_back(std::move(opt));
  for (std::size_t i = 0; i < r.groups.size(); ++i) {
    ReportFigure f = curves_figure(r.groups[i], i);
    if (!f.data.empty()) s.figures.push_back(std::move(f));
  }
  if (in.coordcheck) {
    std::string problem;
    for (auto& f : coordcheck_figures(*in.coordcheck, &problem)) s.figures.push_back(std::move(f));
    if (!problem.empty()) s.html += "<p class=\"missing\">" + html_escape(problem) + "</p>\n";
  } else {
    s.html += "<p>No coordinate check is stored with this sweep: <code>hpsweep coordcheck " +
              html_escape(in.sweep_path) + "</code> adds one.</p>\n";
  }
  return s;
}

}  // namespace hpsweep
