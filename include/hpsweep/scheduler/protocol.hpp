#pragma once
// Messages between master and workers, whatever the work is (trials for `run`, batches of run
// directories for `ingest`). Master: JOB, then TASK* and finally STOP (or ABORT).
// Worker: READY (or WORKER_ERROR) after JOB, then one RESULT per TASK.
#include <string>
#include <string_view>

#include "hpsweep/scheduler/comm.hpp"
#include "hpsweep/store/records.hpp"

namespace hpsweep::protocol {

enum class Tag : int {
  Job = 1,          // what every task of this launch needs (job file, ingest layout, ...)
  Abort = 2,        // leave now: end the task in flight (the master recorded it LOST), send nothing
  Task = 3,         // one task: a Trial, a batch of run directories, ...
  Stop = 4,         // no more tasks
  Ready = 5,        // worker's host name
  Result = 6,       // TaskResult: the task's work seconds and its answer
  WorkerError = 7,  // worker could not start: message
  Left = 8,         // worker's last message: it has stopped and sends nothing more
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

// The trial engine's payloads (`hpsweep run`).
std::string encode_job(const std::string& path, const std::string& text, const std::string& trial_root);
void decode_job(const std::string& payload, std::string& path, std::string& text, std::string& trial_root);
std::string encode_trial(const Trial& t);
Trial decode_trial(const std::string& payload);
// A trial's RESULT message: the TaskResult envelope around a TrialRecord (attempt and launch
// are set by the master).
std::string encode_result(const TrialRecord& r);
TrialRecord decode_result(const std::string& payload);

}  // namespace hpsweep::protocol
