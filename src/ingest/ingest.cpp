#include "hpsweep/ingest/ingest.hpp"

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <set>
#include <unordered_map>

#include "hpsweep/scheduler/master.hpp"
#include "hpsweep/scheduler/worker.hpp"
#include "hpsweep/scheduler/worker_pool.hpp"
#include "hpsweep/store/sweep_store.hpp"
#include "hpsweep/util/error.hpp"
#include "hpsweep/util/exit_codes.hpp"
#include "hpsweep/util/serialize.hpp"
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
  std::vector<TrialRecord> fresh;
  for (auto& r : parsed.records) {
    if (present.count(r.trial.id)) {
      ++s.already_present;
      continue;
    }
    if (r.outcome.state == TrialState::Diverged) ++s.diverged;
    r.start_time = launch.start_time;
    fresh.push_back(std::move(r));
  }
  s.imported = fresh.size();
  store.record_results(std::move(fresh));
  store.finish("completed");
  return s;
}

namespace {

// Ingest runs on the one worker engine: the JOB carries the layout and options, a TASK a batch of
// directories, a RESULT a batch of parsed runs.
// "auto" means: decide per directory from the files it holds.
std::string encode_ingest_job(const std::string& layout, const LogIngestOptions& o) {
  ByteWriter w;
  w.put_string(layout);
  w.put(o.seq_len);
  w.put(o.wd);
  w.put_string(o.map);
  w.put<std::uint8_t>(o.batch_in_tokens ? 1 : 0);
  return w.take();
}

std::string encode_runs(const std::vector<ParsedRun>& runs) {
  ByteWriter w;
  w.put<std::uint64_t>(runs.size());
  for (const auto& r : runs) {
    w.put<std::uint8_t>(r.ok ? 1 : 0);
    w.put_string(r.error);
    w.put<std::uint64_t>(r.bytes);
    w.put<std::int64_t>(r.target_step);
    if (r.ok) encode(w, r.record);
  }
  return w.take();
}

std::vector<ParsedRun> decode_runs(const std::string& payload) {
  ByteReader r(payload);
  std::vector<ParsedRun> out(r.get<std::uint64_t>());
  for (auto& p : out) {
    p.ok = r.get<std::uint8_t>() != 0;
    p.error = r.get_string();
    p.bytes = r.get<std::uint64_t>();
    p.target_step = r.get<std::int64_t>();
    if (p.ok) p.record = decode_trial_record(r);
  }
  return out;
}

constexpr std::size_t kBatch = 32;  // directories per message: amortises the round trip

// A worker's side: parses every directory of a batch.
class DirectoryBatchParser : public TaskRunner {
 public:
  explicit DirectoryBatchParser(const std::string& job_payload) {
    ByteReader r(job_payload);
    const std::string layout_name = r.get_string();
    layout_ = parse_layout(layout_name);  // Auto: each directory by its files
    options_.seq_len = r.get<std::int64_t>();
    options_.wd = r.get<double>();
    options_.map = r.get_string();
    options_.batch_in_tokens = r.get<std::uint8_t>() != 0;
  }
  protocol::TaskResult run(const std::string& task_payload) override {
    const auto t0 = std::chrono::steady_clock::now();
    ByteReader paths(task_payload);
    const auto n = paths.get<std::uint64_t>();
    std::vector<ParsedRun> runs;
    for (std::uint64_t i = 0; i < n; ++i) {
      const std::string dir = paths.get_string();
      ParsedRun p = parse_run_directory(dir, layout_, options_);
      p.record.finished = p.finished;
      runs.push_back(std::move(p));
    }
    return protocol::TaskResult{std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(),
                                encode_runs(runs)};
  }

 private:
  LogLayout layout_ = LogLayout::Auto;
  LogIngestOptions options_;
};

// The master's side: batches of `dirs` out, parsed runs into the store (the only writer).
class DirectoryBatches : public TaskHandler {
 public:
  DirectoryBatches(const std::vector<std::string>& dirs, SweepStore& store, double start_time, LogIngestSummary& s)
      : dirs_(dirs), store_(store), start_time_(start_time), s_(s) {
    for (const auto& [id, rec] : store.log().latest_by_id()) present_[id] = true;
  }
  std::size_t count() const override { return (dirs_.size() + kBatch - 1) / kBatch; }
  std::string dispatch(std::size_t index, int) override {
    const std::size_t first = index * kBatch, n = std::min(kBatch, dirs_.size() - first);
    ByteWriter w;
    w.put<std::uint64_t>(n);
    for (std::size_t i = first; i < first + n; ++i) w.put_string(dirs_[i]);
    return w.take();
  }
  void on_result(int, std::string payload) override {
    for (auto& run : decode_runs(payload)) {
      s_.bytes += run.bytes;
      if (!run.ok) {
        s_.bad.push_back(run.error);
        continue;
      }
      if (present_.count(run.record.trial.id)) {
        ++s_.already_present;
        continue;
      }
      present_[run.record.trial.id] = true;
      if (!run.record.finished) {
        ++s_.unfinished;
        const std::string& src = run.record.source;
        s_.unfinished_runs.push_back((src.rfind("ingest:", 0) == 0 ? src.substr(7) : src) + ": reached step " +
                                     std::to_string(run.record.outcome.steps) + " of " +
                                     std::to_string(run.target_step) + " (stored as unfinished, left out of fits)");
      }
      if (run.record.outcome.state == TrialState::Diverged) ++s_.diverged;
      run.record.start_time = start_time_;
      // One record each, not a compressed batch: run logs carry curves, which deflate poorly
      // and would cost the master (the only writer) more time than the bytes they save.
      store_.record_result(std::move(run.record));
      ++s_.imported;
    }
  }
  void on_idle() override { store_.checkpoint(); }

 private:
  const std::vector<std::string>& dirs_;
  SweepStore& store_;
  double start_time_;
  LogIngestSummary& s_;
  std::unordered_map<TrialId, bool> present_;
};

}  // namespace

void run_ingest_worker(Comm& comm, const std::string& host) {
  serve_tasks(comm, host, [](const std::string& job_payload) -> std::unique_ptr<TaskRunner> {
    return std::make_unique<DirectoryBatchParser>(job_payload);
  });
}

LogIngestSummary ingest_run_logs(Comm& comm, const std::string& root, const std::string& store_path,
                                 const std::string& layout, const LogIngestOptions& options,
                                 const std::string& command_line) {
  const auto t0 = std::chrono::steady_clock::now();
  LogIngestSummary s;
  const std::vector<std::string> dirs = find_run_directories(root, parse_layout(layout));
  s.runs = dirs.size();
  s.workers = comm.size() - 1;

  LaunchRecord launch;
  launch.start_time = unix_now();
  launch.ranks = comm.size();
  launch.hosts = host_name();
  launch.command = command_line;
  SweepStore store = SweepStore::open_for_update(store_path, launch);
  s.notes = store.notes();

  auto warn = [](const std::string& m) { std::fprintf(stderr, "hpsweep: warning: %s\n", m.c_str()); };
  const auto workers = start_workers(comm, encode_ingest_job(layout, options), warn);
  DirectoryBatches batches(dirs, store, launch.start_time, s);
  run_tasks(comm, workers, batches, MasterOptions{});
  stop_workers(comm, protocol::Tag::Stop);
  await_departures(comm, std::chrono::milliseconds(15000));
  store.finish("completed");
  s.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return s;
}

int ingest_run_logs_on_workers(int& argc, char**& argv, int local_workers, const std::string& root,
                               const std::string& store_path, const std::string& layout,
                               const LogIngestOptions& options, const std::string& command_line,
                               const std::function<void(const LogIngestSummary&)>& report) {
  WorkerPoolOptions pool;
  pool.local_workers = local_workers;
  pool.single_rank_error = "hpsweep ingest under MPI needs at least 2 ranks (1 master + workers)";
  return run_with_workers(
      argc, argv, pool,
      [&](Comm& comm) {
        if (layout != "auto") parse_layout(layout);  // a bad name is an input error before anything starts
        report(ingest_run_logs(comm, root, store_path, layout, options, command_line));
        return static_cast<int>(kExitOk);
      },
      run_ingest_worker);
}

}  // namespace hpsweep
