#pragma once
// A single-process Comm for the master that simulates its workers in virtual time: a trial sent
// to a worker "runs" for its recorded duration, and its result arrives when the virtual clock
// gets there. The real master loop (run_master, over run_tasks) runs against it unchanged, so the what-if
// scheduling in `hpsweep replay` measures the scheduler itself, not a re-implementation.
#include <deque>
#include <functional>
#include <queue>
#include <unordered_map>
#include <vector>

#include "hpsweep/scheduler/comm.hpp"
#include "hpsweep/scheduler/protocol.hpp"
#include "hpsweep/store/records.hpp"

namespace hpsweep {

class SimulatedWorkers : public Comm {
 public:
  // `ranks` includes the master (rank 0); `duration(trial)` gives each trial's seconds; every
  // worker's node offers `slots` (placed tasks of a job with [resources] run side by side).
  SimulatedWorkers(int ranks, std::function<double(const Trial&)> duration, protocol::WorkerSlots slots = {});
  int rank() const override { return 0; }
  int size() const override { return ranks_; }
  void send(int dest, int tag, std::string_view payload) override;
  bool try_receive(Message& out) override;
  bool receive(Message& out, std::chrono::milliseconds timeout) override;

  double now() const { return now_; }
  double busy_seconds() const { return busy_; }
  // Placed tasks: the sum of GPUs x seconds they held.
  double device_seconds() const { return device_busy_; }

 private:
  struct Event {
    double time;
    std::uint64_t seq;  // ties: first scheduled first, so runs are deterministic
    Message message;
    bool operator>(const Event& o) const { return time != o.time ? time > o.time : seq > o.seq; }
  };
  void start_next(int worker);
  int ranks_;
  std::function<double(const Trial&)> duration_;
  protocol::WorkerSlots slots_;
  double now_ = 0, busy_ = 0, device_busy_ = 0;
  std::uint64_t seq_ = 0;
  std::vector<std::deque<Trial>> queued_;  // per worker
  std::vector<bool> running_;
  std::priority_queue<Event, std::vector<Event>, std::greater<Event>> events_;
  std::deque<Message> immediate_;  // protocol replies (READY) delivered at the current time
};

}  // namespace hpsweep
