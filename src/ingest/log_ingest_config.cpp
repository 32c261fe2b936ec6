// A run's own config (JSON, YAML or TOML: log_ingest_toml.cpp) flattened to dotted keys, and the hyperparameters read
// from it by the --map keys or the default keys (declared in log_ingest_common.hpp).
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>

#include "hpsweep/util/error.hpp"
#include "hpsweep/util/text.hpp"
#include "ingest/log_ingest_common.hpp"

namespace hpsweep {

void check_hyper_map(const std::string& spec) { (void)log_ingest_detail::parse_hyper_map(spec); }

namespace log_ingest_detail {

namespace {

std::string join_key(const std::string& prefix, const std::string& key) {
  return prefix.empty() ? key : prefix + "." + key;
}

constexpr int kMaxConfigDepth = 64;

// W&B writes config.yaml as {key: {desc: ..., value: X}}: the value is what counts.
bool wandb_wrapped(const YAML::Node& n) {
  if (!n.IsMap() || !n["value"]) return false;
  for (const auto& kv : n) {
    const std::string k = kv.first.as<std::string>("");
    if (k != "value" && k != "desc") return false;
  }
  return true;
}

void flatten_yaml_node(const YAML::Node& n, const std::string& prefix, FlatConfig& out, int depth,
                       const std::string& where) {
  if (depth > kMaxConfigDepth) fail(where, 0, "config nested deeper than " + std::to_string(kMaxConfigDepth));
  if (n.IsScalar()) {
    out[prefix] = n.Scalar();
  } else if (n.IsSequence()) {
    std::size_t i = 0;
    for (const auto& item : n) flatten_yaml_node(item, join_key(prefix, std::to_string(i++)), out, depth + 1, where);
  } else if (n.IsMap()) {
    if (wandb_wrapped(n)) return flatten_yaml_node(n["value"], prefix, out, depth + 1, where);
    for (const auto& kv : n) {
      if (!kv.first.IsScalar()) continue;  // complex keys name nothing a --map could address
      flatten_yaml_node(kv.second, join_key(prefix, kv.first.Scalar()), out, depth + 1, where);
    }
  }
}

void flatten_json_node(const JsonNode& t, const std::string& prefix, FlatConfig& out) {
  if (t.children.empty()) {
    if (!prefix.empty()) out[prefix] = t.text;
    return;
  }
  // {"value": X, "desc": ...} as W&B writes it
  auto count = [&](std::string_view key) {
    return std::count_if(t.children.begin(), t.children.end(), [&](const JsonNode& c) { return c.key == key; });
  };
  if (count("value") == 1 && t.children.size() <= 2 && (t.children.size() == 1 || count("desc") == 1))
    return flatten_json_node(*t.find("value"), prefix, out);
  std::size_t i = 0;
  for (const JsonNode& child : t.children)
    flatten_json_node(child, join_key(prefix, child.key.empty() ? std::to_string(i++) : child.key), out);
}

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// The default keys of each field, most specific first. A key also matches as the last parts of a
// longer path ("lr" matches "optimizer.lr") when exactly one path ends with it.
const std::map<std::string, std::vector<std::string>>& default_keys() {
  static const std::map<std::string, std::vector<std::string>> keys = {
      {"lr", {"lr", "learning_rate", "optimizer.lr", "optim.lr", "peak_lr", "max_lr", "log_history.max_learning_rate"}},
      {"batch",
       {"batch", "global_batch_size", "batch_size", "global_batch", "train_batch_size",
        "trainer_state.train_batch_size", "log.global_batch_size"}},
      {"params", {"params", "n_params", "num_params", "non_embedding_params", "model_params", "log.total_parameters"}},
      {"tokens", {"tokens", "train_tokens", "total_tokens", "num_tokens", "training_tokens"}},
      {"steps",
       {"train_steps", "max_steps", "train_iters", "total_steps", "num_train_steps", "steps", "trainer_state.max_steps",
        "log.total_steps"}},
      {"seq_len",
       {"seq_len", "seq_length", "max_seq_len", "max_seq_length", "block_size", "sequence_length", "log.seq_len"}},
      {"wd", {"wd", "weight_decay", "optimizer.weight_decay"}},
  };
  return keys;
}

const std::vector<std::string>& default_loss_tags() {
  static const std::vector<std::string> tags = {"loss",
                                                "train/loss",
                                                "train_loss",
                                                "training/loss",
                                                "loss/train",
                                                "Loss/train",
                                                "train_loss_step",
                                                "lm loss",
                                                "lm_loss",
                                                "train/lm_loss",
                                                "loss_metrics/global_avg_loss"};
  return tags;
}

// Where the field's value is in the config: the --map key (exact), or the first default key found.
bool find_key(const FlatConfig& c, const std::string& field, const std::map<std::string, std::string>& map,
              std::string& key, const std::string& where) {
  const auto m = map.find(field);
  if (m != map.end()) {
    if (c.count(m->second) == 0)
      fail(where, 0, "no \"" + m->second + "\" in the config (from --map " + field + "=" + m->second + ")");
    key = m->second;
    return true;
  }
  // Values the layout read from its own files (log.*, trainer_state.*, log_history.*) count only
  // when the config has none: they are not matched by suffix, and are tried last.
  auto fallback = [](const std::string& k) {
    return k.rfind("log.", 0) == 0 || k.rfind("trainer_state.", 0) == 0 || k.rfind("log_history.", 0) == 0;
  };
  const auto& candidates = default_keys().at(field);
  for (const auto& k : candidates)
    if (!fallback(k) && c.count(k)) {
      key = k;
      return true;
    }
  for (const auto& k : candidates) {
    if (fallback(k)) continue;
    std::string found;
    int matches = 0;
    for (const auto& [path, value] : c)
      if (!fallback(path) && ends_with(path, "." + k)) {
        found = path;
        ++matches;
      }
    if (matches == 1) {
      key = found;
      return true;
    }
    if (matches > 1)
      fail(where, 0, "several keys end in \"" + k + "\" (for " + field + "); name one with --map " + field + "=KEY");
  }
  for (const auto& k : candidates)
    if (fallback(k) && c.count(k)) {
      key = k;
      return true;
    }
  return false;
}

std::string candidates_text(const std::string& field) {
  std::string out;
  for (const auto& k : default_keys().at(field)) out += (out.empty() ? "" : ", ") + k;
  return out;
}

}  // namespace

void flatten_yaml(std::string_view text, const std::string& where, FlatConfig& out) {
  try {
    const YAML::Node root = YAML::Load(std::string(text));
    if (root.IsNull()) return;
    if (!root.IsMap()) fail(where, 1, "not a YAML mapping");
    flatten_yaml_node(root, "", out, 0, where);
  } catch (const YAML::Exception& e) {
    fail(where, e.mark.is_null() ? 0 : static_cast<std::size_t>(e.mark.line) + 1, "not valid YAML: " + e.msg);
  }
}

void flatten_json(std::string_view text, const std::string& where, FlatConfig& out) {
  if (text.size() >= 3 && text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);
  JsonNode tree;
  std::string why;
  std::size_t line = 0;
  JsonScratch scratch;
  if (!parse_json(text, tree, why, line, scratch)) fail(where, line, why);
  flatten_json_node(tree, "", out);
}

void flatten_config(const RunFile& file, FlatConfig& out) {
  const std::string ext = to_lower(std::filesystem::path(file.where).extension().string());
  if (blank(file.text)) fail(file.where, 0, "empty config");
  if (ext == ".yaml" || ext == ".yml") return flatten_yaml(file.text, file.where, out);
  if (ext == ".json") return flatten_json(file.text, file.where, out);
  if (ext == ".toml") return flatten_toml(file.text, file.where, out);
  fail(file.where, 0, "unknown config format (expected .json, .yaml, .yml or .toml)");
}

std::map<std::string, std::string> parse_hyper_map(const std::string& spec) {
  static const std::vector<std::string> fields = {"lr", "batch", "params", "tokens", "steps", "seq_len", "wd", "loss"};
  std::map<std::string, std::string> out;
  if (trim(spec).empty()) return out;
  for (const auto& item : split(spec, ',')) {
    const std::size_t eq = item.find('=');
    const std::string field = to_lower(trim(item.substr(0, eq == std::string::npos ? item.size() : eq)));
    const std::string key = eq == std::string::npos ? "" : trim(item.substr(eq + 1));
    if (std::find(fields.begin(), fields.end(), field) == fields.end()) {
      const std::string guess = closest_match(field, fields);
      throw InputError("--map: unknown field '" + field +
                       "' for run directories (expected lr, batch, params, tokens, steps, seq_len, wd, loss)" +
                       (guess.empty() ? "" : "; did you mean '" + guess + "'?"));
    }
    if (key.empty()) throw InputError("--map: " + field + "= needs a KEY (a dotted path into the run's config)");
    if (out.count(field)) throw InputError("--map: " + field + " is given twice");
    out[field] = key;
  }
  return out;
}

std::vector<std::string> loss_tags(const LogIngestOptions& o) {
  const auto map = parse_hyper_map(o.map);
  const auto it = map.find("loss");
  if (it != map.end()) return {it->second};
  return default_loss_tags();
}

const std::vector<Point>& pick_loss_curve(const std::map<std::string, std::vector<Point>>& curves,
                                          const LogIngestOptions& o, const std::string& where) {
  const auto tags = loss_tags(o);
  for (const auto& t : tags) {
    const auto it = curves.find(t);
    if (it != curves.end() && !it->second.empty()) return it->second;
  }
  std::string list;
  for (const auto& t : tags) list += (list.empty() ? "'" : ", '") + t + "'";
  fail(where, 0, "no loss values (none of the metrics " + list + "; name the loss with --map loss=TAG)");
}

Hyper hyper_from_config(const FlatConfig& c, const std::string& where, const LogIngestOptions& o) {
  const auto map = parse_hyper_map(o.map);
  Hyper h;
  h.where = where;
  auto value = [&](const std::string& field, const std::string& meaning, bool required, double& out) {
    std::string key;
    if (!find_key(c, field, map, key, where)) {
      if (required)
        fail(where, 0,
             "no " + field + " (" + meaning + ") in the config: none of " + candidates_text(field) +
                 "; name it with --map " + field + "=KEY");
      return false;
    }
    const std::string& text = c.at(key);
    if (!parse_double(text, out)) fail(where, 0, "\"" + key + "\" (" + field + ") is not a number: " + shown(text));
    return true;
  };
  auto whole = [&](const std::string& field, const std::string& meaning, bool required, std::int64_t& out) {
    double v = 0;
    if (!value(field, meaning, required, v)) return false;
    if (!(v >= 1) || v > kMaxWhole || v != std::floor(v))
      fail(where, 0, field + " must be a positive whole number, got " + format_short(v, 6));
    out = static_cast<std::int64_t>(v);
    return true;
  };
  value("lr", "peak learning rate", true, h.lr);
  check_positive(h.lr, "lr", where, 0);
  value("params", "non-embedding parameters N", true, h.params);
  check_positive(h.params, "params", where, 0);
  if (!whole("seq_len", "tokens per sequence", false, h.seq_len)) h.seq_len = o.seq_len;
  std::int64_t batch = 0;
  whole("batch", "global batch size", true, batch);
  if (o.batch_in_tokens) {
    if (batch % h.seq_len != 0)
      fail(where, 0,
           "batch " + std::to_string(batch) + " tokens is not a whole number of sequences of " +
               std::to_string(h.seq_len) + " tokens");
    batch /= h.seq_len;
  }
  h.batch = batch;
  if (value("tokens", "training tokens D", false, h.tokens)) check_positive(h.tokens, "tokens", where, 0);
  whole("steps", "training steps", false, h.train_steps);
  if (value("wd", "weight decay", false, h.wd)) {
    if (!(h.wd >= 0) || !std::isfinite(h.wd))
      fail(where, 0, "wd must be zero or positive, got " + format_short(h.wd, 6));
  } else {
    h.wd = o.wd;
  }
  return h;
}

ParsedRun finish_run(const std::vector<Point>& curve, const std::string& curve_where, Hyper h,
                     const std::string& source_dir, std::size_t bytes) {
  if (curve.empty()) fail(curve_where, 0, "no loss values (empty curve)");
  std::int64_t target = h.train_steps;
  if (target == 0) {
    if (h.tokens <= 0)
      fail(h.where, 0, "neither training steps nor tokens in the config; name one with --map steps=KEY or tokens=KEY");
    const double steps = std::ceil(h.tokens / (static_cast<double>(h.batch) * static_cast<double>(h.seq_len)));
    if (!(steps >= 1) || steps > kMaxWhole)
      fail(h.where, 0, "tokens / (batch * seq_len) = " + format_short(steps) + " steps is out of range");
    target = static_cast<std::int64_t>(steps);
  }
  if (h.tokens <= 0)
    h.tokens = static_cast<double>(target) * static_cast<double>(h.batch) * static_cast<double>(h.seq_len);
  check_positive(h.tokens, "tokens", h.where, 0);
  ParsedRun r = build_run(curve, curve_where, h, target, source_dir);
  r.bytes = bytes;
  return r;
}

}  // namespace log_ingest_detail

}  // namespace hpsweep
