// The run-log parsers' entry points that do not depend on the layout: layout names, reading run
// directories, finding them, and the fuzzing support. The layouts: log_ingest_jsonl.cpp and
// log_ingest_megatron.cpp; their shared helpers: log_ingest_common.cpp.
#include "hpsweep/ingest/log_ingest.hpp"

#include "ingest/log_ingest_common.hpp"

#include <algorithm>
#include <cctype>
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

using namespace log_ingest_detail;
namespace fs = std::filesystem;

namespace {

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

}  // namespace

// ---- public -------------------------------------------------------------------------------

namespace {

struct LayoutName {
  LogLayout layout;
  const char* name;
};
constexpr LayoutName kLayoutNames[] = {
    {LogLayout::JsonLines, "jsonl"},       {LogLayout::Megatron, "megatron"}, {LogLayout::TensorBoard, "tensorboard"},
    {LogLayout::Lightning, "lightning"},   {LogLayout::MLflow, "mlflow"},     {LogLayout::HfTrainer, "hf-trainer"},
    {LogLayout::Torchtitan, "torchtitan"}, {LogLayout::Wandb, "wandb"},       {LogLayout::Auto, "auto"},
};

bool starts_with(const std::string& s, std::string_view prefix) { return s.rfind(prefix, 0) == 0; }
bool is_event_file(const std::string& name) { return starts_with(name, "events.out.tfevents."); }
bool is_wandb_file(const std::string& name) {
  return (starts_with(name, "run-") && fs::path(name).extension() == ".wandb") || name == "wandb-history.jsonl";
}
bool is_text_log(const fs::path& p) { return p.extension() == ".log" || p.extension() == ".out"; }

// The files of `dir` (names, sorted); subdirectories in `subdirs`.
void list_dir(const std::string& dir, std::vector<std::string>& files, std::vector<std::string>& subdirs) {
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::error_code fec;
    if (it->is_directory(fec))
      subdirs.push_back(it->path().filename().string());
    else if (it->is_regular_file(fec))
      files.push_back(it->path().filename().string());
  }
  std::sort(files.begin(), files.end());
  std::sort(subdirs.begin(), subdirs.end());
}

bool has(const std::vector<std::string>& v, const std::string& x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

std::string read_head(const std::string& path, std::size_t n) {
  std::ifstream in(path, std::ios::binary);
  std::string s(n, '\0');
  in.read(s.data(), static_cast<std::streamsize>(n));
  s.resize(static_cast<std::size_t>(std::max<std::streamsize>(0, in.gcount())));
  return s;
}

// The run's config for the layouts that read one: the first of these names in `dir`, then in its
// parent (a TensorBoard folder often sits in the run's output directory).
RunFile find_config(const std::string& dir, std::string& why, bool& error) {
  static const char* const kNames[] = {"config.yaml", "config.yml",   "config.json",
                                       "config.toml", "hparams.yaml", "hparams.json"};
  error = false;
  for (const std::string& d : {dir, fs::path(dir).parent_path().string()}) {
    if (d.empty()) continue;
    for (const char* name : kNames) {
      const std::string path = (d == "/" ? d : d + "/") + name;
      std::error_code ec;
      if (!fs::is_regular_file(path, ec)) continue;
      RunFile f;
      f.where = path;
      if (!read_file(path, f.text, why)) {
        why = path + ":0: " + why;
        error = true;
      }
      return f;
    }
  }
  return {};
}

// The newest checkpoint's trainer_state.json (by number), or <dir>/trainer_state.json.
std::string hf_state_path(const std::string& dir, const std::vector<std::string>& files,
                          const std::vector<std::string>& subdirs) {
  std::int64_t best = -1;
  std::string path;
  for (const auto& s : subdirs) {
    std::int64_t n = 0;
    std::error_code ec;
    if (starts_with(s, "checkpoint-") && parse_digits(std::string_view(s).substr(11), n) && n > best &&
        fs::is_regular_file(dir + "/" + s + "/trainer_state.json", ec)) {
      best = n;
      path = dir + "/" + s + "/trainer_state.json";
    }
  }
  if (path.empty() && has(files, "trainer_state.json")) path = dir + "/trainer_state.json";
  return path;
}

// The one text log of a megatron or torchtitan run: train.log, else the only *.log / *.out file.
bool text_log_path(const std::string& dir, const std::vector<std::string>& files, std::string& path, std::string& why) {
  if (has(files, "train.log")) {
    path = dir + "/train.log";
    return true;
  }
  std::vector<std::string> logs;
  for (const auto& f : files)
    if (is_text_log(f)) logs.push_back(f);
  if (logs.size() == 1) {
    path = dir + "/" + logs.front();
    return true;
  }
  if (logs.empty()) {
    why = dir + ":0: no train.log or other *.log file";
    return false;
  }
  std::string list;
  for (const auto& l : logs) list += (list.empty() ? "" : ", ") + l;
  const bool all_log =
      std::all_of(logs.begin(), logs.end(), [](const std::string& l) { return fs::path(l).extension() == ".log"; });
  why = dir + ":0: " + std::to_string(logs.size()) + (all_log ? " *.log files" : " log files") +
        " and none is train.log (" + list + ")";
  return false;
}

}  // namespace

// ---- public -------------------------------------------------------------------------------

LogLayout parse_layout(const std::string& name) {
  const std::string n = to_lower(trim(name));
  std::vector<std::string> names;
  for (const auto& l : kLayoutNames) {
    if (n == l.name) return l.layout;
    names.push_back(l.name);
  }
  const std::string guess = closest_match(n, names);
  throw InputError(
      "--layout: unknown layout '" + name +
      "' (expected auto, jsonl, megatron, tensorboard, lightning, mlflow, hf-trainer, torchtitan or wandb)" +
      (guess.empty() ? "" : "; did you mean '" + guess + "'?"));
}

const char* to_string(LogLayout layout) {
  for (const auto& l : kLayoutNames)
    if (l.layout == layout) return l.name;
  return "?";
}

bool detect_layout(const std::string& dir, LogLayout& layout) {
  std::vector<std::string> files, subdirs;
  list_dir(dir, files, subdirs);
  // Most specific first: an MLflow run or an HF output directory may hold other logs too.
  if (has(files, "meta.yaml") && has(subdirs, "metrics")) {
    layout = LogLayout::MLflow;
  } else if (!hf_state_path(dir, files, subdirs).empty()) {
    layout = LogLayout::HfTrainer;
  } else if (std::any_of(files.begin(), files.end(), is_wandb_file)) {
    layout = LogLayout::Wandb;
  } else if (has(files, "metrics.csv")) {
    layout = LogLayout::Lightning;
  } else if (std::any_of(files.begin(), files.end(), is_event_file)) {
    layout = LogLayout::TensorBoard;
  } else if (has(files, "metrics.jsonl")) {
    layout = LogLayout::JsonLines;
  } else {
    std::string path, why;
    if (!text_log_path(dir, files, path, why)) return false;
    const std::string head = read_head(path, 64 * 1024);
    // Megatron's unless it reads as torchtitan's: a log with neither is reported by the Megatron
    // parser, whose message says what it looked for.
    layout = head.find("lm loss") == std::string::npos && looks_like_torchtitan(head) ? LogLayout::Torchtitan
                                                                                      : LogLayout::Megatron;
  }
  return true;
}

ParsedRun parse_run_directory(const std::string& dir_in, LogLayout layout, const LogIngestOptions& options) {
  const std::string dir = strip_trailing_slashes(dir_in);
  const std::string prefix = dir == "/" ? dir : dir + "/";
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return failed(dir + ":0: not a directory", 0);
  if (layout == LogLayout::Auto && !detect_layout(dir, layout))
    return failed(dir + ":0: no known run layout (see examples/ingest/README.md)", 0);
  std::string why;
  ParsedRun r;
  std::vector<std::string> files, subdirs;
  if (layout != LogLayout::JsonLines) list_dir(dir, files, subdirs);
  auto read = [&](const std::string& path, RunFile& f) {
    f.where = path;
    if (read_file(path, f.text, why)) return true;
    why = path + ":0: " + why;
    return false;
  };
  bool config_error = false;
  switch (layout) {
    case LogLayout::JsonLines: {
      const std::string metrics_path = prefix + "metrics.jsonl", config_path = prefix + "config.json";
      std::string metrics, config;
      if (!read_file(metrics_path, metrics, why)) return failed(metrics_path + ":0: " + why, 0);
      if (!read_file(config_path, config, why)) return failed(config_path + ":0: " + why, metrics.size());
      r = parse_jsonl_run(metrics, metrics_path, config, config_path, options);
      break;
    }
    case LogLayout::Megatron: {
      // Megatron reads *.log files only.
      files.erase(std::remove_if(files.begin(), files.end(),
                                 [](const std::string& f) { return fs::path(f).extension() != ".log"; }),
                  files.end());
      std::string log_path;
      if (!text_log_path(dir, files, log_path, why)) return failed(why, 0);
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
      break;
    }
    case LogLayout::TensorBoard: {
      std::vector<RunFile> events;
      for (const auto& f : files)
        if (is_event_file(f)) {
          events.emplace_back();
          if (!read(prefix + f, events.back())) return failed(why, 0);
        }
      const RunFile config = find_config(dir, why, config_error);
      if (config_error) return failed(why, 0);
      r = parse_tensorboard_run(events, config, options);
      break;
    }
    case LogLayout::Lightning: {
      RunFile metrics, hparams;
      if (!read(prefix + "metrics.csv", metrics)) return failed(why, 0);
      if (has(files, "hparams.yaml") && !read(prefix + "hparams.yaml", hparams)) return failed(why, 0);
      r = parse_lightning_run(metrics, hparams, options);
      break;
    }
    case LogLayout::MLflow: {
      RunFile meta;
      if (!read(prefix + "meta.yaml", meta)) return failed(why, 0);
      std::vector<RunFile> metrics, params;
      for (const auto& [sub, out] : {std::pair{"metrics", &metrics}, std::pair{"params", &params}}) {
        const std::string base = prefix + sub;
        if (!fs::is_directory(base, ec)) continue;
        for (fs::recursive_directory_iterator it(base, ec), end; !ec && it != end; it.increment(ec)) {
          std::error_code fec;
          if (!it->is_regular_file(fec)) continue;
          out->emplace_back();
          if (!read(it->path().string(), out->back())) return failed(why, 0);
          out->back().key = it->path().lexically_relative(base).generic_string();  // "train/loss"
        }
      }
      r = parse_mlflow_run(meta, metrics, params, options);
      break;
    }
    case LogLayout::HfTrainer: {
      RunFile state;
      const std::string path = hf_state_path(dir, files, subdirs);
      if (path.empty()) return failed(dir + ":0: no checkpoint-*/trainer_state.json", 0);
      if (!read(path, state)) return failed(why, 0);
      const RunFile config = find_config(dir, why, config_error);
      if (config_error) return failed(why, 0);
      r = parse_hf_trainer_run(state, config, options);
      break;
    }
    case LogLayout::Torchtitan: {
      std::string log_path;
      if (!text_log_path(dir, files, log_path, why)) return failed(why, 0);
      RunFile log;
      if (!read(log_path, log)) return failed(why, 0);
      const RunFile config = find_config(dir, why, config_error);
      if (config_error) return failed(why, 0);
      r = parse_torchtitan_run(log, config, options);
      break;
    }
    case LogLayout::Wandb: {
      // The .wandb file (there is one per run; the newest name if a folder holds several), else
      // the older wandb-history.jsonl.
      std::string name;
      for (const auto& f : files)
        if (is_wandb_file(f) && f != "wandb-history.jsonl") name = f;
      if (name.empty() && has(files, "wandb-history.jsonl")) name = "wandb-history.jsonl";
      if (name.empty()) return failed(dir + ":0: no run-*.wandb or wandb-history.jsonl file", 0);
      RunFile log, config;
      if (!read(prefix + name, log)) return failed(why, 0);
      for (const char* c : {"files/config.yaml", "config.yaml"})
        if (fs::is_regular_file(prefix + c, ec)) {
          if (!read(prefix + c, config)) return failed(why, 0);
          break;
        }
      r = parse_wandb_run(log, config, options);
      break;
    }
    case LogLayout::Auto:
      break;
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
  const bool any = layout == LogLayout::Auto;
  for (; it != end; it.increment(ec)) {
    if (ec) throw InputError("cannot list '" + root + "': " + ec.message());
    std::error_code fec;
    if (!it->is_regular_file(fec)) continue;
    const fs::path& p = it->path();
    const std::string name = p.filename().string();
    const fs::path parent = p.parent_path();
    fs::path run;
    // W&B's own debug logs (in its run folders and, as links, in wandb/) are no training logs.
    const bool wandb_debug_log = any && starts_with(name, "debug") && p.extension() == ".log";
    if ((any || layout == LogLayout::Megatron) && p.extension() == ".log" && !wandb_debug_log) run = parent;
    if ((any || layout == LogLayout::Torchtitan) && is_text_log(p) && !wandb_debug_log) run = parent;
    if ((any || layout == LogLayout::JsonLines) && name == "metrics.jsonl") run = parent;
    if ((any || layout == LogLayout::TensorBoard) && is_event_file(name)) run = parent;
    if ((any || layout == LogLayout::Lightning) && name == "metrics.csv") run = parent;
    if ((any || layout == LogLayout::Wandb) && is_wandb_file(name)) run = parent;
    if ((any || layout == LogLayout::MLflow) && name == "meta.yaml" && fs::is_directory(parent / "metrics", fec))
      run = parent;
    if ((any || layout == LogLayout::HfTrainer) && name == "trainer_state.json")
      run = starts_with(parent.filename().string(), "checkpoint-") ? parent.parent_path() : parent;
    if (!run.empty()) dirs.insert(strip_trailing_slashes(run.string()));
  }
  if (ec) throw InputError("cannot list '" + root + "': " + ec.message());
  std::vector<std::string> out;
  for (const auto& d : dirs) {
    LogLayout l;
    // A folder inside a run another layout claims (W&B's logs/, HF's runs/ TensorBoard folder, ...)
    // is part of that run.
    bool inside = false;
    if (any)
      for (fs::path parent = fs::path(d).parent_path(); !parent.empty() && parent != parent.parent_path();
           parent = parent.parent_path())
        if (dirs.count(parent.string()) && detect_layout(parent.string(), l) &&
            (l == LogLayout::MLflow || l == LogLayout::HfTrainer || l == LogLayout::Wandb)) {
          inside = true;
          break;
        }
    if (!inside) out.push_back(d);
  }
  return out;
}

// ---- fuzzing support ----------------------------------------------------------------------

ParsedRun parse_fuzz_input(std::string_view data) {
  const char selector = data.empty() ? 'J' : data.front();
  if (!data.empty()) data.remove_prefix(1);
  const LogIngestOptions options;
  if (selector == 'K')  // the TOML reader: the whole input is config.toml beside a fixed valid torchtitan log
    return parse_torchtitan_run(RunFile{"fuzz/train.log", "step: 1  loss: 3.5\nstep: 2  loss: 3.25\n", ""},
                                RunFile{"fuzz/config.toml", std::string(data), ""}, options);
  if (selector == 'T' || selector == 'L' || selector == 'F' || selector == 'H' || selector == 'C' || selector == 'W' ||
      selector == 'w') {
    // The first part may be binary (TFRecord): split the two text parts off the end.
    std::string_view parts[3] = {data, {}, {}};
    const std::size_t last = data.rfind('\0');
    if (last != std::string_view::npos) {
      parts[2] = data.substr(last + 1);
      const std::size_t before = last == 0 ? std::string_view::npos : data.rfind('\0', last - 1);
      if (before != std::string_view::npos) {
        parts[1] = data.substr(before + 1, last - before - 1);
        parts[0] = data.substr(0, before);
      } else {
        parts[1] = data.substr(0, last);
        parts[0] = {};
      }
    }
    // The config's file name picks its format; only name characters, so messages stay "where:line: why".
    std::string name;
    for (char c : parts[2].substr(0, 40))
      if (std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-') name += c;
    if (name.empty()) name = "config.yaml";
    RunFile config{"fuzz/" + name, std::string(parts[1]), ""};
    if (selector == 'T')
      return parse_tensorboard_run({RunFile{"fuzz/events.out.tfevents.1", std::string(parts[0]), ""}}, config, options);
    if (selector == 'L')
      return parse_lightning_run(RunFile{"fuzz/metrics.csv", std::string(parts[0]), ""},
                                 RunFile{"fuzz/hparams.yaml", std::string(parts[1]), ""}, options);
    if (selector == 'H')
      return parse_hf_trainer_run(RunFile{"fuzz/checkpoint-1/trainer_state.json", std::string(parts[0]), ""}, config,
                                  options);
    if (selector == 'W' || selector == 'w')
      return parse_wandb_run(
          RunFile{selector == 'W' ? "fuzz/run-x.wandb" : "fuzz/wandb-history.jsonl", std::string(parts[0]), ""},
          parts[1].empty() ? RunFile{} : RunFile{"fuzz/config.yaml", std::string(parts[1]), ""}, options);
    if (selector == 'C')
      return parse_torchtitan_run(RunFile{"fuzz/train.log", std::string(parts[0]), ""}, config, options);
    // 'F': part 0 is metrics/loss, part 1 meta.yaml, part 2 "key value" param lines.
    std::vector<RunFile> params;
    for (const auto& line : split(parts[2], '\n')) {
      const std::size_t sp = line.find(' ');
      if (sp == std::string::npos) continue;
      params.push_back(RunFile{"fuzz/params/" + line.substr(0, sp), line.substr(sp + 1), line.substr(0, sp)});
    }
    return parse_mlflow_run(RunFile{"fuzz/meta.yaml", std::string(parts[1]), ""},
                            {RunFile{"fuzz/metrics/loss", std::string(parts[0]), "loss"}}, params, options);
  }
  const bool megatron = static_cast<unsigned char>(selector) & 1u;
  std::string parts[3];
  for (int i = 0; i < 3; ++i) {
    const std::size_t nul = i < 2 ? data.find('\0') : std::string_view::npos;
    parts[i] = std::string(data.substr(0, nul));
    if (nul == std::string_view::npos) break;
    data.remove_prefix(nul + 1);
  }
  if (megatron) return parse_megatron_run(parts[0], "fuzz/train.log", parts[2], parts[1], "fuzz/config.json", options);
  return parse_jsonl_run(parts[0], "fuzz/metrics.jsonl", parts[1], "fuzz/config.json", options);
}

std::string make_fuzz_input(LogLayout layout, std::string_view log_text, std::string_view config_text,
                            std::string_view run_name) {
  char selector = 'J';
  switch (layout) {
    case LogLayout::Megatron:
      selector = 'M';
      break;
    case LogLayout::TensorBoard:
      selector = 'T';
      break;
    case LogLayout::Lightning:
      selector = 'L';
      break;
    case LogLayout::MLflow:
      selector = 'F';
      break;
    case LogLayout::HfTrainer:
      selector = 'H';
      break;
    case LogLayout::Torchtitan:
      selector = 'C';
      break;
    case LogLayout::Wandb:
      selector = log_text.substr(0, 4) == ":W&B" ? 'W' : 'w';
      break;
    default:
      break;
  }
  std::string out(1, selector);
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
