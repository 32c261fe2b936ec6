// The megatron layout: a Megatron-LM train.log ("iteration N/M | ... | lm loss: X |" lines) +
// an optional config.json; without one the hyperparameters come from the Step Law run name.
#include "hpsweep/ingest/log_ingest.hpp"

#include <cctype>
#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "hpsweep/util/text.hpp"
#include "ingest/log_ingest_common.hpp"

namespace hpsweep {

using namespace log_ingest_detail;

namespace {

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

}  // namespace

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

}  // namespace hpsweep
