#include "hpsweep/ingest/lookup_table.hpp"

#include <cmath>

#include "hpsweep/ingest/csv_ingest.hpp"
#include "hpsweep/store/sweep_store.hpp"
#include "hpsweep/util/error.hpp"
#include "hpsweep/util/text.hpp"

namespace hpsweep {

namespace {

LookupRow row_of(const TrialRecord& r, std::string source) {
  LookupRow row;
  const TrialPoint& p = r.trial.point;
  row.params = p.params;
  row.tokens = p.tokens;
  row.lr = p.lr;
  row.batch = p.batch;
  row.seq_len = p.seq_len;
  row.wd = p.wd;
  row.diverged = r.outcome.state == TrialState::Diverged;
  row.final_loss = r.outcome.final_loss;
  row.smooth_loss = r.outcome.smooth_loss;
  row.steps = r.outcome.steps;
  row.error = r.outcome.error;
  row.source = std::move(source);
  return row;
}

}  // namespace

std::vector<LookupRow> read_lookup_table(const LookupSettings& settings) {
  std::vector<LookupRow> rows;
  if (is_sweep_file(settings.file)) {
    const SweepLog log = load_sweep(settings.file);
    // Answers are the latest DONE or DIVERGED attempt of every trial, in the order recorded.
    const auto latest = log.latest_by_id();
    for (const auto& r : log.results) {
      const auto it = latest.find(r.trial.id);
      if (it == latest.end() || it->second != &r) continue;
      if (r.outcome.state != TrialState::Done && r.outcome.state != TrialState::Diverged) continue;
      rows.push_back(row_of(r, settings.file + ":trial " + hex64(r.trial.id)));
    }
    return rows;
  }
  CsvIngestOptions o;
  o.columns = parse_column_map(settings.map);
  o.batch_in_tokens = settings.batch_in_tokens;
  o.seq_len = settings.seq_len;
  o.diverged_ratio = settings.diverged_ratio;
  try {
    for (auto& r : read_results_csv(settings.file, o).records) {
      std::string source = r.source.rfind("ingest:", 0) == 0 ? r.source.substr(7) : r.source;
      rows.push_back(row_of(r, std::move(source)));
    }
  } catch (const InputError& e) {
    throw InputError(std::string("[lookup] file: ") + e.what());
  }
  return rows;
}

void install_lookup_table_reader() { set_lookup_table_reader(read_lookup_table); }

}  // namespace hpsweep
