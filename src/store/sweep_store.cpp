#include "hpsweep/store/sweep_store.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <set>
#include <unordered_set>

#include "hpsweep/spec/job_compare.hpp"
#include "hpsweep/store/hdf5_store.hpp"
#include "hpsweep/store/stored_job.hpp"
#include "hpsweep/util/error.hpp"
#include "hpsweep/util/text.hpp"
#include "hpsweep/version.hpp"

namespace hpsweep {

namespace {

bool file_exists(const std::string& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0;
}

// The .h5's contents, or nothing with the reason in `problem` when it cannot be read.
std::optional<StoreContents> read_store_or_say_why(const std::string& path, std::string& problem) {
  try {
    return read_store(path);
  } catch (const StoreRefused& e) {
    problem = e.what();
    return std::nullopt;
  }
}

enum class Placement { Replace, Exclusive };

// Journal creation is atomic: written under a temporary name, synced, then moved into place.
// Exclusive (a new sweep): linked into place, which fails if another run got there first, so two
// runs started at once on a new file never both own it; the loser is refused like any second run.
JournalWriter create_journal(const std::string& jpath, const SweepLog& log, Placement placement = Placement::Replace) {
  const std::string tmp = jpath + ".tmp-" + std::to_string(::getpid());
  std::remove(tmp.c_str());
  JournalWriter w = JournalWriter::create(tmp, log);
  for (const auto& l : log.launches) w.append_launch_begin(l);
  w.append_results(log.results.data(), log.results.size());
  for (const auto& f : log.fits) w.append_fit(f);
  w.sync();
  if (placement == Placement::Exclusive) {
    if (::link(tmp.c_str(), jpath.c_str()) != 0) {
      const int err = errno;
      std::remove(tmp.c_str());
      if (err == EEXIST)
        throw StoreRefused("another hpsweep run is writing this sweep (journal '" + jpath +
                           "' was created by it a moment ago); wait for it to finish or stop it first");
      errno = err;
      throw_system_error("cannot link journal into place", jpath);
    }
    std::remove(tmp.c_str());
    return w;
  }
  if (std::rename(tmp.c_str(), jpath.c_str()) != 0) throw_system_error("cannot rename journal into place", jpath);
  // The open descriptor (and its lock) follows the renamed file.
  return w;
}

std::optional<std::int64_t> stored_int_attr(const std::string& path, const char* name) {
  if (!file_exists(path) || !h5::is_hdf5_file(path)) return std::nullopt;
  const h5::CrashGuard guard(path, "reading its attributes");
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

std::string aside_name(const std::string& p) {
  std::string aside = p + ".damaged-" + std::to_string(static_cast<long long>(unix_now()));
  for (int i = 2; file_exists(aside); ++i)
    aside = p + ".damaged-" + std::to_string(static_cast<long long>(unix_now())) + "-" + std::to_string(i);
  return aside;
}

std::string move_aside(const std::string& p) {
  const std::string aside = aside_name(p);
  if (std::rename(p.c_str(), aside.c_str()) != 0) throw_system_error("cannot move a damaged file aside", p);
  return aside;
}

// Keeps a damaged journal under another name while it stays in place until its replacement is
// renamed over it: a kill in between leaves one or the other, never no journal.
// A run killed after the link but before the rename left the same journal linked aside already:
// that copy is named again, so one damage is kept once however often recovery is interrupted.
std::string keep_journal_aside(const std::string& jpath) {
  struct stat journal {};
  if (::stat(jpath.c_str(), &journal) == 0 && journal.st_nlink > 1) {
    const std::string prefix = jpath + ".damaged-";
    const auto slash = jpath.find_last_of('/');
    const std::string dir = slash == std::string::npos ? "." : jpath.substr(0, slash);
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
      const std::string name = (slash == std::string::npos ? "" : dir + "/") + entry.path().filename().string();
      struct stat other {};
      if (name.rfind(prefix, 0) == 0 && ::stat(name.c_str(), &other) == 0 && other.st_ino == journal.st_ino &&
          other.st_dev == journal.st_dev)
        return name;
    }
  }
  const std::string aside = aside_name(jpath);
  if (::link(jpath.c_str(), aside.c_str()) != 0) return move_aside(jpath);  // no hard links here
  return aside;
}

std::size_t count_finished(const SweepLog& log) {
  std::size_t n = 0;
  for (const auto& [id, r] : log.latest_by_id())
    if (is_terminal(r->outcome.state)) ++n;
  return n;
}

std::string describe_damage(const JournalContents& c, std::optional<std::int64_t> h5_records) {
  if (c.damaged)
    return "a bad record at byte " + std::to_string(c.damage_offset) + "; the " +
           std::to_string(c.records_after_damage) + " readable records after it were kept";
  return "it ends after " + std::to_string(c.records) + " records, but the .h5 reflects " +
         std::to_string(h5_records.value_or(0));
}

struct MergeCounts {
  std::size_t only_in_h5 = 0, only_in_journal = 0;
};

// The union of two readings of one sweep, by trial id and attempt, for when one of them lost records.
SweepLog merge_logs(const SweepLog& h5, const SweepLog& journal, MergeCounts& counts) {
  SweepLog out = h5;
  // The reading with more results saw the later job (after --extend).
  if (journal.results.size() > h5.results.size() || out.job_text.empty()) {
    out.job_text = journal.job_text;
    out.job_path = journal.job_path;
  }
  if (out.created == 0) out.created = journal.created;
  std::set<std::pair<TrialId, std::int32_t>> in_journal, in_h5;
  for (const auto& r : journal.results) in_journal.emplace(r.trial.id, r.attempt);
  for (const auto& r : h5.results) {
    in_h5.emplace(r.trial.id, r.attempt);
    if (!in_journal.count({r.trial.id, r.attempt})) ++counts.only_in_h5;
  }
  for (const auto& r : journal.results)
    if (!in_h5.count({r.trial.id, r.attempt})) {
      out.results.push_back(r);
      ++counts.only_in_journal;
    }
  // The latest attempt of an id must come last.
  std::stable_sort(out.results.begin(), out.results.end(),
                   [](const TrialRecord& a, const TrialRecord& b) { return a.attempt < b.attempt; });
  if (journal.launches.size() > out.launches.size()) out.launches.resize(journal.launches.size());
  for (std::size_t i = 0; i < journal.launches.size(); ++i) {
    LaunchRecord& mine = out.launches[i];
    const LaunchRecord& theirs = journal.launches[i];
    const bool mine_known = i < h5.launches.size();
    // A launch that recorded its end in either copy ended that way.
    if (!mine_known || (mine.ended == "running" && theirs.ended != "running")) mine = theirs;
    mine.trials_recorded = std::max(mine.trials_recorded, theirs.trials_recorded);
  }
  for (const auto& f : journal.fits) {
    auto it = std::find_if(out.fits.begin(), out.fits.end(), [&](const FitRecord& g) { return g.name == f.name; });
    if (it == out.fits.end())
      out.fits.push_back(f);
    else if (f.created > it->created)
      *it = f;
  }
  // Dispatches whose result survived in either copy are not in flight.
  out.in_flight = journal.in_flight;
  for (const auto& r : out.results) {
    auto it = out.in_flight.find(r.trial.id);
    if (it != out.in_flight.end() && it->second.launch <= r.launch) out.in_flight.erase(it);
  }
  out.warnings.clear();
  return out;
}

bool same_double(double a, double b) { return (std::isnan(a) && std::isnan(b)) || std::memcmp(&a, &b, sizeof a) == 0; }

// The first field in which two copies of one trial record differ ("" when none).
std::string first_difference(const TrialRecord& a, const TrialRecord& b) {
  auto num = [](double x, double y, const char* name) -> std::string {
    return same_double(x, y)
               ? ""
               : std::string(name) + " is " + format_double(x) + " in the .h5, " + format_double(y) + " in the journal";
  };
  if (a.trial.id != b.trial.id)
    return "the trial id is " + hex64(a.trial.id) + " in the .h5, " + hex64(b.trial.id) + " in the journal";
  if (a.attempt != b.attempt) return "attempt differs";
  if (a.outcome.state != b.outcome.state)
    return std::string("state is ") + to_string(a.outcome.state) + " in the .h5, " + to_string(b.outcome.state) +
           " in the journal";
  for (const auto& d : {num(a.outcome.final_loss, b.outcome.final_loss, "final_loss"),
                        num(a.outcome.smooth_loss, b.outcome.smooth_loss, "smooth_loss"),
                        num(a.trial.point.params, b.trial.point.params, "params"),
                        num(a.trial.point.tokens, b.trial.point.tokens, "tokens"),
                        num(a.trial.point.lr, b.trial.point.lr, "lr"), num(a.trial.point.wd, b.trial.point.wd, "wd"),
                        num(a.wall_time, b.wall_time, "wall_time"), num(a.start_time, b.start_time, "start_time")})
    if (!d.empty()) return d;
  if (a.outcome.steps != b.outcome.steps || a.trial.point.batch != b.trial.point.batch ||
      a.trial.point.seq_len != b.trial.point.seq_len || a.trial.point.repeat != b.trial.point.repeat)
    return "steps, batch, seq_len or repeat differ";
  if (a.outcome.curve.step != b.outcome.curve.step) return "the loss curve's steps differ";
  if (a.outcome.curve.loss.size() != b.outcome.curve.loss.size()) return "the loss curve's length differs";
  for (std::size_t i = 0; i < a.outcome.curve.loss.size(); ++i)
    if (!same_double(a.outcome.curve.loss[i], b.outcome.curve.loss[i]))
      return "loss curve point " + std::to_string(i) + " is " + format_double(a.outcome.curve.loss[i]) +
             " in the .h5, " + format_double(b.outcome.curve.loss[i]) + " in the journal";
  if (a.outcome.error != b.outcome.error || a.host != b.host || a.source != b.source || a.finished != b.finished ||
      a.trial.point.variant != b.trial.point.variant || a.outcome.details != b.outcome.details || a.rank != b.rank ||
      a.devices != b.devices || a.launch != b.launch)
    return "error, host, source, finished, variant, details, rank or launch differ";
  return "";
}

std::string first_difference(const FitRecord& a, const FitRecord& b) {
  if (a.options != b.options || a.kind != b.kind) return "options or kind differ";
  if (a.coefficients.size() != b.coefficients.size()) return "the number of coefficients differs";
  for (std::size_t i = 0; i < a.coefficients.size(); ++i) {
    const FitCoefficient &x = a.coefficients[i], &y = b.coefficients[i];
    const double u[5] = {x.estimate, x.mean, x.median, x.lo, x.hi}, v[5] = {y.estimate, y.mean, y.median, y.lo, y.hi};
    for (int k = 0; k < 5; ++k)
      if (!same_double(u[k], v[k]) || x.law != y.law || x.name != y.name)
        return "coefficient " + x.law + "." + x.name + " is " + format_double(u[k]) + " in the .h5, " +
               format_double(v[k]) + " in the journal";
  }
  if (a.points.size() != b.points.size()) return "the number of points differs";
  for (std::size_t i = 0; i < a.points.size(); ++i) {
    const FitPoint &x = a.points[i], &y = b.points[i];
    for (const auto& [p, q] : {std::pair{x.params, y.params},
                               {x.tokens, y.tokens},
                               {x.lr, y.lr},
                               {x.batch_tokens, y.batch_tokens},
                               {x.wd, y.wd},
                               {x.loss, y.loss}})
      if (!same_double(p, q)) return "point " + std::to_string(i) + " differs";
  }
  return "";
}

// Differences between a .h5 that claims to reflect the whole journal and the journal.
std::vector<std::string> compare_logs(const SweepLog& h5, const SweepLog& journal) {
  std::vector<std::string> diffs;
  if (h5.results.size() != journal.results.size())
    diffs.push_back("the .h5 holds " + std::to_string(h5.results.size()) + " results, the journal " +
                    std::to_string(journal.results.size()));
  for (std::size_t i = 0; i < std::min(h5.results.size(), journal.results.size()); ++i)
    if (const std::string d = first_difference(h5.results[i], journal.results[i]); !d.empty())
      diffs.push_back("row " + std::to_string(i) + " (trial " + hex64(journal.results[i].trial.id) + " attempt " +
                      std::to_string(journal.results[i].attempt) + "): " + d);
  for (const auto& f : journal.fits) {
    auto it = std::find_if(h5.fits.begin(), h5.fits.end(), [&](const FitRecord& g) { return g.name == f.name; });
    if (it == h5.fits.end())
      diffs.push_back("/fits/" + f.name + " is missing from the .h5");
    else if (const std::string d = first_difference(*it, f); !d.empty())
      diffs.push_back("/fits/" + f.name + ": " + d);
  }
  if (h5.job_text != journal.job_text) diffs.push_back("the stored job text differs");
  return diffs;
}

std::string disagreement_message(const std::string& path, const std::string& jpath,
                                 const std::vector<std::string>& diffs) {
  std::string msg = "'" + path + "' and its journal '" + jpath + "' disagree (" + std::to_string(diffs.size()) +
                    (diffs.size() == 1 ? " difference" : " differences") + "):";
  for (std::size_t i = 0; i < std::min<std::size_t>(diffs.size(), 5); ++i) msg += "\n  " + diffs[i];
  if (diffs.size() > 5) msg += "\n  ...";
  return msg;
}

// "" when the .h5 holds exactly what the journal says; else what is wrong with it.
std::string check_against_journal(const std::string& path, const std::string& jpath, const SweepLog& journal) {
  try {
    const std::vector<std::string> diffs = compare_logs(read_store(path).log, journal);
    return diffs.empty() ? "" : disagreement_message(path, jpath, diffs);
  } catch (const StoreRefused& e) {
    return std::string(e.what());
  }
}

}  // namespace

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
                                              const std::function<void(const std::string&)>& check_compatible,
                                              StaleJournal stale_journal) {
  const std::string jpath = journal_path_for(path);
  const bool have_h5 = file_exists(path), have_journal = file_exists(jpath);
  Opened o;
  SweepLog& log = o.log;
  auto& notes = o.notes;
  // Nothing below may move or rewrite a journal that a live run is appending to.
  if (have_journal && journal_is_locked(jpath))
    throw StoreRefused("another hpsweep run is writing this sweep (journal '" + jpath +
                       "' is locked); wait for it to finish or stop it first");

  if (!have_h5 && !have_journal) {
    log.schema_version = kSchemaVersion;
    log.tool_version = kToolVersion;
    log.created = unix_now();
    log.job_path = new_job_path;
    log.job_text = new_job_text;
    o.journal.emplace(create_journal(jpath, log, Placement::Exclusive));
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
    std::optional<JournalContents> contents;
    std::string unreadable;
    try {
      contents = read_journal(jpath);
    } catch (const JournalUnreadable& e) {
      unreadable = e.what();
    }
    if (!contents) {
      // Nothing in the journal can be trusted: the .h5 alone is the sweep.
      if (!have_h5)
        throw StoreRefused(unreadable + "\n'" + path + "' does not exist either: there is nothing to recover. Move '" +
                           jpath + "' away to start a new sweep.");
      StoreContents stored = read_store(path);
      check_compatible(stored.log.job_text);
      log = std::move(stored.log);
      if (log.created == 0) log.created = unix_now();
      const std::string aside = keep_journal_aside(jpath);
      o.journal.emplace(create_journal(jpath, log));
      notes.push_back("the journal is damaged (" + unreadable + "); kept it as '" + aside +
                      "' and rebuilt the journal from '" + path + "', which holds " +
                      std::to_string(log.results.size()) + " results");
      o.rebuild = true;
    } else if (!have_h5) {
      // A journal without its .h5: left by an earlier sweep. Never pooled with new results silently.
      const SweepLog& old = contents->log;
      const std::string what = std::to_string(old.results.size()) + " results, " + std::to_string(count_finished(old)) +
                               " finished trials, " + std::to_string(old.launches.size()) + " launches";
      try {
        check_compatible(old.job_text);
      } catch (const StoreRefused& e) {
        throw StoreRefused("'" + path + "' does not exist, but its journal '" + jpath + "' does (" + what +
                           ") and belongs to a different sweep; neither file was used or modified.\n" + e.what() +
                           "\nTo start a new sweep in '" + path + "', move '" + jpath + "' away first.");
      }
      if (stale_journal == StaleJournal::Refuse)
        throw StoreRefused("'" + path + "' does not exist, but its journal '" + jpath + "' does (" + what +
                           ", left by an earlier sweep); adding to it would pool those results with the new ones, "
                           "so nothing was done. Move '" +
                           jpath + "' away to start a new file, or restore '" + path + "' first.");
      log = std::move(contents->log);
      if (contents->damaged) {
        const std::string aside = keep_journal_aside(jpath);
        notes.push_back("the journal is damaged (" + describe_damage(*contents, std::nullopt) + "); kept it as '" +
                        aside + "'; the damaged record itself is lost and its trial runs again if it was a result");
        o.journal.emplace(create_journal(jpath, log));
      } else {
        o.journal.emplace(JournalWriter::open(jpath, contents->valid_bytes, contents->records));
      }
      o.rebuild = true;
      notes.push_back("'" + path + "' does not exist: recovered " + what + " from its journal '" + jpath +
                      "' (the same sweep) and rebuilt the file. To start a new sweep instead, stop and move '" + jpath +
                      "' away.");
    } else {
      JournalContents& c = *contents;
      const auto stored = stored_journal_records(path);
      // The journal lost records the .h5 may hold: a bad record in its middle, or fewer records
      // than the .h5 reflects (truncated). Both files are read and merged; nothing is dropped.
      const bool journal_lost = c.damaged || (stored && static_cast<std::uint64_t>(*stored) > c.records);
      if (journal_lost) {
        std::string h5_problem;
        const std::optional<StoreContents> h5 = read_store_or_say_why(path, h5_problem);
        MergeCounts counts;
        if (h5)
          log = merge_logs(h5->log, c.log, counts);
        else
          log = c.log;
        check_compatible(log.job_text);
        const std::string aside = keep_journal_aside(jpath);
        std::string note = "the journal is damaged (" + describe_damage(c, stored) + "); kept it as '" + aside + "'. ";
        if (h5) {
          note += "Merged '" + path + "' (" + std::to_string(h5->log.results.size()) +
                  " results) with the journal's readable records (" + std::to_string(c.log.results.size()) +
                  "): " + std::to_string(log.results.size()) + " results (" + std::to_string(counts.only_in_h5) +
                  " only in the .h5, " + std::to_string(counts.only_in_journal) +
                  " only in the journal); rebuilt the journal and the .h5 from them";
        } else {
          const std::string h5_aside = move_aside(path);
          note += "'" + path + "' cannot be read either (" + h5_problem + "); kept it as '" + h5_aside +
                  "'. Rebuilt both from the journal's " + std::to_string(c.log.results.size()) +
                  " readable results: results recorded after the damage are missing and will run again";
        }
        notes.push_back(note);
        o.journal.emplace(create_journal(jpath, log));
        o.rebuild = true;
      } else {
        check_compatible(c.log.job_text);
        log = std::move(c.log);
        if (c.torn_tail) notes.push_back("discarded a partly written journal record left by a killed run");
        o.journal.emplace(JournalWriter::open(jpath, c.valid_bytes, c.records));
        const bool last_clean = log.launches.empty() || log.launches.back().ended != "running";
        if (!h5::is_hdf5_file(path)) {
          const std::string aside = move_aside(path);
          notes.push_back("'" + path + "' was damaged by an interrupted write; moved it to '" + aside +
                          "' and rebuilt it from the journal");
          o.rebuild = true;
        } else if (!last_clean || !stored || static_cast<std::uint64_t>(*stored) != c.records) {
          o.rebuild = true;
          notes.push_back("the previous run stopped before it could close the file; rebuilt '" + path +
                          "' from the journal (nothing finished is lost)");
        } else if (stored_int_attr(path, "schema_version").value_or(kSchemaVersion) < kSchemaVersion) {
          o.rebuild = true;
          notes.push_back("rewrote '" + path + "' in the layout of schema " + std::to_string(kSchemaVersion) +
                          " (it was written by an older hpsweep; nothing is lost)");
        } else if (const std::string problem = check_against_journal(path, jpath, log); !problem.empty()) {
          // The journal's records carry checksums; a .h5 that says otherwise was changed or damaged.
          const std::string aside = move_aside(path);
          notes.push_back(problem + "\nKept '" + path + "' as '" + aside + "' and rebuilt it from the journal.");
          o.rebuild = true;
        }
      }
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
    const auto grid_ids = [](const JobSpec& j) {
      std::vector<std::uint64_t> ids;
      for (const auto& t : expand_grid(j)) ids.push_back(t.id);
      return ids;
    };
    const std::string why = explain_incompatibility(stored_text, job, grid_ids, options.extend);
    if (!why.empty()) throw StoreRefused("'" + path + "' was written by a different job; it was not modified.\n" + why);
  };
  Opened opened = open_or_create(path, job.path, job.text, check_compatible, StaleJournal::Recover);
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
  // An import adds results: never to a journal whose .h5 is gone. A fit only adds a fit of what it just read.
  Opened opened = open_or_create(
      path, "", "", [](const std::string&) {}, launch ? StaleJournal::Refuse : StaleJournal::Recover);
  std::vector<Trial> grid;
  if (const auto job = stored_job(opened.log)) grid = expand_grid(*job);
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

void SweepStore::record_results(std::vector<TrialRecord> records) {
  for (auto& r : records) {
    r.attempt = ++attempts_[r.trial.id];
    r.launch = launch_index_;
  }
  journal_.append_results(records.data(), records.size());
  if (launch_index_ >= 0)
    log_.launches[static_cast<std::size_t>(launch_index_)].trials_recorded += static_cast<std::int64_t>(records.size());
  for (auto& r : records) log_.add_result(std::move(r));
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
  store.close();
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

namespace {
SweepLog load_as_stored(const std::string& path, Disagreement on_disagreement) {
  const std::string jpath = journal_path_for(path);
  if (!file_exists(jpath)) {
    if (!file_exists(path)) throw StoreRefused("no sweep at '" + path + "' (neither the file nor its journal exists)");
    return read_store(path).log;
  }
  JournalContents c;
  try {
    c = read_journal(jpath);
  } catch (const JournalUnreadable& e) {
    if (!file_exists(path)) throw;
    SweepLog log = read_store(path).log;
    log.warnings.push_back(
        "the journal is damaged (" + std::string(e.what()) + "); showing '" + path +
        "' alone. The next `hpsweep run` (or `ingest`, `fit`) keeps the journal aside and rebuilds it from the file.");
    return log;
  }
  if (!file_exists(path)) {
    c.log.warnings.push_back("'" + path + "' does not exist; showing what its journal '" + jpath + "' holds");
    return c.log;
  }
  // A live run may be in the middle of writing the .h5: its journal is the truth.
  if (journal_is_locked(jpath)) return c.log;
  const auto stored = stored_journal_records(path);
  const bool journal_lost = c.damaged || (stored && static_cast<std::uint64_t>(*stored) > c.records);
  const bool last_clean = c.log.launches.empty() || c.log.launches.back().ended != "running";
  // Only a .h5 that claims to reflect the whole journal must agree with it; after a kill it is behind.
  const bool h5_claims_all = stored && static_cast<std::uint64_t>(*stored) == c.records && last_clean;
  if (!journal_lost && !h5_claims_all) return c.log;

  std::string h5_problem;
  const std::optional<StoreContents> h5 = read_store_or_say_why(path, h5_problem);
  std::string problem;
  if (journal_lost) {
    const std::string damage = "the journal '" + jpath + "' is damaged (" + describe_damage(c, stored) + ")";
    if (h5) {
      MergeCounts counts;
      SweepLog merged = merge_logs(h5->log, c.log, counts);
      merged.warnings.push_back(
          damage + "; showing it merged with '" + path + "' (" + std::to_string(merged.results.size()) +
          " results). The next `hpsweep run` (or `ingest`, `fit`) keeps the journal aside and rebuilds it.");
      return merged;
    }
    problem = damage + ", and '" + path + "' cannot be read either: " + h5_problem;
  } else if (!h5) {
    problem =
        h5_problem + "\nIts journal '" + jpath +
        "' is intact: the next `hpsweep run` (or `ingest` into a file of ingested results) rebuilds it from there.";
  } else if (const auto diffs = compare_logs(h5->log, c.log); !diffs.empty()) {
    problem = disagreement_message(path, jpath, diffs) +
              "\nThe journal's records carry checksums: the next `hpsweep run` (or `ingest` into a file of ingested "
              "results) keeps the .h5 aside and rebuilds it "
              "from the journal. If you changed the .h5 on purpose, remove the journal.";
  }
  if (problem.empty()) return c.log;
  if (on_disagreement == Disagreement::Refuse) throw StoreRefused(problem);
  c.log.warnings.push_back(problem);
  return c.log;
}
}  // namespace

SweepLog load_sweep(const std::string& path, Disagreement on_disagreement) {
  SweepLog log = load_as_stored(path, on_disagreement);
  // A launch still marked running while no run holds the journal's lock was killed (kill -9, or
  // mpirun ended by a signal before the master could record its end); the next run relabels it
  // in the file too.
  if (!journal_is_locked(journal_path_for(path)))
    for (auto& l : log.launches)
      if (l.ended == "running") l.ended = "killed";
  return log;
}

bool is_sweep_file(const std::string& path) { return h5::is_hdf5_file(path); }

}  // namespace hpsweep
