#include "hpsweep/planner/adaptive_tasks.hpp"

#include "hpsweep/scheduler/protocol.hpp"
#include "hpsweep/util/serialize.hpp"

namespace hpsweep {

AdaptiveTasks::AdaptiveTasks(Planner& planner, ResultSink& sink) : planner_(planner), sink_(sink) {
  planner_.advance();
  enqueue_new_rounds();
}

void AdaptiveTasks::enqueue_new_rounds() {
  const auto& rounds = planner_.rounds();
  for (; rounds_queued_ < rounds.size(); ++rounds_queued_)
    for (const auto& t : rounds[rounds_queued_].trials)
      if (!planner_.has_result(t.id)) queue_.push_back(t.grid_index);
}

std::string AdaptiveTasks::dispatch(std::size_t index, int rank) {
  const Trial& t = planner_.grid()[queue_[index]];
  sink_.on_dispatch(t, rank);
  return protocol::encode_trial(t);
}

void AdaptiveTasks::on_result(int, std::string payload) {
  ByteReader r(payload);
  TrialRecord record = decode_trial_record(r);
  planner_.add_result(record);
  sink_.on_result(std::move(record));
  if (planner_.advance() > 0) enqueue_new_rounds();
}

}  // namespace hpsweep
