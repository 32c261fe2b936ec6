#pragma once
// The master's side of the one worker engine, shared by `hpsweep run` (tasks are trials) and
// `hpsweep ingest` (tasks are batches of run directories). Dynamic self-scheduling: the next
// pending task goes to whichever worker reports back, with up to `prefetch` tasks queued per
// worker so a worker never waits for the master between two tasks. The master only coordinates
// and records; what a task and a result mean is up to the TaskHandler.
#include <chrono>
#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "hpsweep/scheduler/comm.hpp"
#include "hpsweep/scheduler/protocol.hpp"
#include "hpsweep/store/records.hpp"

namespace hpsweep {

struct WorkerInfo {
  int rank = 0;
  std::string host;
  protocol::WorkerSlots slots;  // the node's GPUs and cores (from READY)
};

// What one task asks of the workers' nodes (all 0: an ordinary task, queued `prefetch` deep).
struct TaskDemand {
  int gpus = 0;   // all its nodes together
  int cpus = 0;   // per node; 0: one core for a task without GPUs, none counted otherwise
  int nodes = 0;  // 0: one node, or as many as the GPUs need when no node has enough
  bool any() const { return gpus > 0 || cpus > 0 || nodes > 0; }
};

// Sends the JOB payload to every worker and waits for READY. Returns the workers that started;
// throws Error if none did. Workers that failed are reported through `warn`.
std::vector<WorkerInfo> start_workers(Comm& comm, const std::string& job_payload,
                                      const std::function<void(const std::string&)>& warn);
// The trial engine's JOB: the job file, its text and the folder for per-trial files.
std::vector<WorkerInfo> start_workers(Comm& comm, const std::string& job_path, const std::string& job_text,
                                      const std::string& trial_root,
                                      const std::function<void(const std::string&)>& warn);

// What the master loop needs from the kind of work it hands out.
class TaskHandler {
 public:
  virtual ~TaskHandler() = default;
  // Tasks are handed out in index order 0 .. count()-1. count() may grow while tasks run (an
  // adaptive sweep adds tasks in on_result): the loop then tops up every worker's queue.
  virtual std::size_t count() const = 0;
  // Task `index` goes to `rank`: record that, and return its TASK payload.
  virtual std::string dispatch(std::size_t index, int rank) = 0;
  // One worker's answer (its next tasks are already on their way).
  virtual void on_result(int rank, std::string payload) = 0;
  // Called after every batch of messages and on idle timeouts: flush, fold, print progress.
  virtual void on_idle() = 0;
  // When any task asks for resources, run_tasks packs every task onto the workers' devices
  // (largest first, smaller ones backfilling) instead of queueing them per worker.
  virtual TaskDemand demand(std::size_t index) const {
    (void)index;
    return {};
  }
  // For messages: "trial 0123abcd...".
  virtual std::string name(std::size_t index) const { return "task " + std::to_string(index); }
  // true while count() may still grow without another result (an adaptive sweep's planning
  // thread deciding a round): the loop then waits for tasks instead of ending when none is in
  // flight, and polls for them more often while some are.
  virtual bool may_add_tasks() const { return false; }
  // Waits up to `timeout` for tasks to be added (only called when may_add_tasks() is true).
  virtual void wait_for_tasks(std::chrono::milliseconds timeout) { (void)timeout; }
};

struct MasterOptions {
  int prefetch = 2;  // tasks queued per worker
  // Checked between messages: stop handing out tasks and wait for those in flight ...
  std::function<bool()> should_stop;
  // ... or stop waiting too (their tasks stay dispatched without a result: LOST on resume).
  std::function<bool()> abandon_in_flight;
};

// The one dispatch loop: runs every task on the started workers until all have reported.
void run_tasks(Comm& comm, const std::vector<WorkerInfo>& workers, TaskHandler& handler, const MasterOptions& options);

// What the trial master needs from the store and the progress display, so the scheduling code
// can run against a real SweepStore, a replay simulator or a test double.
class ResultSink {
 public:
  virtual ~ResultSink() = default;
  virtual void on_dispatch(const Trial& trial, int rank) = 0;
  virtual void on_result(TrialRecord record) = 0;
  virtual void on_idle() = 0;
};

// Throws InputError (naming `task`) when no set of these workers can ever hold a task of this
// demand, so a sweep is refused before it starts rather than midway.
void check_placeable(const std::vector<WorkerInfo>& workers, const TaskDemand& demand, const std::string& task);

// run_tasks over `trials` (in the given order): each task a Trial, each result a TrialRecord.
// `demand` (when set) gives each trial's [resources].
void run_master(Comm& comm, const std::vector<WorkerInfo>& workers, const std::vector<Trial>& trials, ResultSink& sink,
                const MasterOptions& options, const std::function<TaskDemand(const Trial&)>& demand = {});

// Tells every worker to exit: Tag::Stop after a run, Tag::Abort when nothing will run.
void stop_workers(Comm& comm, protocol::Tag tag);
// After stop_workers: takes (and drops) every message until each worker has sent LEFT, so no
// worker is left waiting on a send when MPI shuts down. Returns how many workers did not leave
// within `timeout` (a task that would not cancel); the caller then ends the job another way.
int await_departures(Comm& comm, std::chrono::milliseconds timeout);

}  // namespace hpsweep
