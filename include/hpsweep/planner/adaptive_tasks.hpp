#pragma once
// The adaptive sweep on the scheduler's engine: a TaskHandler whose task list grows as the
// planner decides new rounds. Each result goes to the store (through the ResultSink) and to the
// planner; when the results a round waits for are in, its trials are queued at once and the
// engine tops up the workers (run_tasks), so no worker waits for a decision.
#include <vector>

#include "hpsweep/planner/planner.hpp"
#include "hpsweep/scheduler/master.hpp"

namespace hpsweep {

class AdaptiveTasks : public TaskHandler {
 public:
  // `planner` holds the stored results already (add_result); its planned trials without a
  // result are queued, in plan order.
  AdaptiveTasks(Planner& planner, ResultSink& sink);
  std::size_t count() const override { return queue_.size(); }
  std::string dispatch(std::size_t index, int rank) override;
  void on_result(int rank, std::string payload) override;
  void on_idle() override { sink_.on_idle(); }
  // Trials queued so far (some may have run).
  std::size_t queued() const { return queue_.size(); }

 private:
  void enqueue_new_rounds();

  Planner& planner_;
  ResultSink& sink_;
  std::vector<std::size_t> queue_;  // grid indices, in dispatch order
  std::size_t rounds_queued_ = 0;
};

}  // namespace hpsweep
