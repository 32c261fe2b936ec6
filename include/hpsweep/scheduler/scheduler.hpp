#pragma once
// Dynamic self-scheduling: the master hands the most expensive pending trial to whichever worker
// reports back, keeping up to `prefetch` trials queued per worker so a worker never waits for
// the master between two trials. The master only coordinates and writes the store.
#include <functional>
#include <string>
#include <vector>

#include "hpsweep/scheduler/comm.hpp"
#include "hpsweep/store/records.hpp"

namespace hpsweep {

class Backend;

// What the master needs from the store and the progress display, so the scheduling code can
// run against a real SweepStore, a replay simulator or a test double.
class ResultSink {
 public:
  virtual ~ResultSink() = default;
  virtual void on_dispatch(const Trial& trial, int rank) = 0;
  virtual void on_result(TrialRecord record) = 0;
  // Called after every batch of messages and on idle timeouts: flush, fold, print progress.
  virtual void on_idle() = 0;
};

struct MasterOptions {
  int prefetch = 2;  // trials queued per worker
  // Checked between messages: stop handing out trials and wait for those in flight ...
  std::function<bool()> should_stop;
  // ... or stop waiting too (their trials stay dispatched without a result: LOST on resume).
  std::function<bool()> abandon_in_flight;
};

struct WorkerInfo {
  int rank = 0;
  std::string host;
};

// Sends the job to every worker and waits for READY. Returns the workers that started; throws
// Error if none did. Workers that failed are reported through `warn`.
std::vector<WorkerInfo> start_workers(Comm& comm, const std::string& job_path, const std::string& job_text,
                                      const std::string& trial_root,
                                      const std::function<void(const std::string&)>& warn);
// Runs `trials` (in the given order) on the started workers until all have reported.
void run_master(Comm& comm, const std::vector<WorkerInfo>& workers, const std::vector<Trial>& trials, ResultSink& sink,
                const MasterOptions& options);
// Tells every worker to exit: kStop after a run, kAbort when nothing will run.
void stop_workers(Comm& comm, int tag);

// The worker loop: wait for the job, build the backend, run trials until told to stop.
// `make` builds the backend from the job text (tests inject trivial ones).
using BackendFactory = std::function<std::unique_ptr<Backend>(const std::string& job_path, const std::string& job_text,
                                                              const std::string& trial_root)>;
void run_worker(Comm& comm, const std::string& host, const BackendFactory& make);
// Runs one trial on a backend and wraps the outcome with timing, rank and host. Exceptions
// become FAILED with their message.
TrialRecord execute_trial(Backend& backend, const Trial& trial, int rank, const std::string& host);

}  // namespace hpsweep
