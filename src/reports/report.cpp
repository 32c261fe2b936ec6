// `hpsweep report`: analyses the sweep (report_analysis.cpp), builds the sections from that
// analysis (report_sections.cpp, report_fits.cpp, report_transfer.cpp) and lays them out as
// figure scripts, data, rendered figures and one offline HTML page (report_layout.cpp).
#include "hpsweep/reports/report.hpp"
#include "hpsweep/reports/fit_text.hpp"

#include "reports/report_parts.hpp"

namespace hpsweep {

ReportResult write_report(const SweepLog& log, const std::string& sweep_path, const ReportOptions& options,
                          const std::vector<SectionBuilder>& builders) {
  create_report_folder(options.out_dir);
  const ReportAnalysis analysis = analyse_sweep(log, options.fit);
  const ReportInput in = analysis.input(log, sweep_path, options);

  ReportResult result;
  const std::vector<ReportSection> sections = build_sections(in, builders, result.problems);
  // Data and scripts first: they are the report's source even when nothing can be rendered.
  write_report_sources(options.out_dir, sections, options.png, in.fit);
  const RenderedFigures rendered = render_figures(options.out_dir, sections, options.gnuplot, result);
  result.index_path = write_index(options.out_dir, log, sweep_path, options.png, sections, rendered, result.problems);
  return result;
}

}  // namespace hpsweep
