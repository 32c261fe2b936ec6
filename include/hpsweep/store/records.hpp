#pragma once
// What a sweep knows: launches, dispatches and trial results. The journal and the HDF5 file
// are two encodings of the same SweepLog.
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "hpsweep/trials/outcome.hpp"
#include "hpsweep/trials/trial.hpp"
#include "hpsweep/util/serialize.hpp"

namespace hpsweep {

// One row of the trial table: one attempt of one trial and how it ended.
struct TrialRecord {
  Trial trial;
  TrialOutcome outcome;
  double start_time = 0;  // unix seconds
  double wall_time = 0;   // seconds
  std::int32_t rank = -1;
  std::string host;
  std::int32_t attempt = 1;  // 1 for the first run of this id, +1 for each rerun
  std::int32_t launch = 0;   // index into the launch table
  std::string source;        // "" for trials run by the sweep's job; "ingest:FILE:LINE" for imported ones
  bool finished = true;      // ingested logs: reached the target step (unfinished runs are not fitted)
  std::string devices;       // GPUs the attempt owned: "0,1" or "host-a:0,1 host-b:0,1"; "" without [resources]
};

// One row per `hpsweep run` invocation on the file.
struct LaunchRecord {
  std::int32_t index = 0;
  double start_time = 0;
  double end_time = 0;  // 0 while running or when killed
  std::int32_t ranks = 0;
  std::string hosts;
  std::string slurm_job_id;
  std::int32_t slurm_restart_count = 0;
  std::string command;
  std::string ended = "running";  // running | completed | interrupted | killed | failed
  std::int64_t trials_recorded = 0;
};

struct DispatchRecord {
  TrialId id = 0;
  std::int32_t launch = 0;
  std::int32_t rank = 0;
  double time = 0;
};

// A fit stored with the sweep (`hpsweep fit`), so it can be compared and replayed later.
struct FitCoefficient {
  std::string law, name;
  double estimate = 0, mean = 0, median = 0, lo = 0, hi = 0;
};
struct FitPoint {
  double params = 0, tokens = 0, lr = 0, batch_tokens = 0, wd = 0, loss = 0;
};
// What a stored result is; files written before kinds existed say it in their options (legacy_result_kind).
enum class ResultKind : std::uint8_t { Fit = 0, Transfer = 1, CoordCheck = 2 };
const char* to_string(ResultKind k);
// Parses to_string's names; nullopt for anything else.
std::optional<ResultKind> parse_result_kind(const std::string& s);
// The kind of a result stored without one: coordcheck options start with "coordcheck;", transfer
// fits carry "transfer=1".
ResultKind legacy_result_kind(const std::string& options);

struct FitRecord {
  std::string name;
  ResultKind kind = ResultKind::Fit;
  std::string options;  // canonical fit options
  double created = 0;
  std::string json;  // the whole report, as `hpsweep fit --json` prints it
  std::vector<FitCoefficient> coefficients;
  std::vector<FitPoint> points;  // the per-cell points the laws rest on
  std::uint64_t results = 0;     // trial records the fit saw: log.results[0, results)
};

struct SweepLog {
  int schema_version = 0;
  std::string tool_version;
  double created = 0;
  std::string job_path;
  std::string job_text;
  std::vector<LaunchRecord> launches;
  std::vector<TrialRecord> results;  // in the order they were recorded
  // Dispatched but without a result yet: RUNNING if the launch lives, LOST otherwise.
  std::unordered_map<TrialId, DispatchRecord> in_flight;
  std::vector<FitRecord> fits;  // a later fit of the same name replaces an earlier one
  // What the reader noticed but could serve anyway (e.g. the .h5 and its journal disagree).
  std::vector<std::string> warnings;

  void add_fit(FitRecord f);

  void add_result(TrialRecord r);
  void add_dispatch(const DispatchRecord& d) { in_flight[d.id] = d; }
  // Latest terminal (or LOST) record per id and attempt counts.
  std::unordered_map<TrialId, const TrialRecord*> latest_by_id() const;
};

void encode(ByteWriter& w, const Trial& t);
Trial decode_trial(ByteReader& r);
void encode(ByteWriter& w, const TrialRecord& t);
TrialRecord decode_trial_record(ByteReader& r);
void encode(ByteWriter& w, const LaunchRecord& l);
LaunchRecord decode_launch_record(ByteReader& r);
void encode(ByteWriter& w, const FitRecord& f);
FitRecord decode_fit_record(ByteReader& r);

}  // namespace hpsweep
