// The hf-trainer layout: a Hugging Face Trainer output directory, whose newest
// checkpoint-*/trainer_state.json holds the whole log_history ({"step": N, "loss": X, ...} a
// logging call) + the run's config in the output directory.
#include <algorithm>
#include <string>
#include <vector>

#include "hpsweep/util/text.hpp"
#include "ingest/log_ingest_common.hpp"

namespace hpsweep {

using namespace log_ingest_detail;

ParsedRun parse_hf_trainer_run(const RunFile& trainer_state, const RunFile& config, const LogIngestOptions& options) {
  const std::size_t bytes = trainer_state.text.size() + config.text.size();
  const std::string& where = trainer_state.where;
  try {
    check_options(options, where);
    if (blank(trainer_state.text)) fail(where, 0, "empty trainer_state.json");
    JsonNode state;
    std::string why;
    std::size_t line = 0;
    JsonScratch scratch;
    if (!parse_json(trainer_state.text, state, why, line, scratch)) fail(where, line, why);
    const JsonNode* history = state.find("log_history");
    if (!history) fail(where, 0, "no \"log_history\"");
    const std::vector<std::string> tags = loss_tags(options);
    std::map<std::string, std::vector<Point>> curves;
    double max_lr = 0;
    std::size_t entry = 0;
    for (const JsonNode& item : history->children) {
      ++entry;
      std::string step_text, text;
      if (json_scalar(item, "learning_rate", text)) {
        double lr = 0;
        if (parse_double(text, lr) && lr > max_lr) max_lr = lr;
      }
      for (const auto& tag : tags) {
        if (!json_scalar(item, tag, text)) continue;
        Point p;
        p.line = entry;
        if (!json_scalar(item, "step", step_text) || !parse_whole(step_text, p.step))
          fail(where, 0, "log_history entry " + std::to_string(entry) + " has no whole \"step\"");
        if (to_lower(trim(text)) == "null")
          p.loss = kNaN;
        else if (!parse_double(text, p.loss))
          fail(where, 0,
               "log_history entry " + std::to_string(entry) + ": \"" + tag + "\" is not a number: " + shown(text));
        append_point(curves[tag], p, where);
      }
    }
    const std::vector<Point>& curve = pick_loss_curve(curves, options, where);
    FlatConfig c;
    for (const JsonNode& child : state.children)
      if (child.children.empty() && !child.key.empty()) c["trainer_state." + child.key] = child.text;
    if (max_lr > 0) c["log_history.max_learning_rate"] = format_double(max_lr);
    if (!config.where.empty()) flatten_config(config, c);
    const Hyper h = hyper_from_config(c, config.where.empty() ? where : config.where, options);
    // The output directory: the checkpoint's parent.
    std::string dir = directory_of(where);
    const auto slash = dir.find_last_of('/');
    if (dir.compare(slash == std::string::npos ? 0 : slash + 1, 11, "checkpoint-") == 0) dir = directory_of(dir);
    return finish_run(curve, where, h, dir, bytes);
  } catch (const BadRun& e) {
    return failed(e.message, bytes);
  }
}

}  // namespace hpsweep
