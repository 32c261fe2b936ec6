#include <chrono>

#include "hpsweep/backends/backend.hpp"
#include "hpsweep/scheduler/protocol.hpp"
#include "hpsweep/scheduler/scheduler.hpp"
#include "hpsweep/util/error.hpp"
#include "hpsweep/util/text.hpp"

namespace hpsweep {

TrialRecord execute_trial(Backend& backend, const Trial& trial, int rank, const std::string& host) {
  TrialRecord rec;
  rec.trial = trial;
  rec.rank = rank;
  rec.host = host;
  rec.start_time = unix_now();
  const auto t0 = std::chrono::steady_clock::now();
  try {
    rec.outcome = backend.run(trial);
  } catch (const std::exception& e) {
    rec.outcome = TrialOutcome{};
    rec.outcome.state = TrialState::Failed;
    rec.outcome.error = e.what();
  } catch (...) {
    rec.outcome = TrialOutcome{};
    rec.outcome.state = TrialState::Failed;
    rec.outcome.error = "unknown exception";
  }
  rec.wall_time = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return rec;
}

void run_worker(Comm& comm, const std::string& host, const BackendFactory& make) {
  Message msg;
  // The master may take a while (validating a large grid, recovering a store) before it speaks.
  while (!comm.receive(msg, std::chrono::milliseconds(1000))) {
  }
  if (msg.tag != protocol::kJob) return;  // kAbort/kStop: nothing to run
  std::unique_ptr<Backend> backend;
  try {
    std::string path, text, trial_root;
    protocol::decode_job(msg.payload, path, text, trial_root);
    backend = make(path, text, trial_root);
  } catch (const std::exception& e) {
    comm.send(0, protocol::kWorkerError, e.what());
    backend.reset();
  }
  if (backend) comm.send(0, protocol::kReady, host);
  while (true) {
    if (!comm.receive(msg, std::chrono::milliseconds(1000))) continue;
    if (msg.tag == protocol::kStop || msg.tag == protocol::kAbort) return;
    if (msg.tag != protocol::kTrial || !backend) continue;
    const Trial trial = protocol::decode_trial(msg.payload);
    comm.send(0, protocol::kResult, protocol::encode_result(execute_trial(*backend, trial, comm.rank(), host)));
  }
}

}  // namespace hpsweep
