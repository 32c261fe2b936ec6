#include "hpsweep/ingest.hpp"

#include "hpsweep/store/sweep_store.hpp"
#include "hpsweep/util/text.hpp"

namespace hpsweep {

IngestSummary ingest_csv(const std::string& csv_path, const std::string& store_path, const CsvIngestOptions& options,
                         const std::string& command_line) {
  // Everything is parsed and validated before the store is touched.
  CsvIngestResult parsed = read_results_csv(csv_path, options);
  IngestSummary s;
  s.rows = parsed.rows;
  s.duplicates = parsed.duplicates;
  s.skipped = std::move(parsed.skipped);

  LaunchRecord launch;
  launch.start_time = unix_now();
  launch.ranks = 1;
  launch.hosts = host_name();
  launch.command = command_line;
  SweepStore store = SweepStore::open_for_update(store_path, launch);
  s.notes = store.notes();
  const auto present = store.log().latest_by_id();
  for (auto& r : parsed.records) {
    if (present.count(r.trial.id)) {
      ++s.already_present;
      continue;
    }
    if (r.outcome.state == TrialState::Diverged) ++s.diverged;
    r.start_time = launch.start_time;
    store.record_result(std::move(r));
    ++s.imported;
  }
  store.finish("completed");
  return s;
}

}  // namespace hpsweep
