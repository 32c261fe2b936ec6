#pragma once
// The three steps of write_report (report.cpp), private to src/reports: analyse the sweep into
// what the report shows (report_analysis.cpp), turn that into sections (report_sections.cpp,
// report_fits.cpp, report_transfer.cpp), and lay the sections out as files and index.html
// (report_layout.cpp).
#include <filesystem>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "hpsweep/reports/report.hpp"
#include "hpsweep/reports/status.hpp"

namespace hpsweep {

// ---- analysis: everything the sections draw from, computed once from the sweep

struct ReportAnalysis {
  std::optional<FitReport> fit;  // empty: fit_error says why
  std::string fit_error;
  std::vector<Cell> cells;                 // of the fit's variant when one is selected
  std::optional<TransferReport> transfer;  // width sweeps only; empty: transfer_error says why
  std::string transfer_error;
  const FitRecord* coordcheck = nullptr;  // into the log's fits

  // The sections' view; it points into this analysis, so keep the analysis alive and in place.
  ReportInput input(const SweepLog& log, const std::string& sweep_path, const ReportOptions& options) const;
};

ReportAnalysis analyse_sweep(const SweepLog& log, const FitOptions& fit_options);

// The sweep's status, or an empty one with `problem` set when it cannot be summarised.
SweepStatus status_of(const SweepLog& log, std::string* problem);

// ---- sections

// Runs every builder; one that throws becomes a section saying why, and a line in `problems`.
std::vector<ReportSection> build_sections(const ReportInput& in, const std::vector<SectionBuilder>& builders,
                                          std::vector<std::string>& problems);

// ---- layout

// Creates DIR/figures; throws Error when it cannot.
void create_report_folder(const std::filesystem::path& out_dir);

// Every figure's data and script, and fit.txt/fit.json when there is a fit: the report's source,
// written even when nothing can be rendered. Throws Error on a figure name that is not a unique stem.
void write_report_sources(const std::filesystem::path& out_dir, const std::vector<ReportSection>& sections, bool png,
                          const FitReport* fit);

struct RenderedFigures {
  std::set<std::string> names;  // figures with an SVG
  std::string not_found;        // non-empty: gnuplot was not found, and what running it said
};

// Runs gnuplot on every figure's script; counts and problems go into `result`.
RenderedFigures render_figures(const std::filesystem::path& out_dir, const std::vector<ReportSection>& sections,
                               const std::string& gnuplot_program, ReportResult& result);

// Assembles and writes DIR/index.html; returns its path.
std::string write_index(const std::filesystem::path& out_dir, const SweepLog& log, const std::string& sweep_path,
                        bool png, const std::vector<ReportSection>& sections, const RenderedFigures& rendered,
                        const std::vector<std::string>& problems);

}  // namespace hpsweep
