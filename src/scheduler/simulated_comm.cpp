#include "hpsweep/scheduler/simulated_comm.hpp"

#include "hpsweep/scheduler/protocol.hpp"
#include "hpsweep/util/error.hpp"
#include "hpsweep/util/serialize.hpp"

namespace hpsweep {

SimulatedWorkers::SimulatedWorkers(int ranks, std::function<double(const Trial&)> duration, protocol::WorkerSlots slots)
    : ranks_(ranks),
      duration_(std::move(duration)),
      slots_(std::move(slots)),
      queued_(static_cast<std::size_t>(ranks)),
      running_(static_cast<std::size_t>(ranks), false) {}

void SimulatedWorkers::send(int dest, int tag, std::string_view payload) {
  if (dest <= 0 || dest >= ranks_) throw CommError("simulated send to rank " + std::to_string(dest));
  using protocol::Tag;
  if (tag == static_cast<int>(Tag::Job)) {
    immediate_.push_back(Message{dest, static_cast<int>(Tag::Ready),
                                 protocol::encode_ready("simulated-" + std::to_string(dest), slots_)});
  } else if (tag == static_cast<int>(Tag::Task)) {
    queued_[static_cast<std::size_t>(dest)].push_back(protocol::decode_trial(std::string(payload)));
    if (!running_[static_cast<std::size_t>(dest)]) start_next(dest);
  } else if (tag == static_cast<int>(Tag::PlacedTask)) {
    // Runs at once, next to the worker's other placed tasks: the master owns the packing.
    std::uint64_t key = 0;
    Placement placement;
    std::string task;
    protocol::decode_placed_task(std::string(payload), key, placement, task);
    TrialRecord r;
    r.trial = protocol::decode_trial(task);
    r.rank = dest;
    r.host = "simulated";
    r.devices = placement.describe();
    r.start_time = now_;
    r.wall_time = std::max(0.0, duration_(r.trial));
    busy_ += r.wall_time;
    device_busy_ += r.wall_time * placement.gpus;
    ByteWriter w;
    encode(w, r);
    events_.push(Event{now_ + r.wall_time, seq_++,
                       Message{dest, static_cast<int>(Tag::PlacedResult),
                               protocol::encode_placed_result(key, protocol::TaskResult{r.wall_time, w.take()})}});
  }
  // Stop / Abort: simulated workers simply stop.
}

void SimulatedWorkers::start_next(int worker) {
  auto& q = queued_[static_cast<std::size_t>(worker)];
  if (q.empty()) {
    running_[static_cast<std::size_t>(worker)] = false;
    return;
  }
  const Trial t = q.front();
  q.pop_front();
  running_[static_cast<std::size_t>(worker)] = true;
  TrialRecord r;
  r.trial = t;
  r.rank = worker;
  r.host = "simulated";
  r.start_time = now_;
  r.wall_time = std::max(0.0, duration_(t));
  busy_ += r.wall_time;
  events_.push(Event{now_ + r.wall_time, seq_++,
                     Message{worker, static_cast<int>(protocol::Tag::Result), protocol::encode_result(r)}});
}

bool SimulatedWorkers::try_receive(Message& out) {
  if (!immediate_.empty()) {
    out = std::move(immediate_.front());
    immediate_.pop_front();
    return true;
  }
  if (events_.empty() || events_.top().time > now_) return false;
  return receive(out, std::chrono::milliseconds(0));
}

bool SimulatedWorkers::receive(Message& out, std::chrono::milliseconds) {
  if (!immediate_.empty()) return try_receive(out);
  if (events_.empty()) return false;
  Event e = events_.top();
  events_.pop();
  now_ = std::max(now_, e.time);
  out = std::move(e.message);
  if (out.tag == static_cast<int>(protocol::Tag::Result))
    start_next(out.source);  // the worker moves on to its next queued trial at once
  return true;
}

}  // namespace hpsweep
