// The report's own sections, summary and sweep health (the fit and transfer sections are in
// report_fits.cpp and report_transfer.cpp), the list of default sections, and the loop that
// builds them.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <map>
#include <optional>
#include <set>

#include "hpsweep/reports/fit_text.hpp"
#include "hpsweep/util/error.hpp"
#include "hpsweep/util/text.hpp"
#include "reports/gnuplot.hpp"
#include "reports/report_parts.hpp"

namespace hpsweep {

using gnuplot::DataBlocks;
using gnuplot::num;
using gnuplot::quote;

namespace {

std::string interval_cells(const Interval& i, int digits = 4) {
  const std::string range = std::isfinite(i.lo) ? format_short(i.lo, digits) + " – " + format_short(i.hi, digits) : "–";
  return "<td>" + format_short(i.estimate, digits) + "</td><td>" + range + "</td>";
}

std::string table_row(const std::vector<std::string>& cells, bool header = false) {
  std::string s = "<tr>";
  for (const auto& c : cells) s += (header ? "<th>" : "<td>") + html_escape(c) + (header ? "</th>" : "</td>");
  return s + "</tr>\n";
}

const char* state_colour(TrialState s) {
  switch (s) {
    case TrialState::Done:
      return "#009e73";
    case TrialState::Diverged:
      return "#e69f00";
    case TrialState::Failed:
      return "#d55e00";
    case TrialState::Timeout:
      return "#cc79a7";
    case TrialState::Lost:
      return "#7f7f7f";
    case TrialState::Unavailable:
      return "#f0e442";
    case TrialState::Running:
      return "#0072b2";
    case TrialState::Pending:
      return "#c8c8c8";
  }
  return "#000000";
}

ReportFigure states_figure(const SweepStatus& st) {
  ReportFigure f;
  f.name = "health_states";
  f.height = 400;
  f.title = "Trials per state";
  DataBlocks data;
  std::string tics;
  std::vector<std::string> el;
  std::size_t total = 0, top = 0;
  for (int i = 0; i <= static_cast<int>(kLastTrialState); ++i) {
    const auto state = static_cast<TrialState>(i);
    const std::size_t n = st.by_state.count(state) ? st.by_state.at(state) : 0;
    total += n;
    top = std::max(top, n);
    data.begin(to_string(state), "columns: position trials");
    data.row({static_cast<double>(i), static_cast<double>(n)});
    tics += std::string(i ? ", " : "") + quote(to_string(state)) + " " + std::to_string(i);
    el.push_back(DataBlocks::source(to_string(state)) + " using 1:2 with boxes fs solid 0.85 noborder lc rgb " +
                 quote(state_colour(state)) + " notitle");
    el.push_back(DataBlocks::source(to_string(state)) +
                 " using 1:2:(sprintf(\"%d\", $2)) with labels offset 0,0.8 notitle");
  }
  f.data = data.text();
  f.plot = "set title " + quote("Trials per state (" + std::to_string(total) + " grid points)") + "\n" +
           "set style fill solid\nset boxwidth 0.65\nset xtics (" + tics + ") font \",11\"\nset xrange [-0.6:6.6]\n" +
           "set yrange [0:" + num(std::max<double>(1, top * 1.15)) +
           "]\nset ylabel \"trials\"\nset grid noxtics ytics\n" + "unset key\n" + gnuplot::plot_command(el);
  f.caption = "Latest state of every grid point (PENDING: not run yet; LOST: in flight when its launch ended).";
  return f;
}

struct Timeline {
  ReportFigure figure;
  std::string table_html;
};

// Every recorded attempt as a bar from its start to its end on its rank's row; launches are
// concatenated so that days between resumes do not squeeze the bars.
std::optional<Timeline> timeline_figure(const SweepLog& log) {
  std::map<std::int32_t, std::vector<const TrialRecord*>> by_launch;
  for (const auto& r : log.results)
    if (r.rank >= 0 && r.wall_time > 0 && r.start_time > 0) by_launch[r.launch].push_back(&r);
  if (by_launch.empty()) return std::nullopt;

  struct Span {
    double begin = 0, end = 0;
  };
  std::map<std::int32_t, Span> spans;
  double total = 0;
  for (const auto& [launch, recs] : by_launch) {
    Span sp{HUGE_VAL, 0};
    for (const auto* r : recs)
      sp.begin = std::min(sp.begin, r->start_time), sp.end = std::max(sp.end, r->start_time + r->wall_time);
    spans[launch] = sp;
    total += sp.end - sp.begin;
  }
  const double unit = total > 5 * 3600 ? 3600 : total > 300 ? 60 : 1;
  const std::string unit_name = unit == 3600 ? "h" : unit == 60 ? "min" : "s";

  DataBlocks data;
  std::map<std::int32_t, std::pair<double, std::size_t>> busy;  // rank -> busy seconds, attempts
  std::set<std::int32_t> ranks;
  std::map<TrialState, std::vector<std::array<double, 3>>> bars;  // state -> (rank, start, end) in units
  std::string arrows;
  double offset = 0;
  for (const auto& [launch, recs] : by_launch) {
    const Span sp = spans[launch];
    if (by_launch.size() > 1) {
      arrows += "set arrow from " + num(offset / unit) + ", graph 0 to " + num(offset / unit) +
                ", graph 1 nohead lc rgb \"#404040\" dt 3\n";
      arrows += "set label " + quote("launch " + std::to_string(launch)) + " at " + num(offset / unit) +
                ", graph 1 offset 0.4,-0.8 font \",10\"\n";
    }
    for (const auto* r : recs) {
      const double s = offset + r->start_time - sp.begin;
      bars[r->outcome.state].push_back({static_cast<double>(r->rank), s / unit, (s + r->wall_time) / unit});
      busy[r->rank].first += r->wall_time;
      ++busy[r->rank].second;
      ranks.insert(r->rank);
    }
    offset += sp.end - sp.begin;
  }
  std::vector<std::string> el;
  for (const auto& [state, rows] : bars) {
    data.begin(to_string(state), "columns: mid rank start end rank_lo rank_hi (time in " + unit_name + ")");
    for (const auto& b : rows) data.row({(b[1] + b[2]) / 2, b[0], b[1], b[2], b[0] - 0.38, b[0] + 0.38});
    el.push_back(DataBlocks::source(to_string(state)) +
                 " using 1:2:3:4:5:6 with boxxyerror fs solid 0.9 border lc rgb \"#ffffff\" " + "fc rgb " +
                 quote(state_colour(state)) + " title " + quote(to_string(state)));
  }
  Timeline t;
  ReportFigure& f = t.figure;
  f.name = "health_timeline";
  f.title = "Trials per rank over time";
  f.data = data.text();
  const int lo = *ranks.begin(), hi = *ranks.rbegin();
  f.width = 960;
  f.height = std::clamp(160 + 26 * (hi - lo + 1), 300, 900);
  f.plot = "set title " + quote(f.title) + "\n" + "set xlabel " +
           quote(std::string("wall time (") + unit_name + (by_launch.size() > 1 ? ", launches concatenated)" : ")")) +
           "\nset ylabel \"rank\"\nset yrange [" + num(lo - 0.7) + ":" + num(hi + 0.7) + "]\nset ytics 1\n" +
           (hi - lo > 30 ? "set ytics 5\n" : "") + "set xrange [0:" + num(total / unit * 1.02) + "]\n" +
           "set grid xtics noytics\nset key outside right top vertical\n" + arrows + gnuplot::plot_command(el);
  double busy_total = 0;
  for (const auto& [rank, b] : busy) busy_total += b.first;
  const double utilisation = total > 0 ? busy_total / (total * static_cast<double>(ranks.size())) : 0;
  f.caption = "One bar per attempt, coloured by how it ended. Workers were busy " + format_short(100 * utilisation, 3) +
              "% of the wall time of the launches (" + std::to_string(ranks.size()) + " ranks recorded results).";
  t.table_html = "<table><thead>" + table_row({"rank", "attempts", "busy", "utilisation"}, true) + "</thead><tbody>\n";
  for (const auto& [rank, b] : busy)
    t.table_html += table_row({std::to_string(rank), std::to_string(b.second), format_duration(b.first),
                               format_short(total > 0 ? 100 * b.first / total : 0, 3) + "%"});
  t.table_html += "</tbody></table>\n";
  return t;
}

std::string launches_table(const std::vector<LaunchRecord>& launches) {
  std::string s =
      "<table><thead>" +
      table_row({"launch", "started (UTC)", "duration", "ranks", "trials recorded", "ended", "command"}, true) +
      "</thead><tbody>\n";
  for (const auto& l : launches)
    s += table_row({std::to_string(l.index), iso8601_utc(l.start_time),
                    l.end_time > 0 ? format_duration(l.end_time - l.start_time) : "–", std::to_string(l.ranks),
                    std::to_string(l.trials_recorded),
                    l.ended + (l.slurm_job_id.empty() ? "" : " (Slurm job " + l.slurm_job_id + ")"), l.command});
  return s + "</tbody></table>\n";
}

}  // namespace

ReportSection summary_section(const ReportInput& in) {
  ReportSection s;
  s.id = "summary";
  s.title = "Summary";
  std::string& h = s.html;
  if (in.transfer) {
    // A width sweep's headline: how the optimal learning rate moves with width.
    h += "<h3>Transfer across widths</h3>\n<ul>\n";
    for (const auto& g : in.transfer->groups) {
      h += "<li>" + html_escape(g.variant.empty() ? g.parametrization : g.variant + " (" + g.parametrization + ")") +
           ": ";
      if (!g.lr_law) {
        h += "no exponent (fewer than 2 widths with an optimum)</li>\n";
        continue;
      }
      const Interval& k = g.lr_law->coefs[1];
      char buf[160];
      std::snprintf(buf, sizeof buf, "η* ∝ w<sup>κ</sup> with κ = %.3f [%.3f, %.3f]", k.estimate, k.lo, k.hi);
      h += buf;
      if (!g.verdict.empty())
        h += " — theory " + format_short(g.theory_kappa) + ": " +
             html_escape(g.verdict.substr(g.verdict.rfind(": ") + 2));
      if (in.transfer->target_width > 0)
        h += "; at the target width " + format_short(in.transfer->target_width) +
             ": η* = " + format_short(g.lr_law->predict(in.transfer->target_width, 1));
      h += "</li>\n";
    }
    h += "</ul>\n";
  }
  if (!in.fit) {
    h += "<p class=\"missing\">No scaling-law fit, so no prediction: " + html_escape(in.fit_error) + ".</p>\n";
    return s;
  }
  const FitReport& r = *in.fit;
  h += "<p>" + std::to_string(r.trials_used) + " runs in " + std::to_string(r.optima.size()) +
       " fitted (N, D) cells; selection " + html_escape(r.options.selection.text()) + "; " +
       std::to_string(r.options.bootstrap.resamples) + " bootstrap resamples of " +
       (r.options.bootstrap.by_cell ? "cells" : "points") + ".</p>\n";
  if (r.prediction) {
    const Prediction& p = *r.prediction;
    h += "<h3>Prediction for N = " + html_escape(format_short(r.target_params)) +
         ", D = " + html_escape(format_short(r.target_tokens)) + " tokens</h3>\n";
    h += "<table class=\"prediction\"><thead><tr><th>quantity</th><th>estimate</th><th>95% "
         "interval</th></tr></thead><tbody>\n";
    h += "<tr><td>peak learning rate</td>" + interval_cells(p.lr) + "</tr>\n";
    h += "<tr><td>batch size (tokens)</td>" + interval_cells(p.batch_tokens) + "</tr>\n";
    const double seq = static_cast<double>(r.seq_len);
    h += "<tr><td>batch size (sequences of " + std::to_string(r.seq_len) + ")</td><td>" +
         format_short(std::round(p.batch_sequences)) + "</td><td>" + format_short(std::round(p.batch_tokens.lo / seq)) +
         " – " + format_short(std::round(p.batch_tokens.hi / seq)) + "</td></tr>\n";
    if (p.has_wd) h += "<tr><td>weight decay</td>" + interval_cells(p.wd) + "</tr>\n";
    if (p.has_loss) h += "<tr><td>final loss</td>" + interval_cells(p.loss) + "</tr>\n";
    h += "</tbody></table>\n";
    h += "<table><thead>" + table_row({"published law at the target", "learning rate", "batch size (tokens)"}, true) +
         "</thead><tbody>\n";
    for (const auto& pub : r.published)
      h += table_row({pub.name, format_short(pub.lr, 4), format_short(pub.batch_tokens, 4)});
    h += "</tbody></table>\n";
  } else {
    h += "<p class=\"missing\">No target: give <code>--target-params</code> and <code>--target-tokens</code> "
         "(or [target] in the job) for a prediction.</p>\n";
  }
  h += "<h3>Laws</h3>\n<table><thead>" +
       table_row({"law", "R²", "cells", "coefficient", "estimate", "95% interval"}, true) + "</thead><tbody>\n";
  for (const auto* law : {&r.lr_law, &r.batch_law, &r.lr_compute, &r.batch_compute, &r.tau_law}) {
    if (!*law) continue;
    for (std::size_t k = 0; k < (*law)->coefs.size(); ++k) {
      const Interval& i = (*law)->coefs[k];
      h += "<tr>" +
           (k == 0 ? "<td rowspan=\"" + std::to_string((*law)->coefs.size()) + "\">" + html_escape((*law)->formula) +
                         "</td><td rowspan=\"" + std::to_string((*law)->coefs.size()) + "\">" +
                         format_short((*law)->r2, 3) + "</td><td rowspan=\"" + std::to_string((*law)->coefs.size()) +
                         "\">" + std::to_string((*law)->cells) + "</td>"
                   : "") +
           "<td>" + html_escape((*law)->coef_names[k]) + "</td>" + interval_cells(i) + "</tr>\n";
    }
  }
  h += "</tbody></table>\n";
  if (!r.tau_law) h += "<p>Weight decay: " + html_escape(r.tau_note) + ".</p>\n";
  h += "<h3>Warnings</h3>\n";
  if (r.warnings.empty() && r.skipped_cells.empty()) h += "<p>The reducer raised no warnings.</p>\n";
  h += "<ul class=\"warnings\">\n";
  for (const auto& w : r.warnings) h += "<li>" + html_escape(w) + "</li>\n";
  for (const auto& c : r.skipped_cells) h += "<li>cell skipped: " + html_escape(c) + "</li>\n";
  h += "</ul>\n";
  h += "<details><summary>Full output of <code>hpsweep fit</code> (also in fit.txt and fit.json)</summary><pre>" +
       html_escape(format_fit(r)) + "</pre></details>\n";
  return s;
}

ReportSection health_section(const ReportInput& in) {
  ReportSection s;
  s.id = "health";
  s.title = "Sweep health";
  std::string problem;
  const SweepStatus st = status_of(in.log, &problem);
  if (!problem.empty())
    s.html += "<p class=\"missing\">No per-state counts: " + html_escape(problem) + "</p>\n";
  else
    s.figures.push_back(states_figure(st));
  if (auto t = timeline_figure(in.log)) {
    s.figures.push_back(std::move(t->figure));
    s.html += "<details><summary>Utilisation per rank</summary>" + t->table_html + "</details>\n";
  } else {
    s.html +=
        "<p class=\"missing\">No per-rank timeline: no recorded attempt has a rank and a wall time "
        "(results that were ingested, not run).</p>\n";
  }
  s.html += "<h3>Launches</h3>\n" +
            (in.log.launches.empty() ? std::string("<p>No launches recorded.</p>\n") : launches_table(in.log.launches));
  return s;
}

std::vector<SectionBuilder> default_sections() {
  // A new section is one more builder here.
  return {summary_section, cells_section, laws_section, loss_section, transfer_section, health_section};
}

std::vector<ReportSection> build_sections(const ReportInput& in, const std::vector<SectionBuilder>& builders,
                                          std::vector<std::string>& problems) {
  std::vector<ReportSection> sections;
  for (const auto& build : builders) {
    try {
      sections.push_back(build(in));
    } catch (const Error& e) {  // one broken section must not cost the others
      ReportSection broken;
      broken.id = "section" + std::to_string(sections.size() + 1);
      broken.title = "Section " + std::to_string(sections.size() + 1);
      broken.missing = std::string("could not be produced: ") + e.what();
      problems.push_back(broken.title + " " + broken.missing);
      sections.push_back(std::move(broken));
    }
  }
  return sections;
}

}  // namespace hpsweep
