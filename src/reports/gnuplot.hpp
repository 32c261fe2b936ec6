#pragma once
// gnuplot for `hpsweep report`: the script around a figure's plot commands, small helpers to
// write those commands, and the runner (a child process, no shell).
#include <initializer_list>
#include <string>
#include <vector>

#include "hpsweep/reports/report.hpp"

namespace hpsweep::gnuplot {

// A figure's data file as named blocks; `index "[NAME]"` in gnuplot selects one. Blocks without
// rows are left out of the file (gnuplot cannot plot them): check has_rows() before plotting one.
class DataBlocks {
 public:
  void begin(const std::string& name, const std::string& columns);
  void row(std::initializer_list<double> values);
  void comment(const std::string& text);  // a comment line in the current block
  bool has_rows(const std::string& name) const;
  std::string text() const;
  // `DATA_FILE index "[NAME]"`, for a plot command.
  static std::string source(const std::string& name);

 private:
  struct Block {
    std::string name, header, rows;
    std::size_t count = 0;
  };
  std::vector<Block> blocks_;
};

// "plot e1, \\\n     e2 ...\n" over the non-empty elements.
std::string plot_command(const std::vector<std::string>& elements);

// The whole NAME.gp: a header saying how to rerun it, then a loop over the output formats
// (svg, and png unless `png` is false) that sets the terminal and runs the figure's commands.
std::string script(const ReportFigure& figure, bool png);

// A number for a data file or a script: shortest round-trip-safe text.
std::string num(double v);
// A double-quoted gnuplot string literal (a newline becomes \\n).
std::string quote(const std::string& text);
// `set logscale AXIS` with a padded range [lo/pad, hi*pad], readable tick labels (10^{k} when the
// range spans a decade or more, plain numbers otherwise) and the axis label.
std::string log_axis(const std::string& axis, double lo, double hi, const std::string& label, double pad = 1.25);

// Colour-blind-safe series colours (Okabe-Ito), as "#rrggbb"; cycles.
std::string series_colour(std::size_t i);
// The viridis-like palette for loss maps (dark = low loss).
extern const char* const kLossPalette;

struct RunResult {
  enum Status { Rendered, NotFound, Failed } status = Rendered;
  std::string message;  // NotFound / Failed: what happened (gnuplot's standard error, tail)
};
// Runs `program script_name` in `dir` with standard input from /dev/null.
RunResult run(const std::string& program, const std::string& dir, const std::string& script_name);

}  // namespace hpsweep::gnuplot
