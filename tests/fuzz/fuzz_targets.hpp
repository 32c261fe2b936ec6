#pragma once
// The fuzz targets: one function per parser family, each taking the fuzzer's bytes and returning
// "" when the parser kept its promises, else what it broke. Crashes and undefined behaviour are
// caught by the sanitizers of the fuzz build. The libFuzzer mains (tests/fuzz/fuzz_*.cpp) and the
// unit test that replays the kept corpus (tests/unit/test_fuzz_corpus.cpp) call the same
// functions, so a kept crasher is replayed exactly as it was found.
//
//   log      every run-log layout and its config readers (hpsweep::parse_fuzz_input, byte 0 picks
//            the layout: T tensorboard, W .wandb, w wandb-history.jsonl, L lightning, F mlflow,
//            H hf-trainer, C torchtitan, M megatron, J jsonl, K the TOML reader)
//   csv      the CSV results ingest (byte 0: options, the rest: the file)
//   job      the job file (INI) parser and the job validation behind it
//   command  the command backend's result protocol (byte 0 bit 0: whole text is JSON, else stdout)
#include <cmath>
#include <cstdint>
#include <exception>
#include <sstream>
#include <string>
#include <string_view>

#include "hpsweep/backends/command.hpp"
#include "hpsweep/ingest/csv_ingest.hpp"
#include "hpsweep/ingest/log_ingest.hpp"
#include "hpsweep/spec/job.hpp"
#include "hpsweep/util/error.hpp"

namespace hpsweep::fuzz {

// "where:line: reason" with a numeric line (the messages of every file parser).
inline bool names_file_and_line(const std::string& e, const std::string& where) {
  if (e.rfind(where + ":", 0) != 0) return false;
  std::size_t i = where.size() + 1;
  const std::size_t digits = i;
  while (i < e.size() && e[i] >= '0' && e[i] <= '9') ++i;
  return i > digits && e.compare(i, 2, ": ") == 0 && i + 2 < e.size();
}

inline std::string fuzz_log_parsers(std::string_view data) {
  const ParsedRun run = parse_fuzz_input(data);
  return check_parsed_run(run);
}

inline std::string fuzz_csv_ingest(std::string_view data) {
  const unsigned flags = data.empty() ? 0u : static_cast<unsigned char>(data.front());
  if (!data.empty()) data.remove_prefix(1);
  CsvIngestOptions o;
  o.columns = {{"lr", "lr"}, {"batch", "batch"}, {"loss", "loss"}, {"params", "params"}, {"tokens", "tokens"}};
  if (flags & 1u) o.columns["final_loss"] = "final_loss";
  if (flags & 2u) o.columns["wd"] = "wd";
  if (flags & 4u) o.columns["seq_len"] = "seq_len";
  if (flags & 8u) o.columns["steps"] = "steps";
  o.batch_in_tokens = flags & 16u;
  o.strict = flags & 32u;
  if (flags & 64u) o.diverged_above = 5;
  const std::string where = "fuzz/results.csv";
  std::istringstream in{std::string(data)};
  CsvIngestResult r;
  try {
    r = read_results_csv(in, where, o);
  } catch (const InputError& e) {
    const std::string m = e.what();
    if (m.rfind(where + ":", 0) != 0 && m.rfind("--map:", 0) != 0) return "error does not name the file: " + m;
    return "";
  } catch (const std::exception& e) {
    return std::string("an exception other than InputError: ") + e.what();
  }
  for (const auto& s : r.skipped)
    if (!names_file_and_line(s, where)) return "skipped row is not 'file:line: reason': " + s;
  for (const auto& rec : r.records) {
    const TrialPoint& p = rec.trial.point;
    if (!(p.params > 0) || !std::isfinite(p.params) || !(p.tokens > 0) || !std::isfinite(p.tokens) || !(p.lr > 0) ||
        !std::isfinite(p.lr) || p.batch < 1 || p.seq_len < 1 || !(p.wd >= 0) || !std::isfinite(p.wd))
      return "invalid coordinates: " + canonical_coordinates(p);
    if (rec.trial.id != ingested_trial_id(p, rec.outcome.smooth_loss)) return "id is not the content hash";
    if (rec.outcome.steps < 0) return "negative steps";
    if (std::isfinite(rec.outcome.smooth_loss) && !(rec.outcome.smooth_loss > 0)) return "a non-positive loss";
    if (!std::isfinite(rec.outcome.smooth_loss) && rec.outcome.state != TrialState::Diverged)
      return "a non-finite loss that is not DIVERGED";
  }
  if (r.records.size() + r.skipped.size() + r.duplicates != r.rows) return "rows do not add up";
  return "";
}

inline std::string fuzz_job_file(std::string_view data) {
  const std::string where = "fuzz/job.ini";
  try {
    const JobSpec job = parse_job(std::string(data), where);
    (void)job;
  } catch (const InputError& e) {
    const std::string m = e.what();
    if (m.rfind(where, 0) != 0) return "error does not name the job file: " + m;
  } catch (const std::exception& e) {
    return std::string("an exception other than InputError: ") + e.what();
  }
  return "";
}

inline std::string fuzz_command_result(std::string_view data) {
  const bool whole_text = !data.empty() && (static_cast<unsigned char>(data.front()) & 1u);
  if (!data.empty()) data.remove_prefix(1);
  TrialOutcome out;
  std::string why;
  bool ok = false;
  try {
    ok = parse_command_result(std::string(data), whole_text, out, why);
  } catch (const std::exception& e) {
    return std::string("parse_command_result threw: ") + e.what();
  }
  if (!ok) return why.empty() ? "refused without a reason" : "";
  if (out.curve.step.size() != out.curve.loss.size()) return "ragged curve";
  if (out.state != TrialState::Done && out.state != TrialState::Diverged) return "state is neither DONE nor DIVERGED";
  if (out.state == TrialState::Diverged && out.error.empty()) return "DIVERGED without a reason";
  return "";
}

}  // namespace hpsweep::fuzz
