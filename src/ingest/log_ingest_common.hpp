#pragma once
// Internal to the run-log parsers (src/ingest/log_ingest*.cpp): the parts both layouts share —
// numbers, lines, JSON, the config's hyperparameters, the curve and the record.
#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "hpsweep/ingest/log_ingest.hpp"
#include "hpsweep/util/text.hpp"
#include "util/json_reader.hpp"

namespace hpsweep::log_ingest_detail {

inline constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
inline constexpr double kInf = std::numeric_limits<double>::infinity();
// Whole numbers (steps, batch, seq_len, ...) must stay exactly representable as doubles, so that
// every product and cast below is exact and defined.
inline constexpr double kMaxWhole = 9007199254740992.0;  // 2^53
inline constexpr std::int64_t kMaxWholeInt = std::int64_t{1} << 53;

// A bad run. Thrown inside the parsers only; every public parser turns it into ok = false.
struct BadRun {
  std::string message;
};

[[noreturn]] void fail(const std::string& where, std::size_t line, const std::string& why);

// ---- numbers ----
// A decimal number, or nan / inf / infinity in any case with an optional sign.
bool parse_double(std::string_view text, double& out);
// A whole number in [0, 2^53], written as an integer or as an integral decimal ("100.0", "1e3").
bool parse_whole(std::string_view text, std::int64_t& out);
// Only decimal digits (no sign, no exponent), fitting an int64.
bool parse_digits(std::string_view t, std::int64_t& out);

// ---- lines ----
struct Line {
  std::string_view text;  // without the newline and a trailing '\r'
  std::size_t number = 0;
  bool terminated = true;  // followed by a newline
};
std::vector<Line> split_lines(std::string_view text);
bool blank(std::string_view s);
// 1-based line of the first occurrence of needle in text; 0 when absent.
std::size_t line_of(std::string_view text, std::string_view needle);

// ---- JSON: util/json_reader.hpp (JsonNode, JsonScratch, parse_json, json_scalar) ----

// ---- hyperparameters ----
struct Hyper {
  double params = 0, tokens = 0, lr = 0, wd = 0;
  std::int64_t batch = 0, seq_len = 0;
  std::int64_t train_steps = 0;  // 0: not given
  std::string where;             // config path or log path (for name-derived values)
  std::size_t train_steps_line = 0;
};
void check_positive(double v, const std::string& what, const std::string& where, std::size_t line);
void check_options(const LogIngestOptions& o, const std::string& where);
Hyper parse_config(std::string_view text, const std::string& where, const LogIngestOptions& o);

// ---- the curve and the record ----
struct Point {
  std::int64_t step = 0;
  double loss = 0;
  std::size_t line = 0;
};
void append_point(std::vector<Point>& curve, const Point& p, const std::string& where);
std::string directory_of(const std::string& where);
ParsedRun build_run(const std::vector<Point>& curve, const std::string& curve_where, const Hyper& h,
                    std::int64_t target_step, const std::string& source_dir);
ParsedRun failed(std::string message, std::size_t bytes);
// Appends p; a step at or before the last one replaces the curve from that step on (a resumed
// run logs again from its checkpoint, and the later values are the ones that count).
void append_overriding(std::vector<Point>& curve, const Point& p);

// A log's first bytes read as torchtitan stdout ("step: N ... loss: X" after ANSI codes).
bool looks_like_torchtitan(std::string_view head);

// ---- configs of any format and the --map (log_ingest_config.cpp) ----
// Dotted path -> scalar text ("optimizer.lr" -> "0.0003"); list items as path.0, path.1, ...
using FlatConfig = std::map<std::string, std::string>;
// By the extension of file.where: .json, .yaml/.yml, .toml. A syntax error fails the run with the
// file's line. W&B-style {value: X, desc: ...} maps collapse to X.
void flatten_config(const RunFile& file, FlatConfig& out);
void flatten_yaml(std::string_view text, const std::string& where, FlatConfig& out);
void flatten_json(std::string_view text, const std::string& where, FlatConfig& out);
void flatten_toml(std::string_view text, const std::string& where, FlatConfig& out);  // log_ingest_toml.cpp

// The parsed --map: field ("lr", "batch", "params", "tokens", "steps", "seq_len", "wd", "loss")
// -> KEY or TAG. Throws InputError for an unknown field or an empty key.
std::map<std::string, std::string> parse_hyper_map(const std::string& spec);
// The metric names that count as the loss, in order of preference: the --map loss=TAG alone, or
// the defaults ("loss", "train/loss", "train_loss", "lm loss", ...).
std::vector<std::string> loss_tags(const LogIngestOptions& o);
// Of `tags` (in loss_tags order) the first that has values in `curves`; fails when none.
const std::vector<Point>& pick_loss_curve(const std::map<std::string, std::vector<Point>>& curves,
                                          const LogIngestOptions& o, const std::string& where);
// Hyperparameters from a run's config by the --map keys or the default keys; `where` names the
// config in messages. train_steps stays 0 and tokens 0 when the config gives neither.
Hyper hyper_from_config(const FlatConfig& config, const std::string& where, const LogIngestOptions& o);
// The target step from steps or tokens, D from steps when missing, then build_run.
ParsedRun finish_run(const std::vector<Point>& curve, const std::string& curve_where, Hyper h,
                     const std::string& source_dir, std::size_t bytes);

}  // namespace hpsweep::log_ingest_detail
