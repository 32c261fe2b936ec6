#include "hpsweep/ingest/log_ingest.hpp"

#include <algorithm>
#ifndef BOOST_BIND_GLOBAL_PLACEHOLDERS
#define BOOST_BIND_GLOBAL_PLACEHOLDERS  // property_tree still includes the deprecated <boost/bind.hpp>
#endif
#include <boost/property_tree/json_parser.hpp>
#include <boost/property_tree/ptree.hpp>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <set>
#include <sstream>

#include "hpsweep/ingest/csv_ingest.hpp"
#include "hpsweep/trials/smoothing.hpp"
#include "hpsweep/util/error.hpp"
#include "hpsweep/util/text.hpp"

namespace hpsweep {

namespace {
namespace fs = std::filesystem;
namespace pt = boost::property_tree;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();
// Whole numbers (steps, batch, seq_len, ...) must stay exactly representable as doubles, so that
// every product and cast below is exact and defined.
constexpr double kMaxWhole = 9007199254740992.0;  // 2^53
constexpr std::int64_t kMaxWholeInt = std::int64_t{1} << 53;
constexpr int kMaxJsonDepth = 64;  // boost's JSON parser recurses per level

// A bad run. Thrown inside this file only; every public parser turns it into ok = false.
struct BadRun {
  std::string message;
};

[[noreturn]] void fail(const std::string& where, std::size_t line, const std::string& why) {
  throw BadRun{where + ":" + std::to_string(line) + ": " + why};
}

std::string shown(std::string_view s) {
  std::string t(s.substr(0, 60));
  for (char& c : t)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  return "'" + t + (s.size() > 60 ? "...'" : "'");
}

// ---- numbers ------------------------------------------------------------------------------

// A decimal number, or nan / inf / infinity in any case with an optional sign.
bool parse_double(std::string_view text, double& out) {
  const std::string s = trim(text);
  if (s.empty()) return false;
  std::string_view t = s;
  bool negative = false;
  if (t.front() == '+' || t.front() == '-') {
    negative = t.front() == '-';
    t.remove_prefix(1);
  }
  if (t.empty() || t.front() == '+' || t.front() == '-') return false;
  const std::string low = to_lower(t);
  if (low == "nan") {
    out = kNaN;
    return true;
  }
  if (low == "inf" || low == "infinity") {
    out = negative ? -kInf : kInf;
    return true;
  }
  double v = 0;
  const auto r = std::from_chars(t.data(), t.data() + t.size(), v);
  if (r.ec != std::errc() || r.ptr != t.data() + t.size() || !std::isfinite(v)) return false;
  out = negative ? -v : v;
  return true;
}

// A whole number in [0, 2^53], written as an integer or as an integral decimal ("100.0", "1e3").
bool parse_whole(std::string_view text, std::int64_t& out) {
  const std::string t = trim(text);
  std::int64_t i = 0;
  const auto r = std::from_chars(t.data(), t.data() + t.size(), i);
  if (!t.empty() && r.ec == std::errc() && r.ptr == t.data() + t.size()) {  // exact for integer text
    if (i < 0 || i > kMaxWholeInt) return false;
    out = i;
    return true;
  }
  double v = 0;
  if (!parse_double(t, v) || !std::isfinite(v) || v < 0 || v >= kMaxWhole || v != std::floor(v)) return false;
  out = static_cast<std::int64_t>(v);
  return true;
}

// Only decimal digits (no sign, no exponent), fitting an int64.
bool parse_digits(std::string_view t, std::int64_t& out) {
  if (t.empty() || t.size() > 18) return false;
  for (char c : t)
    if (c < '0' || c > '9') return false;
  const auto r = std::from_chars(t.data(), t.data() + t.size(), out);
  return r.ec == std::errc() && r.ptr == t.data() + t.size();
}

// ---- lines --------------------------------------------------------------------------------

struct Line {
  std::string_view text;  // without the newline and a trailing '\r'
  std::size_t number = 0;
  bool terminated = true;  // followed by a newline
};

std::vector<Line> split_lines(std::string_view text) {
  std::vector<Line> out;
  if (text.size() >= 3 && text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);  // UTF-8 BOM
  std::size_t start = 0, number = 0;
  while (start < text.size()) {
    const std::size_t nl = text.find('\n', start);
    Line l;
    l.number = ++number;
    l.terminated = nl != std::string_view::npos;
    l.text = text.substr(start, l.terminated ? nl - start : std::string_view::npos);
    if (!l.text.empty() && l.text.back() == '\r') l.text.remove_suffix(1);
    out.push_back(l);
    if (!l.terminated) break;
    start = nl + 1;
  }
  return out;
}

bool blank(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; });
}

std::size_t line_of(std::string_view text, std::string_view needle) {
  const std::size_t pos = text.find(needle);
  if (pos == std::string_view::npos) return 0;
  return 1 + static_cast<std::size_t>(std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(pos), '\n'));
}

// ---- JSON ---------------------------------------------------------------------------------

// JSON as Python writes it: bare NaN / Infinity / -Infinity (and C's nan / inf) become strings,
// which parse_double reads back. Refuses nesting deeper than boost's recursive parser can take.
bool prepare_json(std::string_view in, std::string& out, std::string& why) {
  static const char* const kWords[] = {"-Infinity", "+Infinity", "Infinity", "-NaN", "NaN",
                                       "-nan",      "nan",       "-inf",     "+inf", "inf"};
  out.clear();
  out.reserve(in.size() + 8);
  bool in_string = false, escaped = false;
  int depth = 0;
  auto word_char = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.'; };
  for (std::size_t i = 0; i < in.size(); ++i) {
    const char c = in[i];
    if (in_string) {
      if (escaped)
        escaped = false;
      else if (c == '\\')
        escaped = true;
      else if (c == '"')
        in_string = false;
      out += c;
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      if (++depth > kMaxJsonDepth) {
        why = "JSON nested deeper than " + std::to_string(kMaxJsonDepth) + " levels";
        return false;
      }
    } else if (c == '}' || c == ']') {
      --depth;
    } else if ((c == 'N' || c == 'I' || c == 'n' || c == 'i' || c == '-' || c == '+') &&
               (i == 0 || !word_char(in[i - 1]))) {
      bool replaced = false;
      for (const char* w : kWords) {
        const std::string_view word(w);
        if (in.substr(i, word.size()) == word && (i + word.size() == in.size() || !word_char(in[i + word.size()]))) {
          out += '"';
          out += word;
          out += '"';
          i += word.size() - 1;
          replaced = true;
          break;
        }
      }
      if (replaced) continue;
    }
    out += c;
  }
  return true;
}

// Reused buffers for parse_json (one per parse, so one per thread).
struct JsonScratch {
  std::string prepared;
  std::istringstream stream;
};

// Parses one JSON text; on a syntax error returns false with the reason and the line within `text`.
bool parse_json(std::string_view text, pt::ptree& tree, std::string& why, std::size_t& line, JsonScratch& scratch) {
  line = 0;
  if (!prepare_json(text, scratch.prepared, why)) return false;
  try {
    scratch.stream.clear();
    scratch.stream.str(scratch.prepared);
    pt::read_json(scratch.stream, tree);
  } catch (const pt::json_parser_error& e) {
    why = "not valid JSON: " + e.message();
    line = e.line();
    return false;
  }
  const std::string t = trim(text);
  if (t.empty() || t.front() != '{') {
    why = "not a JSON object";
    return false;
  }
  return true;
}

// The scalar text of tree[key], or false when absent. A key holding an object or array is
// reported as not a number by the caller (its text is empty).
bool json_scalar(const pt::ptree& tree, const std::string& key, std::string& out) {
  const auto it = tree.find(key);  // direct child only: keys are not paths
  if (it == tree.not_found()) return false;
  out = it->second.empty() ? it->second.data() : std::string();
  return true;
}

// ---- hyperparameters ----------------------------------------------------------------------

struct Hyper {
  double params = 0, tokens = 0, lr = 0, wd = 0;
  std::int64_t batch = 0, seq_len = 0;
  std::int64_t train_steps = 0;  // 0: not given
  std::string where;             // config path or log path (for name-derived values)
  std::size_t train_steps_line = 0;
};

void check_positive(double v, const std::string& what, const std::string& where, std::size_t line) {
  if (!(v > 0) || !std::isfinite(v))
    fail(where, line, what + " must be positive and finite, got " + format_short(v, 6));
}

void check_options(const LogIngestOptions& o, const std::string& where) {
  if (o.seq_len < 1 || o.seq_len > kMaxWholeInt)
    fail(where, 0, "the default seq_len " + std::to_string(o.seq_len) + " must be a positive whole number");
  if (!(o.wd >= 0) || !std::isfinite(o.wd))
    fail(where, 0, "the default wd " + format_short(o.wd) + " must be zero or positive");
}

Hyper parse_config(std::string_view text, const std::string& where, const LogIngestOptions& o) {
  if (text.size() >= 3 && text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);  // UTF-8 BOM
  if (blank(text)) fail(where, 0, "empty config (expected a JSON object with lr, batch, params, tokens)");
  pt::ptree tree;
  std::string why;
  std::size_t line = 0;
  JsonScratch scratch;
  if (!parse_json(text, tree, why, line, scratch)) fail(where, line, why);

  auto number = [&](const std::string& key, bool required, const std::string& meaning, double& out) {
    std::string s;
    if (!json_scalar(tree, key, s)) {
      if (required) fail(where, 0, "missing \"" + key + "\" (" + meaning + ")");
      return false;
    }
    if (!parse_double(s, out))
      fail(where, line_of(text, "\"" + key + "\""), "\"" + key + "\" is not a number: " + shown(s));
    return true;
  };
  auto whole = [&](const std::string& key, bool required, const std::string& meaning, std::int64_t& out) {
    std::string s;
    if (!json_scalar(tree, key, s)) {
      if (required) fail(where, 0, "missing \"" + key + "\" (" + meaning + ")");
      return false;
    }
    if (!parse_whole(s, out) || out < 1)
      fail(where, line_of(text, "\"" + key + "\""), "\"" + key + "\" must be a positive whole number, got " + shown(s));
    return true;
  };

  Hyper h;
  h.where = where;
  number("lr", true, "peak learning rate", h.lr);
  check_positive(h.lr, "\"lr\"", where, line_of(text, "\"lr\""));
  whole("batch", true, "sequences per step", h.batch);
  number("params", true, "non-embedding parameters N", h.params);
  check_positive(h.params, "\"params\"", where, line_of(text, "\"params\""));
  if (number("tokens", false, "", h.tokens)) check_positive(h.tokens, "\"tokens\"", where, line_of(text, "\"tokens\""));
  if (!whole("seq_len", false, "", h.seq_len)) h.seq_len = o.seq_len;
  if (number("wd", false, "", h.wd)) {
    if (!(h.wd >= 0) || !std::isfinite(h.wd))
      fail(where, line_of(text, "\"wd\""), "\"wd\" must be zero or positive and finite, got " + format_short(h.wd, 6));
  } else {
    h.wd = o.wd;
  }
  if (whole("train_steps", false, "", h.train_steps)) h.train_steps_line = line_of(text, "\"train_steps\"");
  return h;
}

// The Step Law run name: ..._h<int>_ffnh<int>_..._numl<int>_lr<num>_bs<int>_ti<int>_...
Hyper hyper_from_run_name(const std::string& name, const std::string& where, const LogIngestOptions& o,
                          std::int64_t log_target, std::size_t log_target_line) {
  const auto tokens = split(name, '_');
  struct Found {
    std::string text;
    bool seen = false;
  };
  std::map<std::string, Found> found;
  const std::vector<std::string> keys = {"h", "ffnh", "numl", "lr", "bs", "ti"};
  for (const auto& tok : tokens) {
    for (const std::string& moe : {std::string("moeh"), std::string("nume")}) {
      std::int64_t v = 0;
      if (tok.size() > moe.size() && tok.compare(0, moe.size(), moe) == 0 && parse_digits(tok.substr(moe.size()), v))
        fail(where, 0,
             "run name " + shown(name) + " is a mixture-of-experts run (_" + tok +
                 "): N cannot be derived from the name; give \"params\" in config.json");
    }
    for (const auto& key : keys) {
      if (tok.size() <= key.size() || tok.compare(0, key.size(), key) != 0) continue;
      const std::string rest = tok.substr(key.size());
      double v = 0;
      if (!parse_double(rest, v) || !std::isdigit(static_cast<unsigned char>(rest.front()))) continue;
      Found& f = found[key];
      if (f.seen && f.text != rest)
        fail(where, 0, "run name " + shown(name) + " gives _" + key + " twice (" + f.text + " and " + rest + ")");
      f.seen = true;
      f.text = rest;
    }
  }
  auto need = [&](const std::string& key, const std::string& meaning) -> const std::string& {
    const auto it = found.find(key);
    if (it == found.end())
      fail(where, 0,
           "no config.json and the run name " + shown(name) + " has no _" + key + "<number> (" + meaning + ")");
    return it->second.text;
  };
  auto whole = [&](const std::string& key, const std::string& meaning) {
    const std::string& s = need(key, meaning);
    std::int64_t v = 0;
    if (!parse_digits(s, v) || v < 1 || v > kMaxWholeInt)
      fail(where, 0, "run name " + shown(name) + ": _" + key + " must be a positive whole number, got " + shown(s));
    return v;
  };

  Hyper h;
  h.where = where;
  const std::int64_t hidden = whole("h", "hidden size");
  const std::int64_t ffn = whole("ffnh", "FFN hidden size");
  const std::int64_t layers = whole("numl", "number of layers");
  const std::string& lr_text = need("lr", "peak learning rate");
  if (!parse_double(lr_text, h.lr))
    fail(where, 0, "run name " + shown(name) + ": _lr is not a number: " + shown(lr_text));
  check_positive(h.lr, "run name " + shown(name) + ": _lr", where, 0);
  h.batch = whole("bs", "batch size in sequences");
  if (found.count("ti")) {
    h.train_steps = whole("ti", "training iterations");
    if (log_target > 0 && h.train_steps != log_target)
      fail(where, log_target_line,
           "the log's target iteration count " + std::to_string(log_target) + " disagrees with _ti" +
               std::to_string(h.train_steps) + " in the run name");
  } else {
    h.train_steps = log_target;
  }
  const double hd = static_cast<double>(hidden), fd = static_cast<double>(ffn);
  h.params = static_cast<double>(layers) * (4.0 * hd * hd + 3.0 * hd * fd);
  h.seq_len = o.seq_len;
  h.wd = o.wd;
  h.tokens = static_cast<double>(h.train_steps) * static_cast<double>(h.batch) * static_cast<double>(h.seq_len);
  check_positive(h.params, "N from the run name", where, 0);
  check_positive(h.tokens, "D from the run name", where, 0);
  return h;
}

// ---- the curve and the record -------------------------------------------------------------

struct Point {
  std::int64_t step = 0;
  double loss = 0;
  std::size_t line = 0;
};

void append_point(std::vector<Point>& curve, const Point& p, const std::string& where) {
  if (!curve.empty() && p.step <= curve.back().step)
    fail(where, p.line,
         "step " + std::to_string(p.step) + " does not come after step " + std::to_string(curve.back().step) +
             " of line " + std::to_string(curve.back().line) + " (steps must increase)");
  curve.push_back(p);
}

std::string directory_of(const std::string& where) {
  const std::string parent = fs::path(where).parent_path().string();
  return parent.empty() ? "." : parent;
}

ParsedRun build_run(const std::vector<Point>& curve, const std::string& curve_where, const Hyper& h,
                    std::int64_t target_step, const std::string& source_dir) {
  if (curve.empty()) fail(curve_where, 0, "no loss values (empty curve)");
  // Non-finite values may only end the curve (a diverged run); a finite loss after one is corrupt.
  std::size_t first_bad = curve.size();
  for (std::size_t i = 0; i < curve.size(); ++i)
    if (!std::isfinite(curve[i].loss)) {
      first_bad = i;
      break;
    }
  for (std::size_t i = first_bad; i < curve.size(); ++i)
    if (std::isfinite(curve[i].loss))
      fail(curve_where, curve[first_bad].line,
           "loss " + format_short(curve[first_bad].loss) + " at step " + std::to_string(curve[first_bad].step) +
               " is followed by finite losses (line " + std::to_string(curve[i].line) +
               "): non-finite values may only end a curve");
  if (target_step < 1 || target_step > kMaxWholeInt)
    fail(h.where, h.train_steps_line, "target step count " + std::to_string(target_step) + " is out of range");

  ParsedRun run;
  TrialRecord& r = run.record;
  TrialPoint& p = r.trial.point;
  p.params = h.params;
  p.tokens = h.tokens;
  p.lr = h.lr;
  p.batch = h.batch;
  p.seq_len = h.seq_len;
  p.wd = h.wd;
  p.repeat = 0;

  TrialOutcome& out = r.outcome;
  out.curve.step.reserve(curve.size());
  out.curve.loss.reserve(curve.size());
  for (const auto& c : curve) {
    out.curve.step.push_back(c.step);
    out.curve.loss.push_back(c.loss);
  }
  out.final_loss = curve.back().loss;
  out.smooth_loss = smoothed_final_loss(out.curve.step, out.curve.loss);
  out.steps = curve.back().step;
  if (first_bad < curve.size()) {
    out.state = TrialState::Diverged;
    out.error =
        "loss became " + format_short(curve[first_bad].loss) + " at step " + std::to_string(curve[first_bad].step);
  } else if (out.final_loss > kLogIngestDivergedAbove) {
    out.state = TrialState::Diverged;
    out.error = "last loss " + format_short(out.final_loss, 4) + " is above " + format_short(kLogIngestDivergedAbove);
  } else {
    out.state = TrialState::Done;
  }
  r.trial.id = ingested_trial_id(p, out.smooth_loss);
  r.source = "ingest:" + source_dir;
  r.rank = -1;
  r.attempt = 1;

  std::vector<std::int64_t> gaps;
  for (std::size_t i = 1; i < curve.size(); ++i) gaps.push_back(curve[i].step - curve[i - 1].step);
  double interval = 0;
  if (!gaps.empty()) {
    std::sort(gaps.begin(), gaps.end());
    const std::size_t m = gaps.size() / 2;
    interval = gaps.size() % 2 ? static_cast<double>(gaps[m])
                               : 0.5 * (static_cast<double>(gaps[m - 1]) + static_cast<double>(gaps[m]));
  }
  run.log_interval = interval;
  run.target_step = target_step;
  run.finished = static_cast<double>(curve.back().step) >= static_cast<double>(target_step) - interval;
  run.ok = true;
  return run;
}

// ---- the two layouts ----------------------------------------------------------------------

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

// " iteration      100/   66342 | consumed samples: ... | lm loss: 3.412345E+00 | ..."
bool parse_iteration(std::string_view field, std::int64_t& n, std::int64_t& m) {
  static constexpr std::string_view kWord = "iteration";
  for (std::size_t pos = field.find(kWord); pos != std::string_view::npos; pos = field.find(kWord, pos + 1)) {
    std::string_view rest = field.substr(pos + kWord.size());
    auto skip_space = [&] {
      while (!rest.empty() && std::isspace(static_cast<unsigned char>(rest.front()))) rest.remove_prefix(1);
    };
    auto digits = [&](std::int64_t& out) {
      std::size_t k = 0;
      while (k < rest.size() && rest[k] >= '0' && rest[k] <= '9') ++k;
      if (!parse_digits(rest.substr(0, k), out)) return false;
      rest.remove_prefix(k);
      return true;
    };
    if (rest.empty() || !std::isspace(static_cast<unsigned char>(rest.front()))) continue;
    skip_space();
    if (!digits(n)) continue;
    skip_space();
    if (rest.empty() || rest.front() != '/') continue;
    rest.remove_prefix(1);
    skip_space();
    if (!digits(m)) continue;
    if (!blank(rest)) continue;
    return true;
  }
  return false;
}

struct MegatronCurve {
  std::vector<Point> curve;
  std::int64_t target = 0;
  std::size_t target_line = 0;
};

MegatronCurve read_megatron_curve(const std::string& text, const std::string& where) {
  MegatronCurve out;
  for (const Line& l : split_lines(text)) {
    if (l.text.find("lm loss") == std::string_view::npos) continue;  // most lines of a Megatron log
    const auto fields = split(l.text, '|');
    const std::string* loss_value = nullptr;
    std::string value_storage;
    bool loss_field_closed = false;
    for (std::size_t i = 0; i < fields.size(); ++i) {
      const std::size_t colon = fields[i].find(':');
      if (colon == std::string::npos || trim(fields[i].substr(0, colon)) != "lm loss") continue;
      value_storage = trim(fields[i].substr(colon + 1));
      loss_value = &value_storage;
      loss_field_closed = i + 1 < fields.size();
      break;
    }
    if (!loss_value) continue;  // not a training iteration line
    std::int64_t n = 0, m = 0;
    bool have_iteration = false;
    for (const auto& f : fields)
      if (parse_iteration(f, n, m)) {
        have_iteration = true;
        break;
      }
    double loss = 0;
    const bool loss_ok = parse_double(*loss_value, loss);
    // A last line without its newline is complete only up to the last '|': a cut number such
    // as "1.234567E+0" (of "1.234567E+01") would still parse, to the wrong value.
    if (!l.terminated && (!have_iteration || !loss_ok || !loss_field_closed)) break;
    if (!have_iteration) fail(where, l.number, "'lm loss' without 'iteration N/M' on the same line");
    if (!loss_ok) fail(where, l.number, "lm loss is not a number: " + shown(*loss_value));
    if (m < 1 || m > kMaxWholeInt || n > kMaxWholeInt)
      fail(where, l.number, "iteration " + std::to_string(n) + "/" + std::to_string(m) + " is out of range");
    if (out.target == 0) {
      out.target = m;
      out.target_line = l.number;
    } else if (m != out.target) {
      fail(where, l.number,
           "target iteration count " + std::to_string(m) + " differs from " + std::to_string(out.target) + " on line " +
               std::to_string(out.target_line));
    }
    append_point(out.curve, Point{n, loss, l.number}, where);
  }
  return out;
}

// ---- files --------------------------------------------------------------------------------

bool read_file(const std::string& path, std::string& out, std::string& why) {
  std::error_code ec;
  const auto st = fs::status(path, ec);
  if (ec || !fs::exists(st)) {
    why = "cannot read: no such file";
    return false;
  }
  if (fs::is_directory(st)) {
    why = "cannot read: is a directory";
    return false;
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    why = std::string("cannot read: ") + std::strerror(errno);
    return false;
  }
  std::ostringstream buf;
  buf << in.rdbuf();
  if (in.bad()) {
    why = std::string("read error: ") + std::strerror(errno);
    return false;
  }
  out = std::move(buf).str();
  return true;
}

std::string strip_trailing_slashes(std::string d) {
  while (d.size() > 1 && d.back() == '/') d.pop_back();
  return d;
}

std::string run_name_of(const std::string& dir) {
  std::string name = fs::path(dir).filename().string();
  if (name.empty() || name == "." || name == "..") {
    std::error_code ec;
    const fs::path abs = fs::absolute(dir, ec).lexically_normal();
    name = strip_trailing_slashes(abs.string());
    name = fs::path(name).filename().string();
  }
  return name;
}

ParsedRun failed(std::string message, std::size_t bytes) {
  ParsedRun r;
  r.error = std::move(message);
  r.bytes = bytes;
  return r;
}

}  // namespace

// ---- public -------------------------------------------------------------------------------

LogLayout parse_layout(const std::string& name) {
  const std::string n = to_lower(trim(name));
  if (n == "jsonl") return LogLayout::JsonLines;
  if (n == "megatron") return LogLayout::Megatron;
  const std::string guess = closest_match(n, {"jsonl", "megatron"});
  throw InputError("--layout: unknown layout '" + name + "' (expected jsonl or megatron)" +
                   (guess.empty() ? "" : "; did you mean '" + guess + "'?"));
}

const char* to_string(LogLayout layout) { return layout == LogLayout::JsonLines ? "jsonl" : "megatron"; }

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

ParsedRun parse_megatron_run(const std::string& log_text, const std::string& log_where, const std::string& run_name,
                             const std::string& config_text, const std::string& config_where,
                             const LogIngestOptions& options) {
  const std::size_t bytes = log_text.size() + config_text.size();
  try {
    check_options(options, config_text.empty() ? log_where : config_where);
    const MegatronCurve mc = read_megatron_curve(log_text, log_where);
    if (mc.curve.empty()) fail(log_where, 0, "no 'iteration N/M | ... | lm loss: X |' lines (empty curve)");
    Hyper h;
    if (!config_text.empty()) {
      h = parse_config(config_text, config_where, options);
      if (h.train_steps != 0 && h.train_steps != mc.target)
        fail(config_where, h.train_steps_line,
             "\"train_steps\" " + std::to_string(h.train_steps) + " disagrees with the log's target iteration count " +
                 std::to_string(mc.target) + " (" + log_where + ":" + std::to_string(mc.target_line) + ")");
      if (h.tokens <= 0)
        h.tokens = static_cast<double>(mc.target) * static_cast<double>(h.batch) * static_cast<double>(h.seq_len);
      check_positive(h.tokens, "tokens", config_where, 0);
    } else {
      h = hyper_from_run_name(run_name, log_where, options, mc.target, mc.target_line);
    }
    ParsedRun r = build_run(mc.curve, log_where, h, mc.target, directory_of(log_where));
    r.bytes = bytes;
    return r;
  } catch (const BadRun& e) {
    return failed(e.message, bytes);
  }
}

ParsedRun parse_run_directory(const std::string& dir_in, LogLayout layout, const LogIngestOptions& options) {
  const std::string dir = strip_trailing_slashes(dir_in);
  const std::string prefix = dir == "/" ? dir : dir + "/";
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return failed(dir + ":0: not a directory", 0);
  std::string why;
  ParsedRun r;
  if (layout == LogLayout::JsonLines) {
    const std::string metrics_path = prefix + "metrics.jsonl", config_path = prefix + "config.json";
    std::string metrics, config;
    if (!read_file(metrics_path, metrics, why)) return failed(metrics_path + ":0: " + why, 0);
    if (!read_file(config_path, config, why)) return failed(config_path + ":0: " + why, metrics.size());
    r = parse_jsonl_run(metrics, metrics_path, config, config_path, options);
  } else {
    std::string log_path = prefix + "train.log";
    if (!fs::is_regular_file(log_path, ec)) {
      std::vector<std::string> logs;
      for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
        std::error_code fec;
        if (it->path().extension() == ".log" && it->is_regular_file(fec))
          logs.push_back(it->path().filename().string());
      }
      if (ec) return failed(dir + ":0: cannot list the directory: " + ec.message(), 0);
      std::sort(logs.begin(), logs.end());
      if (logs.empty()) return failed(dir + ":0: no train.log or other *.log file", 0);
      if (logs.size() > 1) {
        std::string list;
        for (const auto& l : logs) list += (list.empty() ? "" : ", ") + l;
        return failed(dir + ":0: " + std::to_string(logs.size()) + " *.log files and none is train.log (" + list + ")",
                      0);
      }
      log_path = prefix + logs.front();
    }
    std::string log, config;
    if (!read_file(log_path, log, why)) return failed(log_path + ":0: " + why, 0);
    const std::string config_path = prefix + "config.json";
    if (fs::exists(config_path, ec)) {
      if (!read_file(config_path, config, why)) return failed(config_path + ":0: " + why, log.size());
      if (blank(config))
        return failed(config_path + ":0: empty config (expected a JSON object with lr, batch, params)",
                      log.size() + config.size());
    }
    r = parse_megatron_run(log, log_path, run_name_of(dir), config, config_path, options);
  }
  if (r.ok) r.record.source = "ingest:" + dir;
  return r;
}

std::vector<std::string> find_run_directories(const std::string& root, LogLayout layout) {
  std::error_code ec;
  if (!fs::is_directory(root, ec)) throw InputError("'" + root + "' is not a directory");
  std::set<std::string> dirs;
  const auto opts = fs::directory_options::skip_permission_denied;
  fs::recursive_directory_iterator it(root, opts, ec), end;
  if (ec) throw InputError("cannot list '" + root + "': " + ec.message());
  for (; it != end; it.increment(ec)) {
    if (ec) throw InputError("cannot list '" + root + "': " + ec.message());
    std::error_code fec;
    if (!it->is_regular_file(fec)) continue;
    const fs::path& p = it->path();
    const bool match = layout == LogLayout::JsonLines ? p.filename() == "metrics.jsonl" : p.extension() == ".log";
    if (match) dirs.insert(strip_trailing_slashes(p.parent_path().string()));
  }
  if (ec) throw InputError("cannot list '" + root + "': " + ec.message());
  return {dirs.begin(), dirs.end()};
}

// ---- fuzzing support ----------------------------------------------------------------------

ParsedRun parse_fuzz_input(std::string_view data) {
  const bool megatron = !data.empty() && (static_cast<unsigned char>(data.front()) & 1u);
  if (!data.empty()) data.remove_prefix(1);
  std::string parts[3];
  for (int i = 0; i < 3; ++i) {
    const std::size_t nul = i < 2 ? data.find('\0') : std::string_view::npos;
    parts[i] = std::string(data.substr(0, nul));
    if (nul == std::string_view::npos) break;
    data.remove_prefix(nul + 1);
  }
  const LogIngestOptions options;
  if (megatron) return parse_megatron_run(parts[0], "fuzz/train.log", parts[2], parts[1], "fuzz/config.json", options);
  return parse_jsonl_run(parts[0], "fuzz/metrics.jsonl", parts[1], "fuzz/config.json", options);
}

std::string make_fuzz_input(LogLayout layout, std::string_view log_text, std::string_view config_text,
                            std::string_view run_name) {
  std::string out(1, layout == LogLayout::Megatron ? 'M' : 'J');
  out += log_text;
  out += '\0';
  out += config_text;
  out += '\0';
  out += run_name;
  return out;
}

std::string check_parsed_run(const ParsedRun& run) {
  auto same = [](double a, double b) { return (std::isnan(a) && std::isnan(b)) || a == b; };
  if (!run.ok) {
    // "where:line: reason"
    const std::string& e = run.error;
    const std::size_t sep = e.find(": ");
    std::size_t colon = sep == std::string::npos ? std::string::npos : e.rfind(':', sep - 1);
    if (sep == std::string::npos || colon == std::string::npos || colon == 0 || colon + 1 >= sep ||
        !std::all_of(e.begin() + static_cast<std::ptrdiff_t>(colon + 1), e.begin() + static_cast<std::ptrdiff_t>(sep),
                     [](char c) { return c >= '0' && c <= '9'; }) ||
        sep + 2 >= e.size())
      return "error is not 'where:line: reason': " + e;
    const TrialRecord& r = run.record;
    const TrialPoint empty_point;
    if (r.trial.id != 0 || !r.outcome.curve.step.empty() || !r.outcome.curve.loss.empty() || !r.source.empty() ||
        r.trial.point.params != empty_point.params || r.trial.point.tokens != empty_point.tokens ||
        r.trial.point.lr != empty_point.lr || r.trial.point.batch != empty_point.batch || run.finished ||
        run.target_step != 0)
      return "a bad run carries a half-filled record";
    return "";
  }
  if (!run.error.empty()) return "an ok run carries an error: " + run.error;
  const TrialRecord& r = run.record;
  const TrialPoint& p = r.trial.point;
  const TrialOutcome& o = r.outcome;
  if (!(p.params > 0) || !std::isfinite(p.params) || !(p.tokens > 0) || !std::isfinite(p.tokens) || !(p.lr > 0) ||
      !std::isfinite(p.lr) || p.batch < 1 || p.seq_len < 1 || !(p.wd >= 0) || !std::isfinite(p.wd))
    return "invalid hyperparameters: " + canonical_coordinates(p);
  if (o.curve.step.empty() || o.curve.step.size() != o.curve.loss.size()) return "empty or ragged curve";
  for (std::size_t i = 0; i < o.curve.step.size(); ++i) {
    if (o.curve.step[i] < 0) return "negative step";
    if (i > 0 && o.curve.step[i] <= o.curve.step[i - 1]) return "steps do not increase";
    if (i > 0 && !std::isfinite(o.curve.loss[i - 1]) && std::isfinite(o.curve.loss[i]))
      return "finite loss after a non-finite one";
  }
  if (o.steps != o.curve.step.back()) return "steps is not the last logged step";
  if (!same(o.final_loss, o.curve.loss.back())) return "final_loss is not the last logged loss";
  if (!same(o.smooth_loss, smoothed_final_loss(o.curve.step, o.curve.loss)))
    return "smooth_loss is not the smoothed curve";
  const bool diverged = !std::isfinite(o.final_loss) || o.final_loss > kLogIngestDivergedAbove;
  if (diverged != (o.state == TrialState::Diverged)) return "state does not follow the divergence rule";
  if (o.state != TrialState::Done && o.state != TrialState::Diverged) return "state is neither DONE nor DIVERGED";
  if (diverged == o.error.empty()) return "outcome error does not match the state";
  if (r.trial.id != ingested_trial_id(p, o.smooth_loss)) return "id is not ingested_trial_id(point, smooth_loss)";
  if (r.source.rfind("ingest:", 0) != 0) return "source does not start with ingest:";
  if (run.target_step < 1 || run.log_interval < 0) return "bad target step or log interval";
  if (run.finished != (static_cast<double>(o.steps) >= static_cast<double>(run.target_step) - run.log_interval))
    return "finished does not follow the rule";
  return "";
}

}  // namespace hpsweep
