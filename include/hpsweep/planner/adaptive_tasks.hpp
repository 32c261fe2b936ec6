#pragma once
// The adaptive sweep on the scheduler's engine: a TaskHandler whose task list grows as the
// planner decides new rounds. Each result goes to the store (through the ResultSink) and to the
// planner. Rounds are decided on a planning thread of their own, which holds no worker: the
// master keeps dispatching the rounds already queued and recording results while the next one
// is decided, and queues each round as soon as it is (run_tasks tops up the workers).
#include <chrono>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "hpsweep/planner/planner.hpp"
#include "hpsweep/scheduler/master.hpp"

namespace hpsweep {

class AdaptiveTasks : public TaskHandler {
 public:
  // `planner` holds the stored results already (add_result); its planned trials without a
  // result are queued, in plan order. The planning thread starts here.
  AdaptiveTasks(Planner& planner, ResultSink& sink);
  ~AdaptiveTasks() override;
  AdaptiveTasks(const AdaptiveTasks&) = delete;
  AdaptiveTasks& operator=(const AdaptiveTasks&) = delete;

  std::size_t count() const override { return queue_.size(); }
  std::string dispatch(std::size_t index, int rank) override;
  void on_result(int rank, std::string payload) override;
  void on_idle() override;
  bool may_add_tasks() const override;
  void wait_for_tasks(std::chrono::milliseconds timeout) override;
  // Trials queued so far (some may have run).
  std::size_t queued() const { return queue_.size(); }
  // Ends the planning thread (a decision under way completes first); the planner may then be
  // read freely. Rethrows what the planning thread failed with.
  void stop_planning();

 private:
  void plan_rounds();      // the planning thread
  void take_new_rounds();  // master: queue the rounds decided since the last call (under lock)
  void rethrow_failure();  // master: what the planning thread failed with (under lock)

  Planner& planner_;
  ResultSink& sink_;
  std::vector<std::size_t> queue_;  // grid indices, in dispatch order (master only)
  std::size_t rounds_queued_ = 0;   // master only
  mutable std::mutex mutex_;        // guards the planner's state and the fields below
  std::condition_variable planner_wake_, master_wake_;
  bool stop_ = false;
  std::exception_ptr failure_;
  std::thread thread_;
};

}  // namespace hpsweep
