// The layout of `hpsweep report`: every figure's data and script, the figures rendered by
// gnuplot, and the one offline HTML page (inline CSS, no scripts) that shows the sections.
#include <filesystem>
#include <fstream>

#include "hpsweep/reports/fit_text.hpp"
#include "hpsweep/util/error.hpp"
#include "hpsweep/util/text.hpp"
#include "hpsweep/version.hpp"
#include "reports/gnuplot.hpp"
#include "reports/report_parts.hpp"

namespace hpsweep {

namespace fs = std::filesystem;

std::string html_escape(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

namespace {

void write_text(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw_system_error("cannot write", path.string());
  out << text;
  out.close();
  if (!out) throw_system_error("cannot write", path.string());
}

bool valid_stem(const std::string& name) {
  return !name.empty() && name.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_") == std::string::npos;
}

const char* kStyle = R"(
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 0; color: #1d1d1f; background: #fafafa; line-height: 1.45; }
header { background: #1f3a5f; color: #fff; padding: 18px 32px; }
header h1 { margin: 0 0 4px 0; font-size: 1.6em; }
header p { margin: 0; opacity: 0.85; }
nav { padding: 8px 32px; background: #e8edf3; position: sticky; top: 0; z-index: 1; }
nav a { margin-right: 18px; color: #1f3a5f; text-decoration: none; font-weight: 600; }
main { padding: 8px 32px 48px 32px; max-width: 1800px; }
section { margin-top: 28px; }
h2 { border-bottom: 2px solid #1f3a5f; padding-bottom: 4px; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(440px, 1fr)); gap: 20px; }
figure { margin: 0; background: #fff; border: 1px solid #ddd; border-radius: 6px; padding: 10px; }
figure.wide { grid-column: 1 / -1; }
figure h3 { margin: 0 0 6px 0; font-size: 1.0em; }
figure img { width: 100%; height: auto; display: block; }
figcaption { font-size: 0.88em; color: #444; margin-top: 6px; }
figcaption .files a { margin-right: 8px; }
.placeholder { border: 2px dashed #c00; color: #900; padding: 40px 12px; text-align: center; background: #fff6f6; }
.banner { border: 2px solid #c00; background: #fff0f0; color: #700; padding: 12px 16px; margin: 16px 0; border-radius: 6px; }
.missing { color: #8a4b00; background: #fff7e6; border-left: 4px solid #e69f00; padding: 6px 10px; }
table { border-collapse: collapse; margin: 8px 0 16px 0; background: #fff; font-size: 0.92em; }
th, td { border: 1px solid #d0d0d0; padding: 4px 10px; text-align: left; vertical-align: top; }
th { background: #eef2f7; }
table.prediction td:nth-child(2) { font-weight: 700; }
ul.warnings li { color: #8a4b00; }
pre { background: #fff; border: 1px solid #ddd; padding: 10px; overflow-x: auto; font-size: 0.85em; }
)";

std::string figure_html(const ReportFigure& f, bool rendered, bool png, const std::string& why_not) {
  const std::string base = "figures/" + f.name;
  std::string h = std::string("<figure") + (f.width > 800 ? " class=\"wide\"" : "") + " id=\"" + f.name + "\">\n";
  h += "<h3>" + html_escape(f.title) + "</h3>\n";
  if (rendered)
    h += "<a href=\"" + base + ".svg\"><img src=\"" + base + ".svg\" alt=\"" + html_escape(f.title) + "\"></a>\n";
  else
    h += "<div class=\"placeholder\">not rendered: " + html_escape(why_not) + "</div>\n";
  h += "<figcaption>" + html_escape(f.caption) + " <span class=\"files\">";
  if (rendered) h += "<a href=\"" + base + ".svg\">SVG</a>" + (png ? "<a href=\"" + base + ".png\">PNG</a>" : "");
  h += "<a href=\"" + base + ".gp\">script</a>" + (f.data.empty() ? "" : "<a href=\"" + base + ".dat\">data</a>");
  return h + "</span></figcaption>\n</figure>\n";
}

}  // namespace

void create_report_folder(const fs::path& out_dir) {
  const fs::path figures = out_dir / "figures";
  std::error_code ec;
  fs::create_directories(figures, ec);
  if (ec) throw Error("cannot create the report folder '" + figures.string() + "': " + ec.message());
}

void write_report_sources(const fs::path& out_dir, const std::vector<ReportSection>& sections, bool png,
                          const FitReport* fit) {
  const fs::path figures = out_dir / "figures";
  std::set<std::string> names;
  for (const auto& s : sections)
    for (const auto& f : s.figures) {
      if (!valid_stem(f.name) || !names.insert(f.name).second)
        throw Error("report: figure name '" + f.name + "' is not a unique [a-z0-9_] file stem");
      if (!f.data.empty()) write_text(figures / (f.name + ".dat"), f.data);
      write_text(figures / (f.name + ".gp"), gnuplot::script(f, png));
    }
  if (fit) {
    write_text(out_dir / "fit.txt", format_fit(*fit));
    write_text(out_dir / "fit.json", fit_json(*fit));
  }
}

RenderedFigures render_figures(const fs::path& out_dir, const std::vector<ReportSection>& sections,
                               const std::string& gnuplot_program, ReportResult& result) {
  const fs::path figures = out_dir / "figures";
  RenderedFigures rendered;
  for (const auto& s : sections)
    for (const auto& f : s.figures) {
      ++result.figures;
      if (!rendered.not_found.empty()) continue;
      const auto run = gnuplot::run(gnuplot_program, figures.string(), f.name + ".gp");
      if (run.status == gnuplot::RunResult::NotFound) {
        rendered.not_found = run.message;
        result.gnuplot_found = false;
      } else if (run.status == gnuplot::RunResult::Failed || !fs::exists(figures / (f.name + ".svg"))) {
        result.problems.push_back("figure " + f.name +
                                  " was not rendered: " + (run.message.empty() ? "gnuplot wrote no SVG" : run.message));
      } else {
        rendered.names.insert(f.name);
        ++result.rendered;
      }
    }
  return rendered;
}

std::string write_index(const fs::path& out_dir, const SweepLog& log, const std::string& sweep_path, bool png,
                        const std::vector<ReportSection>& sections, const RenderedFigures& rendered,
                        const std::vector<std::string>& problems) {
  const std::string& not_found = rendered.not_found;
  const SweepStatus st = status_of(log, nullptr);
  const std::string file_name = fs::path(sweep_path).filename().string();
  const std::string name = st.name.empty() ? file_name : log.job_text.empty() ? file_name + " " + st.name : st.name;
  std::string h =
      "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>hpsweep report: " +
      html_escape(name) + "</title>\n<style>" + kStyle + "</style>\n</head>\n<body>\n";
  h += "<header><h1>hpsweep report: " + html_escape(name) + "</h1><p>" + html_escape(sweep_path) + " · " +
       std::to_string(log.results.size()) + " trial records · " + std::to_string(log.launches.size()) +
       " launches · written " + html_escape(iso8601_utc(unix_now())) + " by hpsweep " + kToolVersion +
       "</p></header>\n<nav>";
  for (const auto& s : sections) h += "<a href=\"#" + s.id + "\">" + html_escape(s.title) + "</a>";
  h += "</nav>\n<main>\n";
  if (!not_found.empty()) {
    h += "<div class=\"banner\"><strong>Figures were not rendered: gnuplot was not found</strong> (" +
         html_escape(not_found) +
         "). Install it (Debian: <code>apt-get install gnuplot-nox</code>) and rerun <code>hpsweep report</code>, or "
         "run "
         "<code>gnuplot NAME.gp</code> in the <code>figures/</code> folder: every script and its data are "
         "there.</div>\n";
  }
  if (!problems.empty()) {
    h += "<div class=\"banner\"><strong>Problems while writing this report</strong><ul>\n";
    for (const auto& p : problems) h += "<li>" + html_escape(p) + "</li>\n";
    h += "</ul></div>\n";
  }
  for (const auto& s : sections) {
    h += "<section id=\"" + s.id + "\">\n<h2>" + html_escape(s.title) + "</h2>\n";
    if (!s.missing.empty()) h += "<p class=\"missing\">Not shown: " + html_escape(s.missing) + ".</p>\n";
    h += s.html;
    if (!s.figures.empty()) {
      h += "<div class=\"grid\">\n";
      for (const auto& f : s.figures)
        h += figure_html(
            f, rendered.names.count(f.name) > 0, png,
            not_found.empty() ? "gnuplot failed on this figure (see the problems above)" : "gnuplot was not found");
      h += "</div>\n";
    }
    h += "</section>\n";
  }
  h += "</main>\n</body>\n</html>\n";
  const std::string index_path = (out_dir / "index.html").string();
  write_text(index_path, h);
  return index_path;
}

}  // namespace hpsweep
