// The torchtitan layout: torchtitan's stdout saved as a file ("... step: N  loss: X  memory: ..."
// lines, coloured with ANSI escape codes) + its config.toml.
#include <cctype>
#include <string>
#include <vector>

#include "hpsweep/util/text.hpp"
#include "ingest/log_ingest_common.hpp"

namespace hpsweep {

using namespace log_ingest_detail;

namespace {

// Removes ANSI CSI sequences (ESC '[' parameters final-byte) and other ESC x pairs.
std::string strip_ansi(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '\x1b') {
      out += s[i];
      continue;
    }
    if (i + 1 < s.size() && s[i + 1] == '[') {
      i += 2;
      while (i < s.size() && !(s[i] >= 0x40 && s[i] <= 0x7E)) ++i;
    } else {
      ++i;
    }
  }
  return out;
}

// The token after "name:" (spaces skipped), up to the next space.
bool field_after(std::string_view line, std::string_view name, std::string_view& value) {
  std::size_t pos = 0;
  while ((pos = line.find(name, pos)) != std::string_view::npos) {
    const bool word_start = pos == 0 || !std::isalnum(static_cast<unsigned char>(line[pos - 1]));
    pos += name.size();
    if (!word_start) continue;
    while (pos < line.size() && line[pos] == ' ') ++pos;
    std::size_t end = pos;
    while (end < line.size() && !std::isspace(static_cast<unsigned char>(line[end]))) ++end;
    value = line.substr(pos, end - pos);
    return !value.empty();
  }
  return false;
}

// "1,234,567" -> "1234567"
std::string without_commas(std::string_view s) {
  std::string out;
  for (char c : s)
    if (c != ',') out += c;
  return out;
}

}  // namespace

bool log_ingest_detail::looks_like_torchtitan(std::string_view head) {
  const std::string text = strip_ansi(head);
  for (const Line& l : split_lines(text)) {
    std::string_view step, loss;
    if (field_after(l.text, "step:", step) && field_after(l.text, "loss:", loss)) return true;
  }
  return false;
}

ParsedRun parse_torchtitan_run(const RunFile& log, const RunFile& config, const LogIngestOptions& options) {
  const std::size_t bytes = log.text.size() + config.text.size();
  const std::string& where = log.where;
  try {
    check_options(options, where);
    const std::string text = strip_ansi(log.text);
    std::vector<Point> curve;
    FlatConfig from_log;
    for (const Line& l : split_lines(text)) {
      std::string_view step_text, loss_text, v;
      // "Model llama3 8B size: 8,030,261,248 total parameters"
      const std::size_t total = l.text.find(" total parameters");
      if (total != std::string_view::npos && field_after(l.text.substr(0, total), "size:", v))
        from_log["log.total_parameters"] = without_commas(v);
      // "Training starts at step 1, with local batch size 8, global batch size 64, sequence length
      // 2048, total steps 1000 (warmup 200)"
      if (l.text.find("Training starts at step") != std::string_view::npos) {
        for (const auto& [label, key] :
             {std::pair{"global batch size", "log.global_batch_size"}, std::pair{"sequence length", "log.seq_len"},
              std::pair{"total steps", "log.total_steps"}}) {
          const std::size_t at = l.text.find(label);
          if (at == std::string_view::npos) continue;
          std::string_view rest = l.text.substr(at + std::string_view(label).size());
          while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
          std::size_t k = 0;
          while (k < rest.size() && (std::isdigit(static_cast<unsigned char>(rest[k])) || rest[k] == ',')) ++k;
          if (k > 0) from_log[key] = without_commas(rest.substr(0, k));
        }
      }
      if (l.text.find("validat") != std::string_view::npos) continue;  // "validate step: N loss: X"
      if (!field_after(l.text, "step:", step_text) || !field_after(l.text, "loss:", loss_text)) continue;
      if (!l.terminated) break;  // the last line of a log still being written
      Point p;
      p.line = l.number;
      if (!parse_whole(step_text, p.step))
        fail(where, l.number, "step must be a whole number from 0 to 2^53, got " + shown(step_text));
      if (!parse_double(loss_text, p.loss)) fail(where, l.number, "loss is not a number: " + shown(loss_text));
      append_point(curve, p, where);
    }
    if (curve.empty()) fail(where, 0, "no 'step: N  loss: X' lines (empty curve)");
    FlatConfig c = from_log;
    if (!config.where.empty()) flatten_config(config, c);
    const Hyper h = hyper_from_config(c, config.where.empty() ? where : config.where, options);
    return finish_run(curve, where, h, directory_of(where), bytes);
  } catch (const BadRun& e) {
    return failed(e.message, bytes);
  }
}

}  // namespace hpsweep
