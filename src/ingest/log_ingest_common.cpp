// The helpers both run-log layouts share (declared in log_ingest_common.hpp).
#include "ingest/log_ingest_common.hpp"

#include <algorithm>
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

namespace log_ingest_detail {

namespace fs = std::filesystem;

[[noreturn]] void fail(const std::string& where, std::size_t line, const std::string& why) {
  throw BadRun{where + ":" + std::to_string(line) + ": " + why};
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

// ---- hyperparameters ----------------------------------------------------------------------

void check_positive(double v, const std::string& what, const std::string& where, std::size_t line) {
  if (!(v > 0) || !std::isfinite(v))
    fail(where, line, what + " must be positive and finite, got " + format_short(v, 6));
}

void check_options(const LogIngestOptions& o, const std::string& where) {
  if (o.seq_len < 1 || o.seq_len > kMaxWholeInt)
    fail(where, 0, "the default seq_len " + std::to_string(o.seq_len) + " must be a positive whole number");
  if (!(o.wd >= 0) || !std::isfinite(o.wd))
    fail(where, 0, "the default wd " + format_short(o.wd) + " must be zero or positive");
  try {
    (void)parse_hyper_map(o.map);
  } catch (const InputError& e) {
    fail(where, 0, e.what());
  }
}

Hyper parse_config(std::string_view text, const std::string& where, const LogIngestOptions& o) {
  if (text.size() >= 3 && text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);  // UTF-8 BOM
  if (blank(text)) fail(where, 0, "empty config (expected a JSON object with lr, batch, params, tokens)");
  JsonNode tree;
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

// ---- the curve and the record -------------------------------------------------------------

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

void append_overriding(std::vector<Point>& curve, const Point& p) {
  while (!curve.empty() && curve.back().step >= p.step) curve.pop_back();
  curve.push_back(p);
}

ParsedRun failed(std::string message, std::size_t bytes) {
  ParsedRun r;
  r.error = std::move(message);
  r.bytes = bytes;
  return r;
}

}  // namespace log_ingest_detail

}  // namespace hpsweep
