#include "hpsweep/scheduler/worker.hpp"

#include <chrono>
#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>

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
  void cancel() override { backend_->cancel(); }
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

namespace {

// Runs one task at a time on its own thread, so the message thread stays free to hear ABORT.
// A task is outstanding from start() until wait() has handed over its result.
class TaskThread {
 public:
  explicit TaskThread(TaskRunner& runner) : runner_(runner), thread_([this] { loop(); }) {}
  ~TaskThread() {
    {
      std::lock_guard lock(mutex_);
      quit_ = true;
    }
    wake_.notify_all();
    thread_.join();
  }
  void start(std::string payload) {
    {
      std::lock_guard lock(mutex_);
      payload_ = std::move(payload);
      outstanding_ = running_ = true;
    }
    wake_.notify_all();
  }
  // Waits up to `timeout` for the outstanding task; returns its result once it is done.
  std::optional<protocol::TaskResult> wait(std::chrono::microseconds timeout) {
    std::unique_lock lock(mutex_);
    done_.wait_for(lock, timeout, [this] { return !running_; });
    if (running_) return std::nullopt;
    outstanding_ = false;
    if (failure_) std::rethrow_exception(std::exchange(failure_, nullptr));
    return std::exchange(result_, std::nullopt);
  }
  bool outstanding() {
    std::lock_guard lock(mutex_);
    return outstanding_;
  }

 private:
  void loop() {
    std::unique_lock lock(mutex_);
    while (true) {
      wake_.wait(lock, [this] { return quit_ || running_; });
      if (quit_) return;
      std::string payload = std::move(payload_);
      lock.unlock();
      std::optional<protocol::TaskResult> result;
      std::exception_ptr failure;
      try {
        result = runner_.run(payload);
      } catch (...) {
        failure = std::current_exception();
      }
      lock.lock();
      result_ = std::move(result);
      failure_ = failure;
      running_ = false;
      done_.notify_all();
    }
  }

  TaskRunner& runner_;
  std::mutex mutex_;
  std::condition_variable wake_, done_;
  std::string payload_;
  std::optional<protocol::TaskResult> result_;
  std::exception_ptr failure_;
  bool outstanding_ = false, running_ = false, quit_ = false;
  std::thread thread_;  // last: started once the members above exist
};

// Runs the tasks as they arrive until STOP or ABORT. ABORT cancels the task in flight and its
// result is not sent: the master has already recorded it LOST.
void serve(Comm& comm, TaskRunner& runner) {
  using protocol::Tag;
  TaskThread executor(runner);
  std::deque<std::string> queued;  // prefetched tasks
  bool stopping = false;           // STOP: finish the queue, then leave
  Message msg;
  while (true) {
    if (!executor.outstanding() && !queued.empty()) {
      executor.start(std::move(queued.front()));
      queued.pop_front();
    }
    if (executor.outstanding()) {
      // A finished task is answered at once; otherwise look for messages in between.
      if (auto result = executor.wait(std::chrono::microseconds(200))) {
        protocol::send(comm, 0, Tag::Result, protocol::encode_task_result(*result));
        continue;
      }
      if (!comm.try_receive(msg)) continue;
    } else {
      if (stopping) return;
      if (!comm.receive(msg, std::chrono::milliseconds(1000))) continue;
    }
    if (protocol::has_tag(msg, Tag::Abort)) {
      if (executor.outstanding()) {
        runner.cancel();
        while (!executor.wait(std::chrono::milliseconds(100))) {
        }
      }
      return;
    }
    if (protocol::has_tag(msg, Tag::Stop)) stopping = true;
    if (protocol::has_tag(msg, Tag::Task)) queued.push_back(std::move(msg.payload));
  }
}

}  // namespace

void serve_tasks(Comm& comm, const std::string& host, const TaskRunnerFactory& make) {
  using protocol::Tag;
  Message msg;
  // The master may take a while (validating a large grid, recovering a store) before it speaks.
  while (!comm.receive(msg, std::chrono::milliseconds(1000))) {
  }
  if (protocol::has_tag(msg, Tag::Job)) {
    std::unique_ptr<TaskRunner> runner;
    try {
      runner = make(msg.payload);
    } catch (const std::exception& e) {
      protocol::send(comm, 0, Tag::WorkerError, e.what());
      runner.reset();
    }
    if (runner) {
      protocol::send(comm, 0, Tag::Ready, host);
      serve(comm, *runner);
    } else {
      // Without a runner: wait to be told to leave, answering nothing.
      while (!comm.receive(msg, std::chrono::milliseconds(1000)) ||
             !(protocol::has_tag(msg, Tag::Stop) || protocol::has_tag(msg, Tag::Abort))) {
      }
    }
  }
  protocol::send(comm, 0, Tag::Left, "");
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
