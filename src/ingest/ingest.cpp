#include "hpsweep/ingest/ingest.hpp"

#include <chrono>
#include <deque>
#include <filesystem>
#include <set>
#include <unordered_map>

#include "hpsweep/scheduler/comm.hpp"
#include "hpsweep/scheduler/protocol.hpp"
#include "hpsweep/store/sweep_store.hpp"
#include "hpsweep/util/error.hpp"
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

namespace {

// Ingest messages reuse the scheduler's tags: kJob carries the layout and options, kTrial a batch
// of directories, kResult a batch of parsed runs, kStop ends the worker.
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
    if (p.ok) p.record = decode_trial_record(r);
  }
  return out;
}

constexpr std::size_t kBatch = 32;  // directories per message: amortises the round trip

}  // namespace

void stop_workers_for_ingest(Comm& comm) {
  for (int w = 1; w < comm.size(); ++w) comm.send(w, protocol::kStop, "");
}

void run_ingest_worker(Comm& comm) {
  Message msg;
  while (!comm.receive(msg, std::chrono::milliseconds(1000))) {
  }
  if (msg.tag != protocol::kJob) return;
  ByteReader r(msg.payload);
  const std::string layout_name = r.get_string();
  const LogLayout layout = parse_layout(layout_name);  // Auto: each directory by its files
  LogIngestOptions o;
  o.seq_len = r.get<std::int64_t>();
  o.wd = r.get<double>();
  o.map = r.get_string();
  o.batch_in_tokens = r.get<std::uint8_t>() != 0;
  comm.send(0, protocol::kReady, "");
  while (true) {
    if (!comm.receive(msg, std::chrono::milliseconds(1000))) continue;
    if (msg.tag != protocol::kTrial) return;
    ByteReader paths(msg.payload);
    const auto n = paths.get<std::uint64_t>();
    std::vector<ParsedRun> runs;
    for (std::uint64_t i = 0; i < n; ++i) {
      const std::string dir = paths.get_string();
      ParsedRun p = parse_run_directory(dir, layout, o);
      p.record.finished = p.finished;
      runs.push_back(std::move(p));
    }
    comm.send(0, protocol::kResult, encode_runs(runs));
  }
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
  std::unordered_map<TrialId, bool> present;
  for (const auto& [id, rec] : store.log().latest_by_id()) present[id] = true;

  const std::string job = encode_ingest_job(layout, options);
  for (int w = 1; w < comm.size(); ++w) comm.send(w, protocol::kJob, job);
  Message msg;
  for (int answered = 0; answered < comm.size() - 1;) {
    if (!comm.receive(msg, std::chrono::milliseconds(60000)))
      throw CommError("ingest workers did not start within 60 s");
    if (msg.tag == protocol::kReady) ++answered;
  }
  std::size_t next = 0, in_flight = 0;
  auto dispatch = [&](int worker) {
    if (next >= dirs.size()) return;
    ByteWriter w;
    const std::size_t n = std::min(kBatch, dirs.size() - next);
    w.put<std::uint64_t>(n);
    for (std::size_t i = 0; i < n; ++i) w.put_string(dirs[next++]);
    comm.send(worker, protocol::kTrial, w.bytes());
    ++in_flight;
  };
  for (int depth = 0; depth < 2; ++depth)
    for (int w = 1; w < comm.size(); ++w) dispatch(w);
  while (in_flight > 0) {
    if (!comm.receive(msg, std::chrono::milliseconds(250))) continue;
    if (msg.tag != protocol::kResult) continue;
    --in_flight;
    dispatch(msg.source);
    for (auto& run : decode_runs(msg.payload)) {
      s.bytes += run.bytes;
      if (!run.ok) {
        s.bad.push_back(run.error);
        continue;
      }
      if (present.count(run.record.trial.id)) {
        ++s.already_present;
        continue;
      }
      present[run.record.trial.id] = true;
      if (!run.record.finished) ++s.unfinished;
      if (run.record.outcome.state == TrialState::Diverged) ++s.diverged;
      run.record.start_time = launch.start_time;
      store.record_result(std::move(run.record));
      ++s.imported;
    }
    store.checkpoint();
  }
  stop_workers_for_ingest(comm);
  store.finish("completed");
  s.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return s;
}

}  // namespace hpsweep
