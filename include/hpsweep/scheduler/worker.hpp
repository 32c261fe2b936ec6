#pragma once
// The worker's side of the one worker engine: wait for the JOB, build what runs the tasks, then
// answer every TASK with a RESULT until told to stop. `hpsweep run` serves trials on a backend,
// `hpsweep ingest` parses batches of run directories.
#include <functional>
#include <memory>
#include <string>

#include "hpsweep/scheduler/comm.hpp"
#include "hpsweep/scheduler/protocol.hpp"
#include "hpsweep/store/records.hpp"

namespace hpsweep {

class Backend;

// Runs the tasks of one launch on one worker.
class TaskRunner {
 public:
  virtual ~TaskRunner() = default;
  virtual protocol::TaskResult run(const std::string& task_payload) = 0;
  // Called from the worker's message thread while run() works on another: end the task now.
  virtual void cancel() {}
};
// Builds the runner from the JOB payload; an exception is sent to the master as WORKER_ERROR.
using TaskRunnerFactory = std::function<std::unique_ptr<TaskRunner>(const std::string& job_payload)>;

// The one worker loop. Tasks run on a second thread so that an ABORT (the sweep is stopping
// and its grace period is over) reaches a long task and cancels it. The last message a worker
// sends is LEFT, so the master can take every message before MPI shuts down.
void serve_tasks(Comm& comm, const std::string& host, const TaskRunnerFactory& make);

// The trial worker: serve_tasks with a backend built from the job text (tests inject trivial ones).
using BackendFactory = std::function<std::unique_ptr<Backend>(const std::string& job_path, const std::string& job_text,
                                                              const std::string& trial_root)>;
void run_worker(Comm& comm, const std::string& host, const BackendFactory& make);
// Runs one trial on a backend and wraps the outcome with timing, rank and host. Exceptions
// become FAILED with their message.
TrialRecord execute_trial(Backend& backend, const Trial& trial, int rank, const std::string& host);

}  // namespace hpsweep
