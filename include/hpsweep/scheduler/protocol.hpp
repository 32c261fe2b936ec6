#pragma once
// Messages between master and workers, whatever the work is (trials for `run`, batches of run
// directories for `ingest`). Master: JOB, then TASK* and finally STOP (or ABORT).
// Worker: READY (or WORKER_ERROR) after JOB, then one RESULT per TASK. Jobs with [resources]
// use PLACED_TASK / PLACED_RESULT instead: the master packs tasks onto the workers' devices and
// a worker runs all the tasks it was given at once.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "hpsweep/backends/backend.hpp"
#include "hpsweep/scheduler/comm.hpp"
#include "hpsweep/store/records.hpp"

namespace hpsweep::protocol {

enum class Tag : int {
  Job = 1,            // what every task of this launch needs (job file, ingest layout, ...)
  Abort = 2,          // leave now: end the task in flight (the master recorded it LOST), send nothing
  Task = 3,           // one task: a Trial, a batch of run directories, ...
  Stop = 4,           // no more tasks
  Ready = 5,          // worker's host name
  Result = 6,         // TaskResult: the task's work seconds and its answer
  WorkerError = 7,    // worker could not start: message
  Left = 8,           // worker's last message: it has stopped and sends nothing more
  PlacedTask = 9,     // one task with its Placement and a key, to start at once next to the others
  PlacedResult = 10,  // the key of a PLACED_TASK and its TaskResult
};

// Comm carries plain integers; these keep the protocol typed on both ends.
void send(Comm& comm, int dest, Tag tag, std::string_view payload);
bool has_tag(const Message& message, Tag tag);

// A worker's answer to one task. `seconds` is the work it took (the master sizes its queues by
// it); `payload` is what the master's handler decodes.
struct TaskResult {
  double seconds = 0;
  std::string payload;
};
std::string encode_task_result(const TaskResult& result);
TaskResult decode_task_result(const std::string& message_payload);

// What a worker's node offers to tasks that ask for resources, sent with READY.
struct WorkerSlots {
  std::vector<std::string> devices;  // GPU ids of the node (CUDA_VISIBLE_DEVICES entries)
  int cpus = 0;                      // CPU cores of the node
  bool detected = false;             // read from the node (not --gpus-per-node): real devices
};
std::string encode_ready(const std::string& host, const WorkerSlots& slots);
// Older workers (and ingest's) send only the host: no devices, no cpus.
void decode_ready(const std::string& payload, std::string& host, WorkerSlots& slots);

std::string encode_placed_task(std::uint64_t key, const Placement& placement, std::string_view task_payload);
void decode_placed_task(const std::string& payload, std::uint64_t& key, Placement& placement,
                        std::string& task_payload);
std::string encode_placed_result(std::uint64_t key, const TaskResult& result);
TaskResult decode_placed_result(const std::string& payload, std::uint64_t& key);

// The trial engine's payloads (`hpsweep run`).
std::string encode_job(const std::string& path, const std::string& text, const std::string& trial_root);
void decode_job(const std::string& payload, std::string& path, std::string& text, std::string& trial_root);
// `trials_left`: the sweep's trials not yet finished as the master counts them when it sends this
// one (0: unknown), so workers in other processes size threads = auto by it.
std::string encode_trial(const Trial& t, std::int64_t trials_left = 0);
Trial decode_trial(const std::string& payload, std::int64_t* trials_left = nullptr);
// A trial's RESULT message: the TaskResult envelope around a TrialRecord (attempt and launch
// are set by the master).
std::string encode_result(const TrialRecord& r);
TrialRecord decode_result(const std::string& payload);

}  // namespace hpsweep::protocol
