// The lightning layout: a Lightning CSVLogger folder, version_N/metrics.csv (a header, then one
// row per logging call; a row leaves the columns it did not log empty) + version_N/hparams.yaml.
#include <string>
#include <vector>

#include "hpsweep/util/text.hpp"
#include "ingest/log_ingest_common.hpp"

namespace hpsweep {

using namespace log_ingest_detail;

namespace {

// One CSV row (RFC 4180 quoting; a quoted field does not span lines in metrics.csv).
bool split_csv_row(std::string_view line, std::vector<std::string>& cells) {
  cells.clear();
  std::string cell;
  bool quoted = false;
  for (std::size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
        cell += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        cell += c;
      }
    } else if (c == '"' && cell.empty()) {
      quoted = true;
    } else if (c == ',') {
      cells.push_back(std::move(cell));
      cell.clear();
    } else {
      cell += c;
    }
  }
  cells.push_back(std::move(cell));
  return !quoted;
}

}  // namespace

ParsedRun parse_lightning_run(const RunFile& metrics_csv, const RunFile& hparams_yaml,
                              const LogIngestOptions& options) {
  const std::size_t bytes = metrics_csv.text.size() + hparams_yaml.text.size();
  const std::string& where = metrics_csv.where;
  try {
    check_options(options, where);
    const std::vector<std::string> tags = loss_tags(options);
    const std::vector<Line> lines = split_lines(metrics_csv.text);
    std::size_t i = 0;
    while (i < lines.size() && blank(lines[i].text)) ++i;
    if (i == lines.size()) fail(where, 0, "empty metrics.csv (no header)");
    std::vector<std::string> header;
    if (!split_csv_row(lines[i].text, header)) fail(where, lines[i].number, "unclosed quote in the header");
    std::size_t step_col = header.size();
    std::vector<std::pair<std::size_t, std::string>> loss_cols;  // column, tag
    for (std::size_t k = 0; k < header.size(); ++k) {
      const std::string name = trim(header[k]);
      if (name == "step") step_col = k;
      for (const auto& t : tags)
        if (name == t) loss_cols.emplace_back(k, t);
    }
    if (step_col == header.size()) fail(where, lines[i].number, "no \"step\" column in the header");
    std::map<std::string, std::vector<Point>> curves;
    std::vector<std::string> cells;
    for (++i; i < lines.size(); ++i) {
      const Line& l = lines[i];
      if (blank(l.text)) continue;
      const bool closed = split_csv_row(l.text, cells);
      if (!l.terminated && (!closed || cells.size() != header.size())) break;  // still being written
      if (!closed) fail(where, l.number, "unclosed quote");
      if (cells.size() != header.size())
        fail(where, l.number, std::to_string(cells.size()) + " cells, the header has " + std::to_string(header.size()));
      for (const auto& [col, tag] : loss_cols) {
        const std::string v = trim(cells[col]);
        if (v.empty()) continue;
        Point p;
        p.line = l.number;
        if (!parse_whole(cells[step_col], p.step))
          fail(where, l.number, "step must be a whole number from 0 to 2^53, got " + shown(cells[step_col]));
        if (!parse_double(v, p.loss)) fail(where, l.number, "\"" + tag + "\" is not a number: " + shown(v));
        append_point(curves[tag], p, where);
      }
    }
    const std::vector<Point>& curve = pick_loss_curve(curves, options, where);
    if (hparams_yaml.where.empty()) fail(directory_of(where), 0, "no hparams.yaml beside metrics.csv");
    FlatConfig c;
    flatten_config(hparams_yaml, c);
    const Hyper h = hyper_from_config(c, hparams_yaml.where, options);
    return finish_run(curve, where, h, directory_of(where), bytes);
  } catch (const BadRun& e) {
    return failed(e.message, bytes);
  }
}

}  // namespace hpsweep
