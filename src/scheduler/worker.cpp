#include "hpsweep/scheduler/worker.hpp"

#include <chrono>

#include "hpsweep/backends/backend.hpp"
#include "hpsweep/util/error.hpp"
#include "hpsweep/util/serialize.hpp"
#include "hpsweep/util/text.hpp"

namespace hpsweep {

namespace {

class TrialRunner : public TaskRunner {
 public:
  TrialRunner(std::unique_ptr<Backend> backend, int rank, std::string host)
      : backend_(std::move(backend)), rank_(rank), host_(std::move(host)) {}
  protocol::TaskResult run(const std::string& task_payload) override {
    const TrialRecord rec = execute_trial(*backend_, protocol::decode_trial(task_payload), rank_, host_);
    ByteWriter w;
    encode(w, rec);
    return protocol::TaskResult{rec.wall_time, w.take()};
  }

 private:
  std::unique_ptr<Backend> backend_;
  int rank_;
  std::string host_;
};

}  // namespace

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

void serve_tasks(Comm& comm, const std::string& host, const TaskRunnerFactory& make) {
  using protocol::Tag;
  Message msg;
  // The master may take a while (validating a large grid, recovering a store) before it speaks.
  while (!comm.receive(msg, std::chrono::milliseconds(1000))) {
  }
  if (!protocol::has_tag(msg, Tag::Job)) return;  // Abort/Stop: nothing to run
  std::unique_ptr<TaskRunner> runner;
  try {
    runner = make(msg.payload);
  } catch (const std::exception& e) {
    protocol::send(comm, 0, Tag::WorkerError, e.what());
    runner.reset();
  }
  if (runner) protocol::send(comm, 0, Tag::Ready, host);
  while (true) {
    if (!comm.receive(msg, std::chrono::milliseconds(1000))) continue;
    if (protocol::has_tag(msg, Tag::Stop) || protocol::has_tag(msg, Tag::Abort)) return;
    if (!protocol::has_tag(msg, Tag::Task) || !runner) continue;
    protocol::send(comm, 0, Tag::Result, protocol::encode_task_result(runner->run(msg.payload)));
  }
}

void run_worker(Comm& comm, const std::string& host, const BackendFactory& make) {
  serve_tasks(comm, host, [&](const std::string& job_payload) -> std::unique_ptr<TaskRunner> {
    std::string path, text, trial_root;
    protocol::decode_job(job_payload, path, text, trial_root);
    std::unique_ptr<Backend> backend = make(path, text, trial_root);
    if (!backend) return nullptr;
    return std::make_unique<TrialRunner>(std::move(backend), comm.rank(), host);
  });
}

}  // namespace hpsweep
