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
  // A PLACED_TASK: several run at once, each on its own thread with its own devices. Runners
  // that cannot run tasks side by side keep the default, which refuses.
  virtual protocol::TaskResult run_placed(const std::string& task_payload, const Placement& placement);
  // Called from the worker's message thread while run() works on another: end the task(s) now.
  virtual void cancel() {}
};
// Builds the runner from the JOB payload; an exception is sent to the master as WORKER_ERROR.
using TaskRunnerFactory = std::function<std::unique_ptr<TaskRunner>(const std::string& job_payload)>;

// The one worker loop. Tasks run on a second thread so that an ABORT (the sweep is stopping
// and its grace period is over) reaches a long task and cancels it. The last message a worker
// sends is LEFT, so the master can take every message before MPI shuts down.
// `slots` (sent with READY) are what the master may pack placed tasks onto.
void serve_tasks(Comm& comm, const std::string& host, const TaskRunnerFactory& make,
                 const protocol::WorkerSlots& slots = {});

// The trial worker: serve_tasks with a backend built from the job text (tests inject trivial ones).
using BackendFactory = std::function<std::unique_ptr<Backend>(const std::string& job_path, const std::string& job_text,
                                                              const std::string& trial_root)>;
void run_worker(Comm& comm, const std::string& host, const BackendFactory& make,
                const protocol::WorkerSlots& slots = {});
// Runs one trial on a backend and wraps the outcome with timing, rank, host and devices.
// Exceptions become FAILED with their message.
TrialRecord execute_trial(Backend& backend, const Trial& trial, int rank, const std::string& host,
                          const Placement& placement = {});

// This node's GPUs and cores. `gpus_per_node` > 0 (the --gpus-per-node option) says how many GPUs
// there are (the first of CUDA_VISIBLE_DEVICES when it lists enough, else 0..N-1); otherwise they
// come from CUDA_VISIBLE_DEVICES, SLURM_STEP_GPUS/SLURM_JOB_GPUS, SLURM_GPUS_ON_NODE or
// `nvidia-smi -L`, in that order. Cores: SLURM_CPUS_ON_NODE, else the hardware's.
protocol::WorkerSlots detect_node_slots(int gpus_per_node);

}  // namespace hpsweep
