#include "hpsweep/scheduler/worker.hpp"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <exception>
#include <list>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include "hpsweep/backends/backend.hpp"
#include "hpsweep/util/error.hpp"
#include "hpsweep/util/serialize.hpp"
#include "hpsweep/util/text.hpp"

namespace hpsweep {

namespace {

// Trials side by side need a backend each (backends keep per-trial state); idle ones are reused.
class TrialRunner : public TaskRunner {
 public:
  TrialRunner(std::unique_ptr<Backend> first, std::function<std::unique_ptr<Backend>()> make, int rank,
              std::string host)
      : make_(std::move(make)), rank_(rank), host_(std::move(host)) {
    idle_.push_back(std::move(first));
  }
  void cancel() override {
    std::lock_guard lock(mutex_);
    cancelled_ = true;
    for (Backend* b : busy_) b->cancel();
  }
  protocol::TaskResult run(const std::string& task_payload) override { return run_placed(task_payload, Placement{}); }
  protocol::TaskResult run_placed(const std::string& task_payload, const Placement& placement) override {
    std::unique_ptr<Backend> backend = take();
    std::int64_t trials_left = 0;
    const Trial trial = protocol::decode_trial(task_payload, &trials_left);
    if (trials_left > 0) backend->note_trials_left(trials_left);
    const TrialRecord rec = execute_trial(*backend, trial, rank_, host_, placement);
    give_back(std::move(backend));
    ByteWriter w;
    encode(w, rec);
    return protocol::TaskResult{rec.wall_time, w.take()};
  }

 private:
  std::unique_ptr<Backend> take() {
    std::unique_ptr<Backend> b;
    {
      std::lock_guard lock(mutex_);
      if (!idle_.empty()) {
        b = std::move(idle_.back());
        idle_.pop_back();
      }
    }
    if (!b) b = make_();
    std::lock_guard lock(mutex_);
    busy_.push_back(b.get());
    if (cancelled_) b->cancel();  // a trial that starts as the worker is told to abort ends at once
    return b;
  }
  void give_back(std::unique_ptr<Backend> b) {
    std::lock_guard lock(mutex_);
    std::erase(busy_, b.get());
    idle_.push_back(std::move(b));
  }
  std::function<std::unique_ptr<Backend>()> make_;
  int rank_;
  std::string host_;
  std::mutex mutex_;
  std::vector<std::unique_ptr<Backend>> idle_;
  std::vector<Backend*> busy_;
  bool cancelled_ = false;
};

}  // namespace

protocol::TaskResult TaskRunner::run_placed(const std::string&, const Placement&) {
  throw Error("this kind of task cannot be placed on devices");
}

TrialRecord execute_trial(Backend& backend, const Trial& trial, int rank, const std::string& host,
                          const Placement& placement) {
  TrialRecord rec;
  rec.trial = trial;
  rec.rank = rank;
  rec.host = host;
  if (placement.placed()) rec.devices = placement.describe();
  rec.start_time = unix_now();
  const auto t0 = std::chrono::steady_clock::now();
  try {
    rec.outcome = placement.placed() ? backend.run_placed(trial, placement) : backend.run(trial);
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

// A PLACED_TASK runs at once on a thread of its own, next to the others of this worker.
class PlacedRun {
 public:
  PlacedRun(TaskRunner& runner, std::uint64_t key, Placement placement, std::string payload) : key_(key) {
    thread_ = std::thread([this, &runner, placement = std::move(placement), payload = std::move(payload)] {
      try {
        result_ = runner.run_placed(payload, placement);
      } catch (...) {
        failure_ = std::current_exception();
      }
      done_ = true;
    });
  }
  ~PlacedRun() {
    if (thread_.joinable()) thread_.join();
  }
  PlacedRun(const PlacedRun&) = delete;
  PlacedRun& operator=(const PlacedRun&) = delete;
  bool done() const { return done_; }
  // After done(): the PLACED_RESULT payload.
  std::string answer() {
    thread_.join();
    if (failure_) std::rethrow_exception(failure_);
    return protocol::encode_placed_result(key_, *result_);
  }

 private:
  std::uint64_t key_;
  std::optional<protocol::TaskResult> result_;
  std::exception_ptr failure_;
  std::atomic<bool> done_{false};
  std::thread thread_;  // last: started once the members above exist
};

// Runs the tasks as they arrive until STOP or ABORT. ABORT cancels the tasks in flight and their
// results are not sent: the master has already recorded them LOST.
void serve(Comm& comm, TaskRunner& runner) {
  using protocol::Tag;
  TaskThread executor(runner);
  std::deque<std::string> queued;  // prefetched tasks
  std::list<PlacedRun> placed;     // placed tasks, all running
  bool stopping = false;           // STOP: finish the queue and the placed tasks, then leave
  Message msg;
  while (true) {
    if (!executor.outstanding() && !queued.empty()) {
      executor.start(std::move(queued.front()));
      queued.pop_front();
    }
    for (auto it = placed.begin(); it != placed.end();) {
      if (!it->done()) {
        ++it;
        continue;
      }
      protocol::send(comm, 0, Tag::PlacedResult, it->answer());
      it = placed.erase(it);
    }
    if (executor.outstanding()) {
      // A finished task is answered at once; otherwise look for messages in between.
      if (auto result = executor.wait(std::chrono::microseconds(200))) {
        protocol::send(comm, 0, Tag::Result, protocol::encode_task_result(*result));
        continue;
      }
      if (!comm.try_receive(msg)) continue;
    } else if (!placed.empty()) {
      // Placed tasks are long (they own GPUs): a few milliseconds to answer one is nothing.
      if (!comm.receive(msg, std::chrono::milliseconds(5))) continue;
    } else {
      if (stopping) return;
      if (!comm.receive(msg, std::chrono::milliseconds(1000))) continue;
    }
    if (protocol::has_tag(msg, Tag::Abort)) {
      if (executor.outstanding() || !placed.empty()) {
        runner.cancel();
        while (executor.outstanding() && !executor.wait(std::chrono::milliseconds(100))) {
        }
      }
      placed.clear();  // joins every thread; their trials were cancelled above
      return;
    }
    if (protocol::has_tag(msg, Tag::Stop)) stopping = true;
    if (protocol::has_tag(msg, Tag::Task)) queued.push_back(std::move(msg.payload));
    if (protocol::has_tag(msg, Tag::PlacedTask)) {
      std::uint64_t key = 0;
      Placement placement;
      std::string payload;
      protocol::decode_placed_task(msg.payload, key, placement, payload);
      placed.emplace_back(runner, key, std::move(placement), std::move(payload));
    }
  }
}

}  // namespace

void serve_tasks(Comm& comm, const std::string& host, const TaskRunnerFactory& make,
                 const protocol::WorkerSlots& slots) {
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
      protocol::send(comm, 0, Tag::Ready, protocol::encode_ready(host, slots));
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

void run_worker(Comm& comm, const std::string& host, const BackendFactory& make, const protocol::WorkerSlots& slots) {
  serve_tasks(
      comm, host,
      [&](const std::string& job_payload) -> std::unique_ptr<TaskRunner> {
        std::string path, text, trial_root;
        protocol::decode_job(job_payload, path, text, trial_root);
        std::unique_ptr<Backend> first = make(path, text, trial_root);  // a bad job: WORKER_ERROR now
        if (!first) return nullptr;
        return std::make_unique<TrialRunner>(
            std::move(first), [make, path, text, trial_root] { return make(path, text, trial_root); }, comm.rank(),
            host);
      },
      slots);
}

namespace {

std::vector<std::string> device_list(const char* text) {
  std::vector<std::string> out;
  if (!text) return out;
  for (const auto& d : split(text, ','))
    if (!trim(d).empty()) out.push_back(trim(d));
  return out;
}

std::vector<std::string> numbered_devices(int n) {
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) out.push_back(std::to_string(i));
  return out;
}

// GPUs `nvidia-smi -L` lists ("GPU 0: ..."), or none when it is not there.
int nvidia_smi_gpus() {
  std::FILE* p = popen("nvidia-smi -L 2>/dev/null", "r");
  if (!p) return 0;
  int n = 0;
  char line[512];
  while (std::fgets(line, sizeof line, p))
    if (std::string(line).rfind("GPU ", 0) == 0) ++n;
  pclose(p);
  return n;
}

}  // namespace

protocol::WorkerSlots detect_node_slots(int gpus_per_node) {
  protocol::WorkerSlots slots;
  const char* cuda = std::getenv("CUDA_VISIBLE_DEVICES");
  std::vector<std::string> visible = device_list(cuda);
  if (visible.size() == 1 && (visible[0] == "NoDevFiles" || visible[0] == "-1")) visible.clear();
  if (gpus_per_node > 0) {
    slots.devices = visible.size() >= static_cast<std::size_t>(gpus_per_node)
                        ? std::vector<std::string>(visible.begin(), visible.begin() + gpus_per_node)
                        : numbered_devices(gpus_per_node);
  } else if (!visible.empty()) {
    slots.detected = true;
    slots.devices = visible;
  } else if (auto step = device_list(std::getenv("SLURM_STEP_GPUS")); !step.empty()) {
    slots.devices = step;
  } else if (auto job = device_list(std::getenv("SLURM_JOB_GPUS")); !job.empty()) {
    slots.devices = job;
  } else if (const char* on_node = std::getenv("SLURM_GPUS_ON_NODE"); on_node && std::atoi(on_node) > 0) {
    slots.devices = numbered_devices(std::atoi(on_node));
  } else if (cuda == nullptr) {
    slots.devices = numbered_devices(nvidia_smi_gpus());
  }
  if (gpus_per_node <= 0 && !slots.devices.empty()) slots.detected = true;
  const char* cpus = std::getenv("SLURM_CPUS_ON_NODE");
  slots.cpus = cpus && std::atoi(cpus) > 0 ? std::atoi(cpus) : static_cast<int>(std::thread::hardware_concurrency());
  if (slots.cpus < 1) slots.cpus = 1;
  return slots;
}

}  // namespace hpsweep
