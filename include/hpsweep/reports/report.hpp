#pragma once
// `hpsweep report FILE --out DIR`: a folder that opens in a browser (DIR/index.html, offline,
// inline CSS, no scripts) with the per-cell loss landscapes, the fitted laws against the published
// ones, the loss law and the health of the sweep. Every figure is a gnuplot script beside its data
// (DIR/figures/NAME.gp + NAME.dat) that renders NAME.svg and NAME.png; users can edit and rerun it.
//
// A report is a list of sections (default_sections()); each turns the sweep into an HTML fragment
// and figures, or says why it cannot. To add a section, write a SectionBuilder and append it there.
#include <functional>
#include <string>
#include <vector>

#include "hpsweep/reducer/cells.hpp"
#include "hpsweep/reducer/fit.hpp"
#include "hpsweep/store/records.hpp"
#include "hpsweep/transfer/transfer_fit.hpp"

namespace hpsweep {

struct ReportOptions {
  FitOptions fit;                   // as `hpsweep fit` takes them
  std::string out_dir;              // created if missing; files of an earlier report are overwritten
  std::string gnuplot = "gnuplot";  // program name (searched in PATH) or path
  bool png = true;                  // also render NAME.png (2x, for slides)
};

// One figure: figures/NAME.dat holds `data`, figures/NAME.gp sets the terminal and runs `plot`.
struct ReportFigure {
  std::string name;               // file stem, [a-z0-9_] only
  std::string title;              // short heading above the figure (plain text)
  std::string caption;            // plain text under the figure
  std::string data;               // text data file; named blocks ("# NAME" then rows, blocks 2 blank lines apart)
  std::string plot;               // gnuplot commands after the terminal is set; the data file is DATA_FILE;
                                  // scale point sizes by PS ("ps 1.5*PS"): it evens out svg and png
  int width = 640, height = 480;  // SVG size in pixels (the PNG is twice as large)
};

struct ReportSection {
  std::string id;  // HTML anchor
  std::string title;
  std::string html;  // fragment shown above the figures (already escaped)
  std::vector<ReportFigure> figures;
  std::string missing;  // non-empty: why this section has nothing to show (plain text)
};

// What every section may draw from. `fit` is null when no fit could be made (see fit_error).
struct ReportInput {
  const SweepLog& log;
  std::string sweep_path;
  const ReportOptions& options;
  std::vector<Cell> cells;
  const FitReport* fit = nullptr;
  std::string fit_error;
  // Width sweeps (mlp backend or [variants]): the transfer fit, or why there is none.
  const TransferReport* transfer = nullptr;
  std::string transfer_error;
  const FitRecord* coordcheck = nullptr;  // the latest stored `hpsweep coordcheck`, if any
};

using SectionBuilder = std::function<ReportSection(const ReportInput&)>;

// Summary (prediction, laws, warnings), per-cell landscapes, laws, loss law, transfer across
// widths, sweep health.
std::vector<SectionBuilder> default_sections();
ReportSection summary_section(const ReportInput& in);
ReportSection cells_section(const ReportInput& in);
ReportSection laws_section(const ReportInput& in);
ReportSection loss_section(const ReportInput& in);
ReportSection health_section(const ReportInput& in);
ReportSection transfer_section(const ReportInput& in);

struct ReportResult {
  std::string index_path;
  std::size_t figures = 0, rendered = 0;
  bool gnuplot_found = true;
  std::vector<std::string> problems;  // figures not rendered and why (also shown in index.html)
};

// Writes the whole report. Throws Error when the output folder cannot be written; a missing
// gnuplot or a failed figure is not an error: the scripts and data are written and it is said.
ReportResult write_report(const SweepLog& log, const std::string& sweep_path, const ReportOptions& options,
                          const std::vector<SectionBuilder>& sections = default_sections());

std::string html_escape(const std::string& text);

}  // namespace hpsweep
