#include "hpsweep/planner/adaptive_tasks.hpp"

#include "hpsweep/scheduler/protocol.hpp"
#include "hpsweep/util/serialize.hpp"

namespace hpsweep {

AdaptiveTasks::AdaptiveTasks(Planner& planner, ResultSink& sink) : planner_(planner), sink_(sink) {
  thread_ = std::thread([this] { plan_rounds(); });
}

AdaptiveTasks::~AdaptiveTasks() {
  try {
    stop_planning();
  } catch (...) {  // destructors never throw; run_tasks has seen the failure already
  }
}

void AdaptiveTasks::stop_planning() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  planner_wake_.notify_all();
  if (thread_.joinable()) thread_.join();
  std::lock_guard<std::mutex> lock(mutex_);
  rethrow_failure();
}

void AdaptiveTasks::plan_rounds() {
  std::unique_lock<std::mutex> lock(mutex_);
  try {
    for (;;) {
      std::optional<Planner::Pending> pending;
      planner_wake_.wait(lock, [&] { return stop_ || (pending = planner_.prepare()).has_value(); });
      if (stop_) return;
      lock.unlock();
      PlanRound round = planner_.decide(std::move(*pending));  // the fits: the master keeps going
      lock.lock();
      planner_.conclude(std::move(round));
      master_wake_.notify_all();
    }
  } catch (...) {
    if (!lock.owns_lock()) lock.lock();
    failure_ = std::current_exception();
    master_wake_.notify_all();
  }
}

void AdaptiveTasks::rethrow_failure() {
  if (failure_) std::rethrow_exception(failure_);
}

void AdaptiveTasks::take_new_rounds() {
  rethrow_failure();
  const auto& rounds = planner_.rounds();
  for (; rounds_queued_ < rounds.size(); ++rounds_queued_)
    for (const auto& t : rounds[rounds_queued_].trials)
      if (!planner_.has_result(t.id)) queue_.push_back(t.grid_index);
}

std::string AdaptiveTasks::dispatch(std::size_t index, int rank) {
  const Trial& t = planner_.grid()[queue_[index]];  // the grid never changes: no lock
  sink_.on_dispatch(t, rank);
  // Later rounds are not decided yet: every grid trial without a result may still run. (Results
  // are added on this thread only, so the count needs no lock.)
  return protocol::encode_trial(t, static_cast<std::int64_t>(planner_.grid().size() - planner_.result_count()));
}

void AdaptiveTasks::on_result(int, std::string payload) {
  ByteReader r(payload);
  TrialRecord record = decode_trial_record(r);
  bool round_complete = false;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    round_complete = planner_.add_result(record);
    take_new_rounds();
  }
  if (round_complete) planner_wake_.notify_one();
  sink_.on_result(std::move(record));
}

void AdaptiveTasks::on_idle() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    take_new_rounds();
  }
  sink_.on_idle();
}

bool AdaptiveTasks::may_add_tasks() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return failure_ || !planner_.finished() || rounds_queued_ < planner_.rounds().size();
}

void AdaptiveTasks::wait_for_tasks(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mutex_);
  master_wake_.wait_for(lock, timeout,
                        [&] { return failure_ || planner_.finished() || rounds_queued_ < planner_.rounds().size(); });
  take_new_rounds();
}

}  // namespace hpsweep
