// The jsonl layout: <dir>/metrics.jsonl (one {"step": N, "loss": X} object a line) + <dir>/config.json.
#include "hpsweep/ingest/log_ingest.hpp"

#include <cmath>
#include <string>
#include <vector>

#include "hpsweep/util/text.hpp"
#include "ingest/log_ingest_common.hpp"

namespace hpsweep {

using namespace log_ingest_detail;

namespace {

std::vector<Point> read_jsonl_curve(const std::string& text, const std::string& where) {
  std::vector<Point> curve;
  JsonScratch scratch;
  for (const Line& l : split_lines(text)) {
    if (blank(l.text)) continue;
    pt::ptree tree;
    std::string why;
    std::size_t json_line = 0;
    if (!parse_json(l.text, tree, why, json_line, scratch)) {
      if (!l.terminated) break;  // the partial last line of a file still being written
      fail(where, l.number, why);
    }
    std::string step_text, loss_text;
    if (!json_scalar(tree, "step", step_text)) fail(where, l.number, "no \"step\"");
    if (!json_scalar(tree, "loss", loss_text)) fail(where, l.number, "no \"loss\"");
    Point p;
    p.line = l.number;
    if (!parse_whole(step_text, p.step))
      fail(where, l.number, "\"step\" must be a whole number from 0 to 2^53, got " + shown(step_text));
    if (to_lower(trim(loss_text)) == "null")
      p.loss = kNaN;
    else if (!parse_double(loss_text, p.loss))
      fail(where, l.number, "\"loss\" is not a number: " + shown(loss_text));
    append_point(curve, p, where);
  }
  return curve;
}

}  // namespace

ParsedRun parse_jsonl_run(const std::string& metrics_text, const std::string& metrics_where,
                          const std::string& config_text, const std::string& config_where,
                          const LogIngestOptions& options) {
  const std::size_t bytes = metrics_text.size() + config_text.size();
  try {
    check_options(options, config_where);
    const std::vector<Point> curve = read_jsonl_curve(metrics_text, metrics_where);
    if (curve.empty()) fail(metrics_where, 0, "no loss values (empty curve)");
    Hyper h = parse_config(config_text, config_where, options);
    std::int64_t target = h.train_steps;
    if (target == 0) {
      if (h.tokens <= 0) fail(config_where, 0, "missing \"tokens\" (training tokens D; or give \"train_steps\")");
      const double steps = std::ceil(h.tokens / (static_cast<double>(h.batch) * static_cast<double>(h.seq_len)));
      if (!(steps >= 1) || steps > kMaxWhole)
        fail(config_where, line_of(config_text, "\"tokens\""),
             "tokens / (batch * seq_len) = " + format_short(steps) + " steps is out of range");
      target = static_cast<std::int64_t>(steps);
    }
    if (h.tokens <= 0)
      h.tokens = static_cast<double>(target) * static_cast<double>(h.batch) * static_cast<double>(h.seq_len);
    check_positive(h.tokens, "tokens", config_where, 0);
    ParsedRun r = build_run(curve, metrics_where, h, target, directory_of(metrics_where));
    r.bytes = bytes;
    return r;
  } catch (const BadRun& e) {
    return failed(e.message, bytes);
  }
}

}  // namespace hpsweep
