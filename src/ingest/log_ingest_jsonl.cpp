// The jsonl layout: <dir>/metrics.jsonl (one {"step": N, "loss": X} object a line) + <dir>/config.json.
#include "hpsweep/ingest/log_ingest.hpp"

#include <cctype>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "hpsweep/util/text.hpp"
#include "ingest/log_ingest_common.hpp"

namespace hpsweep {

using namespace log_ingest_detail;

namespace {

// The fast path for the common line, a flat object of plain keys and scalar values such as
// {"step": 100, "loss": 3.21, "lr": 0.0005}: a strict scanner that accepts only valid JSON (and
// Python's bare NaN / Infinity) and gives up (returns false) on anything else — nesting, escapes,
// non-ASCII, repeated step/loss keys, syntax errors — which the full parser (simdjson) then reads or
// reports exactly as before. step_text / loss_text: the raw value tokens (strings unquoted).
class FlatLineScanner {
 public:
  explicit FlatLineScanner(std::string_view line) : s_(line) {}

  bool scan(std::string_view& step_text, bool& have_step, std::string_view& loss_text, bool& have_loss) {
    have_step = have_loss = false;
    skip_space();
    if (!take('{')) return false;
    skip_space();
    if (take('}')) return at_end();
    while (true) {
      std::string_view key, value;
      if (!string_token(key)) return false;
      skip_space();
      if (!take(':')) return false;
      skip_space();
      if (!value_token(value)) return false;
      if (key == "step") {
        if (have_step) return false;
        have_step = true;
        step_text = value;
      } else if (key == "loss") {
        if (have_loss) return false;
        have_loss = true;
        loss_text = value;
      }
      skip_space();
      if (take('}')) return at_end();
      if (!take(',')) return false;
      skip_space();
    }
  }

 private:
  bool at_end() {
    skip_space();
    return i_ == s_.size();
  }
  void skip_space() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\r' || s_[i_] == '\n')) ++i_;
  }
  bool take(char c) {
    if (i_ < s_.size() && s_[i_] == c) {
      ++i_;
      return true;
    }
    return false;
  }
  // A string without escapes, control or non-ASCII characters; out is its content.
  bool string_token(std::string_view& out) {
    if (!take('"')) return false;
    const std::size_t start = i_;
    while (i_ < s_.size()) {
      const auto c = static_cast<unsigned char>(s_[i_]);
      if (c == '"') {
        out = s_.substr(start, i_ - start);
        ++i_;
        return true;
      }
      if (c == '\\' || c < 0x20 || c >= 0x80) return false;
      ++i_;
    }
    return false;
  }
  static bool digit(char c) { return c >= '0' && c <= '9'; }
  // -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
  bool number_token(std::string_view& out) {
    const std::size_t start = i_;
    take('-');
    if (take('0')) {
    } else if (i_ < s_.size() && digit(s_[i_]) && s_[i_] != '0') {
      while (i_ < s_.size() && digit(s_[i_])) ++i_;
    } else {
      return false;
    }
    if (take('.')) {
      if (!(i_ < s_.size() && digit(s_[i_]))) return false;
      while (i_ < s_.size() && digit(s_[i_])) ++i_;
    }
    if (i_ < s_.size() && (s_[i_] == 'e' || s_[i_] == 'E')) {
      ++i_;
      if (!take('+')) take('-');
      if (!(i_ < s_.size() && digit(s_[i_]))) return false;
      while (i_ < s_.size() && digit(s_[i_])) ++i_;
    }
    out = s_.substr(start, i_ - start);
    return true;
  }
  bool value_token(std::string_view& out) {
    if (i_ >= s_.size()) return false;
    const char c = s_[i_];
    if (c == '"') return string_token(out);
    if (c == '-' || digit(c)) {
      if (s_.substr(i_, 9) == "-Infinity") return word("-Infinity", out);
      return number_token(out);
    }
    for (const char* w : {"true", "false", "null", "NaN", "Infinity"})
      if (s_.substr(i_, std::strlen(w)) == w) return word(w, out);
    return false;  // objects, arrays, other spellings: the full parser decides
  }
  bool word(std::string_view w, std::string_view& out) {
    out = s_.substr(i_, w.size());
    i_ += w.size();
    // A word must end here ("NaNx" is not NaN).
    return i_ == s_.size() || !(std::isalnum(static_cast<unsigned char>(s_[i_])) || s_[i_] == '_' || s_[i_] == '.');
  }

  std::string_view s_;
  std::size_t i_ = 0;
};

std::vector<Point> read_jsonl_curve(const std::string& text, const std::string& where) {
  static const std::vector<std::string> kStepAndLoss = {"step", "loss"};
  std::vector<Point> curve;
  JsonScratch scratch;
  for (const Line& l : split_lines(text)) {
    if (blank(l.text)) continue;
    std::string_view fast_step, fast_loss;
    bool have_step = false, have_loss = false;
    if (FlatLineScanner(l.text).scan(fast_step, have_step, fast_loss, have_loss) && have_step && have_loss) {
      Point p;
      p.line = l.number;
      if (!parse_whole(fast_step, p.step))
        fail(where, l.number, "\"step\" must be a whole number from 0 to 2^53, got " + shown(fast_step));
      if (to_lower(fast_loss) == "null")  // as the full parser path reads "null" and "NULL"
        p.loss = kNaN;
      else if (!parse_double(fast_loss, p.loss))
        fail(where, l.number, "\"loss\" is not a number: " + shown(fast_loss));
      append_point(curve, p, where);
      continue;
    }
    JsonNode tree;
    std::string why;
    std::size_t json_line = 0;
    if (!parse_json(l.text, tree, why, json_line, scratch, &kStepAndLoss)) {
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
