#include "hpsweep/scheduler/master.hpp"

#include <algorithm>
#include <map>

#include "hpsweep/util/error.hpp"
#include "hpsweep/util/serialize.hpp"

namespace hpsweep {

namespace {

[[noreturn]] void throw_unexpected(const Message& msg, const std::string& during) {
  throw CommError("unexpected message tag " + std::to_string(msg.tag) + " from rank " + std::to_string(msg.source) +
                  during);
}

// Trials as tasks: the ResultSink sees Trials and TrialRecords, never payloads.
class TrialTasks : public TaskHandler {
 public:
  TrialTasks(const std::vector<Trial>& trials, ResultSink& sink) : trials_(trials), sink_(sink) {}
  std::size_t count() const override { return trials_.size(); }
  std::string dispatch(std::size_t index, int rank) override {
    const Trial& t = trials_[index];
    sink_.on_dispatch(t, rank);
    return protocol::encode_trial(t);
  }
  void on_result(int, std::string payload) override {
    // The engine has opened the TaskResult envelope: what is left is the TrialRecord.
    ByteReader r(payload);
    sink_.on_result(decode_trial_record(r));
  }
  void on_idle() override { sink_.on_idle(); }

 private:
  const std::vector<Trial>& trials_;
  ResultSink& sink_;
};

}  // namespace

std::vector<WorkerInfo> start_workers(Comm& comm, const std::string& job_payload,
                                      const std::function<void(const std::string&)>& warn) {
  for (int r = 1; r < comm.size(); ++r) protocol::send(comm, r, protocol::Tag::Job, job_payload);
  std::vector<WorkerInfo> workers;
  int answered = 0;
  Message msg;
  while (answered < comm.size() - 1) {
    if (!comm.receive(msg, std::chrono::milliseconds(60000)))
      throw CommError("workers did not answer within 60 s (" + std::to_string(answered) + " of " +
                      std::to_string(comm.size() - 1) + " did)");
    if (protocol::has_tag(msg, protocol::Tag::Ready)) {
      workers.push_back(WorkerInfo{msg.source, msg.payload});
      ++answered;
    } else if (protocol::has_tag(msg, protocol::Tag::WorkerError)) {
      warn("rank " + std::to_string(msg.source) + " could not start: " + msg.payload);
      ++answered;
    } else {
      throw_unexpected(msg, " while starting workers");
    }
  }
  if (workers.empty()) throw Error("no worker could start");
  std::sort(workers.begin(), workers.end(), [](auto& a, auto& b) { return a.rank < b.rank; });
  return workers;
}

std::vector<WorkerInfo> start_workers(Comm& comm, const std::string& job_path, const std::string& job_text,
                                      const std::string& trial_root,
                                      const std::function<void(const std::string&)>& warn) {
  return start_workers(comm, protocol::encode_job(job_path, job_text, trial_root), warn);
}

void run_tasks(Comm& comm, const std::vector<WorkerInfo>& workers, TaskHandler& handler, const MasterOptions& options) {
  std::size_t next = 0;            // handler.count() may grow as results arrive (adaptive sweeps)
  std::map<int, int> outstanding;  // per worker rank
  std::size_t in_flight = 0;
  auto stopping = [&] { return options.should_stop && options.should_stop(); };
  auto dispatch = [&](int rank) {
    if (next >= handler.count() || stopping()) return;
    const std::string payload = handler.dispatch(next++, rank);
    protocol::send(comm, rank, protocol::Tag::Task, payload);
    ++outstanding[rank];
    ++in_flight;
  };
  // Round-robin the first tasks so every worker starts with the most expensive ones available.
  for (int depth = 0; depth < std::max(1, options.prefetch); ++depth)
    for (const auto& w : workers) dispatch(w.rank);

  // Very short tasks finish faster than a message round trip with an idle master: queue enough
  // of them per worker to cover ~2 ms of work (kept between `prefetch` and 64).
  double mean_task_s = -1;
  int depth = std::max(1, options.prefetch);
  auto handle = [&](Message& msg) {
    if (!protocol::has_tag(msg, protocol::Tag::Result)) throw_unexpected(msg, "");
    protocol::TaskResult result = protocol::decode_task_result(msg.payload);
    --outstanding[msg.source];
    --in_flight;
    mean_task_s = mean_task_s < 0 ? result.seconds : 0.95 * mean_task_s + 0.05 * result.seconds;
    depth = std::clamp(static_cast<int>(0.002 / std::max(mean_task_s, 1e-7)), std::max(1, options.prefetch), 64);
    // Before recording: the worker gets its next tasks as early as possible.
    while (outstanding[msg.source] < depth && next < handler.count() && !stopping()) dispatch(msg.source);
    handler.on_result(msg.source, std::move(result.payload));
  };

  // Tasks the handler added while recording results go to every worker with room in its queue.
  auto top_up = [&] {
    if (next >= handler.count()) return;
    for (const auto& w : workers)
      while (outstanding[w.rank] < depth && next < handler.count() && !stopping()) dispatch(w.rank);
  };

  Message msg;
  while (in_flight > 0) {
    if (options.abandon_in_flight && options.abandon_in_flight()) break;
    if (!comm.receive(msg, std::chrono::milliseconds(250))) {
      handler.on_idle();
      top_up();
      continue;
    }
    handle(msg);
    // Drain what else has arrived, then persist the batch in one go.
    for (int batch = 0; batch < 4096 && comm.try_receive(msg); ++batch) handle(msg);
    handler.on_idle();
    top_up();
  }
}

void run_master(Comm& comm, const std::vector<WorkerInfo>& workers, const std::vector<Trial>& trials, ResultSink& sink,
                const MasterOptions& options) {
  TrialTasks tasks(trials, sink);
  run_tasks(comm, workers, tasks, options);
}

void stop_workers(Comm& comm, protocol::Tag tag) {
  for (int r = 1; r < comm.size(); ++r) protocol::send(comm, r, tag, "");
}

int await_departures(Comm& comm, std::chrono::milliseconds timeout) {
  std::vector<bool> left(static_cast<std::size_t>(comm.size()), false);
  int remaining = comm.size() - 1;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  Message msg;
  while (remaining > 0) {
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) break;
    if (!comm.receive(msg, std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now))) continue;
    if (protocol::has_tag(msg, protocol::Tag::Left) && msg.source > 0 && msg.source < comm.size() &&
        !left[static_cast<std::size_t>(msg.source)]) {
      left[static_cast<std::size_t>(msg.source)] = true;
      --remaining;
    }
  }
  return remaining;
}

}  // namespace hpsweep
