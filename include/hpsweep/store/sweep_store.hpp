#pragma once
// The sweep store as the master sees it: a journal (written first, durable at every step)
// folded into the HDF5 file in batches. Creating, resuming, extending and recovering a sweep
// all happen in open_for_run(); nothing is written before every check has passed.
#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "hpsweep/spec/job.hpp"
#include "hpsweep/store/journal.hpp"
#include "hpsweep/store/records.hpp"

namespace hpsweep {

struct StoreOptions {
  bool extend = false;           // accept a job that only adds grid points
  bool retry_failed = false;     // rerun FAILED and TIMEOUT trials
  double fold_interval_s = 2.0;  // how often the journal is folded into the HDF5 file
};

class SweepStore {
 public:
  static SweepStore open_for_run(const std::string& path, const JobSpec& job, const std::vector<Trial>& grid,
                                 const StoreOptions& options, LaunchRecord launch);
  // Ingest and fit: opens any sweep file (recovering it if needed) or creates one that holds
  // only ingested results, and begins a launch record describing the import.
  // Without a launch (fit), no launch row is added.
  static SweepStore open_for_update(const std::string& path, std::optional<LaunchRecord> launch);
  SweepStore(SweepStore&&) = default;
  SweepStore& operator=(SweepStore&&) = delete;
  ~SweepStore();

  const SweepLog& log() const { return log_; }
  // Grid trials still to run, in grid order (most expensive first).
  const std::vector<Trial>& to_run() const { return to_run_; }
  std::size_t grid_size() const { return grid_.size(); }
  // What open_for_run() did that the user should know (recovery, lost trials, extension).
  const std::vector<std::string>& notes() const { return notes_; }

  void record_dispatch(TrialId id, int rank);
  // Sets the attempt and launch fields and appends the record.
  void record_result(TrialRecord r);
  // The same for many results at once (a CSV ingest): journaled as compressed batches.
  void record_results(std::vector<TrialRecord> records);
  void record_fit(FitRecord f);
  // Trials dispatched by this launch without a result become LOST now (a drained launch).
  std::size_t record_in_flight_lost(const std::string& why);
  // Hands journal records to the kernel; folds into HDF5 when the fold interval has passed.
  void checkpoint();
  // Records how this launch ended, folds everything into HDF5 and syncs.
  void finish(const std::string& ended);

 private:
  struct Opened {
    SweepLog log;
    std::optional<JournalWriter> journal;
    bool rebuild = false;
    std::vector<std::string> notes;
  };
  // A journal without its .h5 is either recovered (run: same job; fit) or refused (ingest: its
  // results would be pooled with the new ones).
  enum class StaleJournal { Recover, Refuse };
  // Creates a new sweep (journal + HDF5) or opens an existing one: cuts a torn journal tail,
  // merges a damaged journal with the .h5, checks a .h5 that claims to be complete against the
  // journal, decides whether the HDF5 file must be rebuilt, marks unfinished launches killed.
  // `check_compatible` sees the stored job text before anything is written.
  static Opened open_or_create(const std::string& path, const std::string& new_job_path,
                               const std::string& new_job_text,
                               const std::function<void(const std::string&)>& check_compatible,
                               StaleJournal stale_journal);
  SweepStore(std::string path, JournalWriter journal, SweepLog log, std::vector<Trial> grid, StoreOptions options);
  void fold();

  std::string path_;
  JournalWriter journal_;
  SweepLog log_;
  std::vector<Trial> grid_;
  std::vector<Trial> to_run_;
  StoreOptions options_;
  std::vector<std::string> notes_;
  std::unordered_map<TrialId, std::int32_t> attempts_;
  std::size_t folded_results_ = 0;
  bool fits_dirty_ = false;
  bool finished_ = false;
  std::int32_t launch_index_ = 0;
  std::chrono::steady_clock::time_point last_fold_;
};

// What load_sweep does when the .h5 and its journal hold different values for the same record.
enum class Disagreement {
  Refuse,  // throw StoreRefused naming both files and the first differences
  Warn,    // serve the journal's copy and put the differences in SweepLog::warnings (status)
};

// True when `path` is an HDF5 file (a sweep file) rather than, say, a job file.
bool is_sweep_file(const std::string& path);

// Everything known about a sweep, for status/report: the journal when present (it is never
// behind the HDF5 file and can be read while a run appends to it), else the HDF5 file. When no
// run holds the sweep, the records both files hold are compared (a changed or damaged .h5 is
// never hidden by its journal); a damaged journal is merged with the .h5 (nothing it lost is
// dropped) and said in `warnings`.
SweepLog load_sweep(const std::string& path, Disagreement on_disagreement = Disagreement::Refuse);

}  // namespace hpsweep
