#include "hpsweep/store/sweep_store.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <functional>
#include <unordered_set>

#include "hpsweep/store/hdf5_store.hpp"
#include "hpsweep/util/error.hpp"
#include "hpsweep/util/text.hpp"
#include "hpsweep/version.hpp"

namespace hpsweep {

namespace {

bool file_exists(const std::string& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0;
}

// Journal creation is atomic: written under a temporary name, synced, then renamed.
JournalWriter create_journal(const std::string& jpath, const SweepLog& log) {
  const std::string tmp = jpath + ".tmp-" + std::to_string(::getpid());
  std::remove(tmp.c_str());
  JournalWriter w = JournalWriter::create(tmp, log);
  for (const auto& l : log.launches) w.append_launch_begin(l);
  for (const auto& r : log.results) w.append_result(r);
  for (const auto& f : log.fits) w.append_fit(f);
  w.sync();
  if (std::rename(tmp.c_str(), jpath.c_str()) != 0) throw_system_error("cannot rename journal into place", jpath);
  // The open descriptor (and its lock) follows the renamed file.
  return w;
}

std::optional<std::int64_t> stored_int_attr(const std::string& path, const char* name) {
  if (!file_exists(path) || !h5::is_hdf5_file(path)) return std::nullopt;
  try {
    h5::Id f = h5::open_file(path, false);
    if (!h5::has_attr(f, name)) return std::nullopt;
    return h5::read_int_attr(f, name, path);
  } catch (const Hdf5Error&) {
    return std::nullopt;
  }
}
std::optional<std::int64_t> stored_journal_records(const std::string& path) {
  return stored_int_attr(path, "journal_records");
}

const std::vector<std::string> kGridKeys = {
    "scales.params", "scales.tokens", "scales.tokens_per_param", "grid.lr", "grid.batch", "grid.wd", "sweep.repeats"};
// Keys that change no trial: the name and the target only matter to reports.
const std::vector<std::string> kCosmeticKeys = {"sweep.name", "target.params", "target.tokens"};

bool contains(const std::vector<std::string>& v, const std::string& k) {
  return std::find(v.begin(), v.end(), k) != v.end();
}

// Keys whose change adds or removes trials rather than changing existing ones: the grid, and the
// [variants] rows (a variant's settings are part of its own trials' ids).
bool is_grid_key(const std::string& key) { return contains(kGridKeys, key) || key.rfind("variants.", 0) == 0; }

}  // namespace

std::string explain_incompatibility(const std::string& stored_job_text, const JobSpec& job, bool extend,
                                    bool* needs_extend) {
  if (needs_extend) *needs_extend = false;
  if (stored_job_text == job.text) return "";
  JobSpec old;
  try {
    old = parse_job(stored_job_text, "<job stored in the sweep file>");
  } catch (const InputError& e) {
    return std::string("the job stored in the file no longer parses with this hpsweep: ") + e.what();
  }
  std::string diff;
  std::map<std::string, std::string> keys = old.canonical;
  for (const auto& [k, v] : job.canonical) keys.emplace(k, v);
  for (const auto& [k, unused] : keys) {
    if (is_grid_key(k) || contains(kCosmeticKeys, k)) continue;
    const auto a = old.canonical.count(k) ? old.canonical.at(k) : "(unset)";
    const auto b = job.canonical.count(k) ? job.canonical.at(k) : "(unset)";
    if (a != b) diff += "\n  " + k + ": stored " + a + ", now " + b;
  }
  if (!diff.empty()) return "settings that change trial results differ:" + diff;

  std::unordered_set<TrialId> new_ids;
  for (const auto& t : expand_grid(job)) new_ids.insert(t.id);
  std::size_t removed = 0, added = 0;
  std::unordered_set<TrialId> old_ids;
  for (const auto& t : expand_grid(old)) {
    old_ids.insert(t.id);
    if (!new_ids.count(t.id)) ++removed;
  }
  for (TrialId id : new_ids)
    if (!old_ids.count(id)) ++added;
  std::string grid_diff;
  for (const auto& [k, unused] : keys) {
    if (!is_grid_key(k)) continue;
    const auto a = old.canonical.count(k) ? old.canonical.at(k) : "(unset)";
    const auto b = job.canonical.count(k) ? job.canonical.at(k) : "(unset)";
    if (a != b) grid_diff += "\n  " + k + ": stored " + a + ", now " + b;
  }
  if (removed > 0)
    return "the job removes " + std::to_string(removed) + " grid points of the stored sweep:" + grid_diff +
           "\n  (use a new output file for a different grid)";
  if (added > 0) {
    if (needs_extend) *needs_extend = true;
    if (!extend)
      return "the job adds " + std::to_string(added) + " grid points to the stored sweep:" + grid_diff +
             "\n  rerun with --extend to add them";
  }
  return "";
}

SweepStore::SweepStore(std::string path, JournalWriter journal, SweepLog log, std::vector<Trial> grid,
                       StoreOptions options)
    : path_(std::move(path)),
      journal_(std::move(journal)),
      log_(std::move(log)),
      grid_(std::move(grid)),
      options_(options),
      last_fold_(std::chrono::steady_clock::now()) {}

SweepStore::~SweepStore() {
  if (finished_) return;
  try {
    journal_.write_out();  // the next run folds and recovers
  } catch (...) {
  }
}

SweepStore::Opened SweepStore::open_or_create(const std::string& path, const std::string& new_job_path,
                                              const std::string& new_job_text,
                                              const std::function<void(const std::string&)>& check_compatible) {
  const std::string jpath = journal_path_for(path);
  const bool have_h5 = file_exists(path), have_journal = file_exists(jpath);
  Opened o;
  SweepLog& log = o.log;
  auto& notes = o.notes;

  if (!have_h5 && !have_journal) {
    log.schema_version = kSchemaVersion;
    log.tool_version = kToolVersion;
    log.created = unix_now();
    log.job_path = new_job_path;
    log.job_text = new_job_text;
    o.journal.emplace(create_journal(jpath, log));
    o.rebuild = true;
  } else if (!have_journal) {
    // An HDF5 file on its own (copied, or the journal was removed): it becomes the journal's base.
    StoreContents stored = read_store(path);
    check_compatible(stored.log.job_text);
    log = std::move(stored.log);
    if (log.created == 0) log.created = unix_now();
    o.journal.emplace(create_journal(jpath, log));
    notes.push_back("rebuilt the journal '" + jpath + "' from '" + path + "'");
    if (log.schema_version < kSchemaVersion)
      notes.push_back("rewrote '" + path + "' in the layout of schema " + std::to_string(kSchemaVersion) +
                      " (it was written by an older hpsweep; nothing is lost)");
    o.rebuild = true;
  } else {
    JournalContents contents = read_journal(jpath);
    check_compatible(contents.log.job_text);
    log = std::move(contents.log);
    if (contents.torn_tail) notes.push_back("discarded a partly written journal record left by a killed run");
    o.journal.emplace(JournalWriter::open(jpath, contents.valid_bytes, contents.records));
    const bool last_clean = log.launches.empty() || log.launches.back().ended != "running";
    const auto stored = stored_journal_records(path);
    if (!have_h5) {
      o.rebuild = true;
      notes.push_back("'" + path + "' is missing; rebuilt it from its journal '" + jpath +
                      "' (to start a new sweep, delete both files)");
    } else if (!h5::is_hdf5_file(path)) {
      const std::string aside = path + ".damaged-" + std::to_string(static_cast<long long>(unix_now()));
      if (std::rename(path.c_str(), aside.c_str()) != 0) throw_system_error("cannot move damaged file aside", path);
      notes.push_back("'" + path + "' was damaged by an interrupted write; moved it to '" + aside +
                      "' and rebuilt it from the journal");
      o.rebuild = true;
    } else if (!last_clean || !stored || static_cast<std::uint64_t>(*stored) != contents.records) {
      o.rebuild = true;
      notes.push_back("the previous run stopped before it could close the file; rebuilt '" + path +
                      "' from the journal (nothing finished is lost)");
    } else if (stored_int_attr(path, "schema_version").value_or(kSchemaVersion) < kSchemaVersion) {
      o.rebuild = true;
      notes.push_back("rewrote '" + path + "' in the layout of schema " + std::to_string(kSchemaVersion) +
                      " (it was written by an older hpsweep; nothing is lost)");
    }
  }
  // A rebuilt file is written in the current layout, whatever version wrote the records.
  if (o.rebuild) log.schema_version = kSchemaVersion;
  // Launches that never recorded their end were killed.
  for (auto& l : log.launches)
    if (l.ended == "running") {
      l.ended = "killed";
      l.trials_recorded = std::count_if(log.results.begin(), log.results.end(),
                                        [&](const TrialRecord& r) { return r.launch == l.index; });
      o.journal->append_launch_end(l);
    }
  return o;
}

SweepStore SweepStore::open_for_run(const std::string& path, const JobSpec& job, const std::vector<Trial>& grid,
                                    const StoreOptions& options, LaunchRecord launch) {
  auto check_compatible = [&](const std::string& stored_text) {
    if (stored_text.empty())
      throw StoreRefused("'" + path +
                         "' holds ingested results, not a sweep run by a job; it was not modified. "
                         "Run the job into a new file.");
    const std::string why = explain_incompatibility(stored_text, job, options.extend);
    if (!why.empty()) throw StoreRefused("'" + path + "' was written by a different job; it was not modified.\n" + why);
  };
  Opened opened = open_or_create(path, job.path, job.text, check_compatible);
  SweepLog& log = opened.log;
  auto& notes = opened.notes;
  auto& journal = opened.journal;
  bool rebuild = opened.rebuild;

  if (log.job_text != job.text) {
    journal->append_job(job.path, job.text);
    log.job_text = job.text;
    log.job_path = job.path;
    notes.push_back("stored job updated (extended grid or changed name/target)");
    rebuild = true;  // the /grid table and job attributes change
  }

  // Trials dispatched by a killed launch without a result are LOST.
  std::unordered_map<TrialId, std::int32_t> attempts;
  for (const auto& r : log.results) attempts[r.trial.id] = std::max(attempts[r.trial.id], r.attempt);
  std::unordered_map<TrialId, const Trial*> by_id;
  for (const auto& t : grid) by_id[t.id] = &t;
  std::size_t lost = 0;
  std::vector<DispatchRecord> in_flight;
  for (const auto& [id, d] : log.in_flight) in_flight.push_back(d);
  std::sort(in_flight.begin(), in_flight.end(), [](auto& a, auto& b) { return a.id < b.id; });
  for (const auto& d : in_flight) {
    auto it = by_id.find(d.id);
    if (it == by_id.end()) continue;
    TrialRecord r;
    r.trial = *it->second;
    r.outcome.state = TrialState::Lost;
    r.outcome.error =
        "rank " + std::to_string(d.rank) + " was running it when launch " + std::to_string(d.launch) + " stopped";
    r.start_time = d.time;
    r.rank = d.rank;
    r.attempt = ++attempts[d.id];
    r.launch = d.launch;
    journal->append_result(r);
    log.add_result(std::move(r));
    ++lost;
  }
  log.in_flight.clear();
  if (lost)
    notes.push_back(std::to_string(lost) + " trials were running when the previous run stopped: LOST, run again now");

  launch.index = static_cast<std::int32_t>(log.launches.size());
  launch.ended = "running";
  journal->append_launch_begin(launch);
  log.launches.push_back(launch);
  journal->sync();

  SweepStore store(path, std::move(*journal), std::move(log), grid, options);
  store.attempts_ = std::move(attempts);
  store.launch_index_ = launch.index;

  const auto latest = store.log_.latest_by_id();
  std::size_t retried = 0;
  for (const auto& t : store.grid_) {
    auto it = latest.find(t.id);
    if (it == latest.end()) {
      store.to_run_.push_back(t);
      continue;
    }
    const TrialState s = it->second->outcome.state;
    const bool failed = s == TrialState::Failed || s == TrialState::Timeout;
    if (!is_terminal(s) || (failed && options.retry_failed)) {
      store.to_run_.push_back(t);
      if (failed) ++retried;
    }
  }
  if (retried) notes.push_back("retrying " + std::to_string(retried) + " FAILED/TIMEOUT trials (--retry-failed)");

  if (rebuild) {
    Hdf5Store::write_snapshot(path, store.log_, store.grid_, store.journal_.records());
    store.folded_results_ = store.log_.results.size();
  } else {
    store.folded_results_ = store.log_.results.size() - lost;
    store.fold();
  }
  store.notes_ = std::move(notes);
  return store;
}

SweepStore SweepStore::open_for_update(const std::string& path, std::optional<LaunchRecord> launch) {
  Opened opened = open_or_create(path, "", "", [](const std::string&) {});
  std::vector<Trial> grid;
  if (!opened.log.job_text.empty())
    grid = expand_grid(parse_job(opened.log.job_text, "<job stored in the sweep file>"));
  if (launch) {
    launch->index = static_cast<std::int32_t>(opened.log.launches.size());
    launch->ended = "running";
    opened.journal->append_launch_begin(*launch);
    opened.log.launches.push_back(*launch);
  }
  opened.journal->sync();
  SweepStore store(path, std::move(*opened.journal), std::move(opened.log), std::move(grid), StoreOptions{});
  for (const auto& r : store.log_.results)
    store.attempts_[r.trial.id] = std::max(store.attempts_[r.trial.id], r.attempt);
  store.launch_index_ = launch ? launch->index : -1;
  if (opened.rebuild) {
    Hdf5Store::write_snapshot(path, store.log_, store.grid_, store.journal_.records());
    store.folded_results_ = store.log_.results.size();
  } else {
    store.folded_results_ = store.log_.results.size();
    store.fold();
  }
  store.notes_ = std::move(opened.notes);
  return store;
}

void SweepStore::record_dispatch(TrialId id, int rank) {
  const DispatchRecord d{id, launch_index_, rank, unix_now()};
  journal_.append_dispatch(d);
  log_.add_dispatch(d);
}

std::size_t SweepStore::record_in_flight_lost(const std::string& why) {
  std::vector<DispatchRecord> lost;
  for (const auto& [id, d] : log_.in_flight)
    if (d.launch == launch_index_) lost.push_back(d);
  std::sort(lost.begin(), lost.end(), [](auto& a, auto& b) { return a.id < b.id; });
  std::unordered_map<TrialId, const Trial*> by_id;
  for (const auto& t : grid_) by_id[t.id] = &t;
  for (const auto& d : lost) {
    TrialRecord r;
    r.trial = by_id.count(d.id) ? *by_id[d.id] : Trial{d.id, {}};
    r.outcome.state = TrialState::Lost;
    r.outcome.error = "rank " + std::to_string(d.rank) + ": " + why;
    r.start_time = d.time;
    r.rank = d.rank;
    record_result(std::move(r));
  }
  return lost.size();
}

void SweepStore::record_result(TrialRecord r) {
  r.attempt = ++attempts_[r.trial.id];
  r.launch = launch_index_;
  journal_.append_result(r);
  log_.add_result(std::move(r));
  if (launch_index_ >= 0) ++log_.launches[static_cast<std::size_t>(launch_index_)].trials_recorded;
}

void SweepStore::record_fit(FitRecord f) {
  journal_.append_fit(f);
  log_.add_fit(std::move(f));
  fits_dirty_ = true;
}

void SweepStore::checkpoint() {
  journal_.write_out();
  if (std::chrono::steady_clock::now() - last_fold_ >= std::chrono::duration<double>(options_.fold_interval_s)) fold();
}

void SweepStore::fold() {
  // The journal must be durable before the HDF5 file claims to reflect it.
  journal_.sync();
  Hdf5Store store = Hdf5Store::open(path_);
  store.append_results(log_, folded_results_);
  folded_results_ = log_.results.size();
  store.write_launches(log_.launches);
  if (fits_dirty_) store.write_fits(log_.fits);
  fits_dirty_ = false;
  store.set_journal_records(journal_.records());
  store.flush();
  last_fold_ = std::chrono::steady_clock::now();
}

void SweepStore::finish(const std::string& ended) {
  if (launch_index_ >= 0) {
    LaunchRecord& l = log_.launches[static_cast<std::size_t>(launch_index_)];
    l.ended = ended;
    l.end_time = unix_now();
    journal_.append_launch_end(l);
  }
  fold();
  finished_ = true;
}

SweepLog load_sweep(const std::string& path) {
  const std::string jpath = journal_path_for(path);
  if (file_exists(jpath)) return read_journal(jpath).log;
  if (!file_exists(path)) throw StoreRefused("no sweep at '" + path + "' (neither the file nor its journal exists)");
  return read_store(path).log;
}

}  // namespace hpsweep
