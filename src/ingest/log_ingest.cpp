// The run-log parsers' entry points that do not depend on the layout: layout names, reading run
// directories, finding them, and the fuzzing support. The layouts: log_ingest_jsonl.cpp and
// log_ingest_megatron.cpp; their shared helpers: log_ingest_common.cpp.
#include "hpsweep/ingest/log_ingest.hpp"

#include "ingest/log_ingest_common.hpp"

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

LogLayout parse_layout(const std::string& name) {
  const std::string n = to_lower(trim(name));
  if (n == "jsonl") return LogLayout::JsonLines;
  if (n == "megatron") return LogLayout::Megatron;
  const std::string guess = closest_match(n, {"jsonl", "megatron"});
  throw InputError("--layout: unknown layout '" + name + "' (expected jsonl or megatron)" +
                   (guess.empty() ? "" : "; did you mean '" + guess + "'?"));
}

const char* to_string(LogLayout layout) { return layout == LogLayout::JsonLines ? "jsonl" : "megatron"; }

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
