#include <algorithm>
#include <deque>
#include <map>

#include "hpsweep/scheduler/protocol.hpp"
#include "hpsweep/scheduler/scheduler.hpp"
#include "hpsweep/util/error.hpp"

namespace hpsweep {

std::vector<WorkerInfo> start_workers(Comm& comm, const std::string& job_path, const std::string& job_text,
                                      const std::string& trial_root,
                                      const std::function<void(const std::string&)>& warn) {
  const std::string job = protocol::encode_job(job_path, job_text, trial_root);
  for (int r = 1; r < comm.size(); ++r) comm.send(r, protocol::kJob, job);
  std::vector<WorkerInfo> workers;
  int answered = 0;
  Message msg;
  while (answered < comm.size() - 1) {
    if (!comm.receive(msg, std::chrono::milliseconds(60000)))
      throw CommError("workers did not answer within 60 s (" + std::to_string(answered) + " of " +
                      std::to_string(comm.size() - 1) + " did)");
    if (msg.tag == protocol::kReady) {
      workers.push_back(WorkerInfo{msg.source, msg.payload});
      ++answered;
    } else if (msg.tag == protocol::kWorkerError) {
      warn("rank " + std::to_string(msg.source) + " could not start: " + msg.payload);
      ++answered;
    } else {
      throw CommError("unexpected message tag " + std::to_string(msg.tag) + " from rank " + std::to_string(msg.source) +
                      " while starting workers");
    }
  }
  if (workers.empty()) throw Error("no worker could start");
  std::sort(workers.begin(), workers.end(), [](auto& a, auto& b) { return a.rank < b.rank; });
  return workers;
}

void run_master(Comm& comm, const std::vector<WorkerInfo>& workers, const std::vector<Trial>& trials, ResultSink& sink,
                const MasterOptions& options) {
  std::size_t next = 0;
  std::map<int, int> outstanding;  // per worker rank
  std::size_t in_flight = 0;
  auto stopping = [&] { return options.should_stop && options.should_stop(); };
  auto dispatch = [&](int rank) {
    if (next >= trials.size() || stopping()) return;
    const Trial& t = trials[next++];
    sink.on_dispatch(t, rank);
    comm.send(rank, protocol::kTrial, protocol::encode_trial(t));
    ++outstanding[rank];
    ++in_flight;
  };
  // Round-robin the first trials so every worker starts with the most expensive ones available.
  for (int depth = 0; depth < std::max(1, options.prefetch); ++depth)
    for (const auto& w : workers) dispatch(w.rank);

  // Very short trials finish faster than a message round trip with an idle master: queue enough
  // of them per worker to cover ~2 ms of work (kept between `prefetch` and 64).
  double mean_trial_s = -1;
  int depth = std::max(1, options.prefetch);
  auto handle = [&](Message& msg) {
    if (msg.tag != protocol::kResult)
      throw CommError("unexpected message tag " + std::to_string(msg.tag) + " from rank " + std::to_string(msg.source));
    TrialRecord rec = protocol::decode_result(msg.payload);
    --outstanding[msg.source];
    --in_flight;
    mean_trial_s = mean_trial_s < 0 ? rec.wall_time : 0.95 * mean_trial_s + 0.05 * rec.wall_time;
    depth = std::clamp(static_cast<int>(0.002 / std::max(mean_trial_s, 1e-7)), std::max(1, options.prefetch), 64);
    // Before storing: the worker gets its next trials as early as possible.
    while (outstanding[msg.source] < depth && next < trials.size() && !stopping()) dispatch(msg.source);
    sink.on_result(std::move(rec));
  };

  Message msg;
  while (in_flight > 0) {
    if (options.abandon_in_flight && options.abandon_in_flight()) break;
    if (!comm.receive(msg, std::chrono::milliseconds(250))) {
      sink.on_idle();
      continue;
    }
    handle(msg);
    // Drain what else has arrived, then persist the batch in one go.
    for (int batch = 0; batch < 4096 && comm.try_receive(msg); ++batch) handle(msg);
    sink.on_idle();
  }
}

void stop_workers(Comm& comm, int tag) {
  for (int r = 1; r < comm.size(); ++r) comm.send(r, tag, "");
}

}  // namespace hpsweep
