#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "hpsweep/backends/backend.hpp"
#include "hpsweep/backends/surrogate.hpp"
#include "hpsweep/ingest/ingest.hpp"
#include "hpsweep/scheduler/master.hpp"
#include "hpsweep/scheduler/protocol.hpp"
#include "hpsweep/scheduler/simulated_comm.hpp"
#include "hpsweep/scheduler/worker.hpp"
#include "hpsweep/scheduler/worker_pool.hpp"
#include "hpsweep/spec/job.hpp"
#include "hpsweep/util/error.hpp"
#include "test_helpers.hpp"

using namespace hpsweep;

namespace {
const std::string kJob = R"([sweep]
name = sched
[scales]
params = 1e6, 1e7, 1e8
tokens = 1e8, 1e9
[grid]
lr = log:1e-4:1e-1:10
batch = 16, 64, 256
wd = 0, 0.1
[backend]
kind = surrogate
[surrogate]
curve_points = 8
)";

struct RecordingSink : ResultSink {
  std::vector<std::pair<TrialId, int>> dispatched;
  std::vector<TrialRecord> results;
  int idles = 0;
  void on_dispatch(const Trial& t, int rank) override { dispatched.emplace_back(t.id, rank); }
  void on_result(TrialRecord r) override { results.push_back(std::move(r)); }
  void on_idle() override { ++idles; }
};

// Every third trial throws, like a training script that crashes.
class FlakyBackend : public Backend {
 public:
  TrialOutcome run(const Trial& t) override {
    if (t.id % 3 == 0) throw Error("out of memory on trial " + std::to_string(t.id));
    TrialOutcome o;
    o.final_loss = o.smooth_loss = 1.0;
    return o;
  }
};

// Runs master + `workers` worker threads over an in-process world.
RecordingSink run_world(int workers, const std::vector<Trial>& trials, const BackendFactory& make, int prefetch = 2) {
  LocalWorld world(workers + 1);
  std::vector<std::thread> threads;
  for (int r = 1; r <= workers; ++r)
    threads.emplace_back([&world, r, &make] { run_worker(world.endpoint(r), "host-" + std::to_string(r), make); });
  RecordingSink sink;
  const auto started = start_workers(world.endpoint(0), "sched.ini", kJob, "", [](const std::string&) {});
  MasterOptions o;
  o.prefetch = prefetch;
  run_master(world.endpoint(0), started, trials, sink, o);
  stop_workers(world.endpoint(0), protocol::Tag::Stop);
  for (auto& t : threads) t.join();
  return sink;
}

BackendFactory surrogate_factory() {
  return [](const std::string& path, const std::string& text, const std::string&) {
    return make_backend(parse_job(text, path));
  };
}
}  // namespace

TEST(Scheduler, EveryTrialRunsExactlyOnce) {
  const auto grid = expand_grid(parse_job(kJob, "sched.ini"));
  const RecordingSink sink = run_world(3, grid, surrogate_factory());
  ASSERT_EQ(sink.results.size(), grid.size());
  std::set<TrialId> seen;
  for (const auto& r : sink.results) EXPECT_TRUE(seen.insert(r.trial.id).second) << "ran twice: " << r.trial.id;
  EXPECT_EQ(seen.size(), grid.size());
}

TEST(Scheduler, WorkLandsOnEveryWorkerAndResultsNameTheirRankAndHost) {
  const auto grid = expand_grid(parse_job(kJob, "sched.ini"));
  const RecordingSink sink = run_world(3, grid, surrogate_factory());
  std::map<int, int> per_rank;
  for (const auto& r : sink.results) {
    ++per_rank[r.rank];
    EXPECT_EQ(r.host, "host-" + std::to_string(r.rank));
  }
  EXPECT_EQ(per_rank.size(), 3u);
}

TEST(Scheduler, MostExpensiveTrialsAreDispatchedFirst) {
  // Scales and grid values listed in no particular order: cost order must come from the
  // expansion, not from the way the job was written.
  const std::string shuffled = R"([sweep]
name = sched
[scales]
params = 1e7, 1e6, 1e8
tokens = 1e9, 3e8
[grid]
lr = 1e-2, 1e-4, 1e-1, 1e-3
batch = 64, 256, 16
wd = 0.1, 0
[backend]
kind = surrogate
[surrogate]
curve_points = 8
)";
  const auto grid = expand_grid(parse_job(shuffled, "sched.ini"));
  const RecordingSink sink = run_world(2, grid, surrogate_factory());
  ASSERT_EQ(sink.dispatched.size(), grid.size());
  std::map<TrialId, double> cost;
  for (const auto& t : grid) cost[t.id] = t.point.compute();
  std::set<double> distinct;
  for (std::size_t i = 0; i < sink.dispatched.size(); ++i) {
    distinct.insert(cost[sink.dispatched[i].first]);
    if (i > 0) EXPECT_GE(cost[sink.dispatched[i - 1].first], cost[sink.dispatched[i].first]) << "dispatch " << i;
  }
  EXPECT_EQ(distinct.size(), 6u);  // 3 sizes x 2 token counts, all different budgets
  EXPECT_EQ(cost[sink.dispatched.front().first], 6.0 * 1e8 * 1e9);
}

TEST(Scheduler, ThrowingTrialIsFailedWithMessageAndSweepGoesOn) {
  const auto grid = expand_grid(parse_job(kJob, "sched.ini"));
  const RecordingSink sink = run_world(2, grid, [](const std::string&, const std::string&, const std::string&) {
    return std::make_unique<FlakyBackend>();
  });
  ASSERT_EQ(sink.results.size(), grid.size());
  std::size_t failed = 0;
  for (const auto& r : sink.results) {
    if (r.trial.id % 3 == 0) {
      ++failed;
      EXPECT_EQ(r.outcome.state, TrialState::Failed);
      EXPECT_EQ(r.outcome.error, "out of memory on trial " + std::to_string(r.trial.id));
      EXPECT_GE(r.rank, 1);
    } else {
      EXPECT_EQ(r.outcome.state, TrialState::Done);
    }
  }
  EXPECT_GT(failed, 0u);
}

TEST(Scheduler, WorkerThatCannotStartIsReportedAndOthersCarryOn) {
  const auto grid = expand_grid(parse_job(kJob, "sched.ini"));
  LocalWorld world(3);
  auto bad = [](const std::string&, const std::string&, const std::string&) -> std::unique_ptr<Backend> {
    throw Error("no GPU visible on this node");
  };
  std::thread good_worker([&] { run_worker(world.endpoint(1), "a", surrogate_factory()); });
  std::thread bad_worker([&] { run_worker(world.endpoint(2), "b", bad); });
  std::vector<std::string> warnings;
  const auto started =
      start_workers(world.endpoint(0), "sched.ini", kJob, "", [&](const std::string& w) { warnings.push_back(w); });
  ASSERT_EQ(started.size(), 1u);
  EXPECT_EQ(started[0].rank, 1);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find("rank 2 could not start: no GPU visible"), std::string::npos);
  RecordingSink sink;
  run_master(world.endpoint(0), started, grid, sink, MasterOptions{});
  stop_workers(world.endpoint(0), protocol::Tag::Stop);
  good_worker.join();
  bad_worker.join();
  EXPECT_EQ(sink.results.size(), grid.size());
}

TEST(Scheduler, StopRequestDrainsInFlightTrialsAndDispatchesNoMore) {
  const auto grid = expand_grid(parse_job(kJob, "sched.ini"));
  LocalWorld world(3);
  std::vector<std::thread> threads;
  for (int r = 1; r <= 2; ++r)
    threads.emplace_back([&world, r] { run_worker(world.endpoint(r), "h", surrogate_factory()); });
  const auto started = start_workers(world.endpoint(0), "sched.ini", kJob, "", [](const std::string&) {});
  RecordingSink sink;
  MasterOptions o;
  o.should_stop = [&] { return sink.results.size() >= 10; };
  run_master(world.endpoint(0), started, grid, sink, o);
  stop_workers(world.endpoint(0), protocol::Tag::Stop);
  for (auto& t : threads) t.join();
  EXPECT_LT(sink.results.size(), grid.size());
  EXPECT_EQ(sink.results.size(), sink.dispatched.size());  // everything handed out came back
}

TEST(LocalComm, ReceiveTimesOutWhenNothingArrives) {
  LocalWorld world(2);
  Message m;
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_FALSE(world.endpoint(0).receive(m, std::chrono::milliseconds(50)));
  EXPECT_GE(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(45));
  world.endpoint(1).send(0, 9, "hi");
  ASSERT_TRUE(world.endpoint(0).receive(m, std::chrono::milliseconds(50)));
  EXPECT_EQ(m.source, 1);
  EXPECT_EQ(m.tag, 9);
  EXPECT_EQ(m.payload, "hi");
}

TEST(SimulatedWorkers, RunTheRealMasterInVirtualTimeWithExactMakespans) {
  // Durations 3,2,2,1,1,1 (costs in the same order) on 3 workers with 2 trials queued each:
  // round-robin start gives w1 {3,1}, w2 {2,1}, w3 {2,1}: makespan 4, not the ideal 10/3.
  std::vector<Trial> trials;
  const double durations[6] = {3, 2, 2, 1, 1, 1};
  for (int i = 0; i < 6; ++i) {
    Trial t;
    t.id = static_cast<TrialId>(i + 1);
    t.point = TrialPoint{1e6 * (10 - i), 1e8, 1e-3, 8, 128, 0.1, 0};
    trials.push_back(t);
  }
  auto duration = [&](const Trial& t) { return durations[t.id - 1]; };
  {
    SimulatedWorkers sim(4, duration);
    const auto workers = start_workers(sim, "", "", "", [](const std::string&) {});
    RecordingSink sink;
    run_master(sim, workers, trials, sink, MasterOptions{});
    EXPECT_EQ(sink.results.size(), 6u);
    EXPECT_DOUBLE_EQ(sim.now(), 4.0);
    EXPECT_DOUBLE_EQ(sim.busy_seconds(), 10.0);
  }
  {
    SimulatedWorkers sim(4, duration);
    const auto workers = start_workers(sim, "", "", "", [](const std::string&) {});
    RecordingSink sink;
    MasterOptions one;
    one.prefetch = 1;  // no queue: the longest-first list schedule, 3 | 2+1 | 2+1, then 1 on w1
    run_master(sim, workers, trials, sink, one);
    EXPECT_DOUBLE_EQ(sim.now(), 4.0);
  }
}

namespace {
// The master's endpoint with a tap: every tag it sends and receives, and whether each RESULT
// arrived in the engine's TaskResult envelope.
class TappedComm : public Comm {
 public:
  explicit TappedComm(Comm& inner) : inner_(inner) {}
  int rank() const override { return inner_.rank(); }
  int size() const override { return inner_.size(); }
  void send(int dest, int tag, std::string_view payload) override {
    sent.insert(tag);
    if (tag == static_cast<int>(protocol::Tag::Task)) ++tasks;
    inner_.send(dest, tag, payload);
  }
  bool try_receive(Message& out) override { return tap(inner_.try_receive(out), out); }
  bool receive(Message& out, std::chrono::milliseconds timeout) override {
    return tap(inner_.receive(out, timeout), out);
  }
  std::set<int> sent, received;
  int tasks = 0, enveloped_results = 0;

 private:
  bool tap(bool got, const Message& m) {
    if (!got) return false;
    received.insert(m.tag);
    if (protocol::has_tag(m, protocol::Tag::Result) && protocol::decode_task_result(m.payload).seconds >= 0)
      ++enveloped_results;
    return true;
  }
  Comm& inner_;
};

std::set<int> tags(std::initializer_list<protocol::Tag> list) {
  std::set<int> out;
  for (auto t : list) out.insert(static_cast<int>(t));
  return out;
}

class SharedEngine : public TempDirTest {};
}  // namespace

TEST_F(SharedEngine, IngestBatchesAndRunTrialsGoThroughTheSameMasterLoopAndMessages) {
  // 70 run directories: three batches of at most 32.
  for (int i = 0; i < 70; ++i) {
    const std::string run = path("runs/r" + std::to_string(i));
    std::filesystem::create_directories(run);
    write_bytes(run + "/metrics.jsonl", "{\"step\": 100, \"loss\": 4.0}\n{\"step\": 200, \"loss\": 3.5}\n");
    write_bytes(run + "/config.json", "{\"lr\": " + std::to_string(1e-4 * (i + 1)) +
                                          ", \"batch\": 64, \"seq_len\": 1024, \"params\": 2e7, \"tokens\": 13107200}");
  }
  LogIngestSummary ingested;
  std::set<int> ingest_sent, ingest_received;
  int ingest_tasks = 0, ingest_enveloped = 0;
  {
    LocalWorld world(3);
    std::vector<std::thread> threads;
    for (int r = 1; r <= 2; ++r) threads.emplace_back([&world, r] { run_ingest_worker(world.endpoint(r), "h"); });
    TappedComm master(world.endpoint(0));
    ingested = ingest_run_logs(master, path("runs"), path("ingest.h5"), "jsonl", LogIngestOptions{}, "test");
    for (auto& t : threads) t.join();  // ends only if the engine's Stop reached every worker
    ingest_sent = master.sent;
    ingest_received = master.received;
    ingest_tasks = master.tasks;
    ingest_enveloped = master.enveloped_results;
  }
  EXPECT_EQ(ingested.runs, 70u);
  EXPECT_EQ(ingested.imported, 70u);
  EXPECT_TRUE(ingested.bad.empty()) << ingested.bad.front();
  EXPECT_EQ(ingested.workers, 2);
  EXPECT_EQ(ingest_tasks, 3);
  EXPECT_EQ(ingest_enveloped, 3);

  const auto grid = expand_grid(parse_job(kJob, "sched.ini"));
  LocalWorld world(3);
  std::vector<std::thread> threads;
  for (int r = 1; r <= 2; ++r)
    threads.emplace_back([&world, r] { run_worker(world.endpoint(r), "h", surrogate_factory()); });
  TappedComm master(world.endpoint(0));
  RecordingSink sink;
  run_master(master, start_workers(master, "sched.ini", kJob, "", [](const std::string&) {}), grid, sink,
             MasterOptions{});
  stop_workers(master, protocol::Tag::Stop);
  EXPECT_EQ(await_departures(master, std::chrono::milliseconds(10000)), 0);
  for (auto& t : threads) t.join();
  ASSERT_EQ(sink.results.size(), grid.size());
  EXPECT_EQ(master.tasks, static_cast<int>(grid.size()));
  EXPECT_EQ(master.enveloped_results, static_cast<int>(grid.size()));

  // One protocol for both: the same tags each way, no ingest-only ones.
  using protocol::Tag;
  EXPECT_EQ(ingest_sent, tags({Tag::Job, Tag::Task, Tag::Stop}));
  EXPECT_EQ(master.sent, ingest_sent);
  EXPECT_EQ(ingest_received, tags({Tag::Ready, Tag::Result, Tag::Left}));
  EXPECT_EQ(master.received, ingest_received);
}

TEST(WorkerPool, LocalThreadsServeTheMasterAndLeaveWhenItFails) {
  int argc = 1;
  char name[] = "hpsweep";
  char* args[] = {name, nullptr};
  char** argv = args;
  WorkerPoolOptions pool;
  pool.local_workers = 3;
  std::size_t started = 0;
  auto worker = [](Comm& comm, const std::string& host) { run_worker(comm, host, surrogate_factory()); };
  const int code = run_with_workers(
      argc, argv, pool,
      [&](Comm& comm) {
        started = start_workers(comm, "sched.ini", kJob, "", [](const std::string&) {}).size();
        stop_workers(comm, protocol::Tag::Stop);
        return 7;
      },
      worker);
  EXPECT_EQ(code, 7);
  EXPECT_EQ(started, 3u);
  // A master that throws after the workers started: they are told to leave, so this returns.
  EXPECT_THROW(run_with_workers(
                   argc, argv, pool,
                   [](Comm& comm) -> int {
                     start_workers(comm, "sched.ini", kJob, "", [](const std::string&) {});
                     throw InputError("bad job");
                   },
                   worker),
               InputError);
}

namespace {
// A trial that runs until it is cancelled, like a long training run at preemption time.
class UntilCancelledBackend : public Backend {
 public:
  explicit UntilCancelledBackend(std::atomic<int>& cancels) : cancels_(cancels) {}
  TrialOutcome run(const Trial&) override {
    while (!cancelled_) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    TrialOutcome out;
    out.state = TrialState::Lost;
    return out;
  }
  void cancel() override {
    ++cancels_;
    cancelled_ = true;
  }

 private:
  std::atomic<int>& cancels_;
  std::atomic<bool> cancelled_{false};
};
}  // namespace

namespace {
// Records the count of unfinished trials each trial arrived with (threads = auto sizes by it).
class HintRecordingBackend : public Backend {
 public:
  explicit HintRecordingBackend(std::vector<std::int64_t>& hints) : hints_(hints) {}
  TrialOutcome run(const Trial&) override {
    // Long enough (> 2 ms) that the master queues `prefetch` trials ahead, not the whole list.
    std::this_thread::sleep_for(std::chrono::milliseconds(3));
    TrialOutcome o;
    o.final_loss = o.smooth_loss = 1.0;
    return o;
  }
  void note_trials_left(std::int64_t trials) override { hints_.push_back(trials); }

 private:
  std::vector<std::int64_t>& hints_;
};
}  // namespace

TEST(Worker, EachTrialTellsItsWorkerHowManyOfTheSweepsTrialsAreNotYetFinished) {
  // A worker in another process (MPI) cannot see the master's count: it comes with each trial.
  auto grid = expand_grid(parse_job(kJob, "sched.ini"));
  grid.resize(30);  // e.g. what a resumed sweep has left
  std::vector<std::int64_t> hints;
  run_world(1, grid, [&hints](const std::string&, const std::string&, const std::string&) {
    return std::make_unique<HintRecordingBackend>(hints);
  });
  ASSERT_EQ(hints.size(), grid.size());
  EXPECT_EQ(hints.front(), 30);
  for (std::size_t i = 1; i < hints.size(); ++i) EXPECT_LE(hints[i], hints[i - 1]) << "trial " << i;
  EXPECT_GE(hints.back(), 1);
  EXPECT_LE(hints.back(), 4);  // the last trial: at most it and the ones queued ahead of it
  // A trial message from an older master (no count) still decodes, with the count unknown.
  ByteWriter w;
  encode(w, grid[0]);
  w.put_string(grid[0].point.variant);
  std::int64_t left = -1;
  EXPECT_EQ(protocol::decode_trial(w.take(), &left).id, grid[0].id);
  EXPECT_EQ(left, 0);
}

TEST(Worker, AbortCancelsTheTrialInFlightAndTheWorkerLeavesAtOnce) {
  const auto grid = expand_grid(parse_job(kJob, "sched.ini"));
  std::atomic<int> cancels{0};
  LocalWorld world(3);
  std::vector<std::thread> threads;
  for (int r = 1; r <= 2; ++r)
    threads.emplace_back([&world, &cancels, r] {
      run_worker(world.endpoint(r), "h", [&cancels](const std::string&, const std::string&, const std::string&) {
        return std::make_unique<UntilCancelledBackend>(cancels);
      });
    });
  Comm& master = world.endpoint(0);
  RecordingSink sink;
  MasterOptions options;
  const auto t0 = std::chrono::steady_clock::now();
  options.abandon_in_flight = [&] { return std::chrono::steady_clock::now() - t0 > std::chrono::milliseconds(200); };
  run_master(master, start_workers(master, "sched.ini", kJob, "", [](const std::string&) {}), grid, sink, options);
  EXPECT_TRUE(sink.results.empty());  // every trial was still running
  stop_workers(master, protocol::Tag::Abort);
  EXPECT_EQ(await_departures(master, std::chrono::milliseconds(5000)), 0);
  for (auto& t : threads) t.join();
  EXPECT_EQ(cancels.load(), 2);  // each worker cancelled its one running trial
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(3));
}

TEST(Worker, AWorkerThatNeverLeavesIsCountedByAwaitDepartures) {
  LocalWorld world(3);
  // Rank 1 answers LEFT, rank 2 never does.
  protocol::send(world.endpoint(1), 0, protocol::Tag::Left, "");
  EXPECT_EQ(await_departures(world.endpoint(0), std::chrono::milliseconds(200)), 1);
}

TEST(Scheduler, TasksAddedWhileNoneIsInFlightStillRunWhenTheHandlerSaysMoreMayCome) {
  // A handler whose tasks come from another thread (an adaptive sweep's planning thread): the
  // first batch arrives after run_tasks started with none, and each later one only after every
  // task before it has answered, so run_tasks sees no task in flight between batches.
  struct Echo : TaskRunner {
    protocol::TaskResult run(const std::string& payload) override { return protocol::TaskResult{0, payload}; }
  };
  constexpr int kBatches = 3, kPerBatch = 5;
  class Growing : public TaskHandler {
   public:
    Growing() {
      thread_ = std::thread([this] {
        for (int b = 0; b < kBatches; ++b) {
          std::unique_lock<std::mutex> lock(mutex_);
          changed_.wait(lock, [&] { return stop_ || answered_ == b * kPerBatch; });
          if (stop_) return;  // run_tasks gave up before the batch: the test fails below
          lock.unlock();
          std::this_thread::sleep_for(std::chrono::milliseconds(20));  // deciding
          lock.lock();
          for (int i = 0; i < kPerBatch; ++i) added_.push_back("task " + std::to_string(b * kPerBatch + i));
          changed_.notify_all();
        }
      });
    }
    ~Growing() override {
      {
        std::lock_guard<std::mutex> lock(mutex_);
        stop_ = true;
      }
      changed_.notify_all();
      thread_.join();
    }
    std::size_t count() const override { return taken_.size(); }
    std::string dispatch(std::size_t index, int) override { return taken_[index]; }
    void on_result(int, std::string payload) override {
      std::lock_guard<std::mutex> lock(mutex_);
      answers.insert(payload);
      ++answered_;
      changed_.notify_all();
      take();
    }
    void on_idle() override {
      std::lock_guard<std::mutex> lock(mutex_);
      take();
    }
    bool may_add_tasks() const override {
      std::lock_guard<std::mutex> lock(mutex_);
      return taken_.size() + added_.size() < static_cast<std::size_t>(kBatches * kPerBatch) || !added_.empty();
    }
    void wait_for_tasks(std::chrono::milliseconds timeout) override {
      std::unique_lock<std::mutex> lock(mutex_);
      changed_.wait_for(lock, timeout, [&] { return !added_.empty(); });
      take();
    }
    std::set<std::string> answers;

   private:
    void take() {
      for (auto& t : added_) taken_.push_back(std::move(t));
      added_.clear();
    }
    mutable std::mutex mutex_;
    std::condition_variable changed_;
    std::vector<std::string> added_, taken_;
    int answered_ = 0;
    bool stop_ = false;
    std::thread thread_;
  };
  LocalWorld world(3);
  std::vector<std::thread> workers;
  for (int r = 1; r <= 2; ++r)
    workers.emplace_back([&world, r] {
      serve_tasks(world.endpoint(r), "host", [](const std::string&) { return std::make_unique<Echo>(); });
    });
  const auto started = start_workers(world.endpoint(0), "job", [](const std::string&) {});
  Growing handler;
  run_tasks(world.endpoint(0), started, handler, MasterOptions{});
  stop_workers(world.endpoint(0), protocol::Tag::Stop);
  for (auto& t : workers) t.join();
  EXPECT_EQ(handler.answers.size(), static_cast<std::size_t>(kBatches * kPerBatch));
}
