#include "hpsweep/scheduler/comm.hpp"
#include "hpsweep/util/error.hpp"

namespace hpsweep {

class LocalWorld::Endpoint : public Comm {
 public:
  Endpoint(LocalWorld& world, int rank) : world_(world), rank_(rank) {}
  int rank() const override { return rank_; }
  int size() const override { return world_.size(); }
  void send(int dest, int tag, std::string_view payload) override {
    if (dest < 0 || dest >= size()) throw CommError("local send to rank " + std::to_string(dest) + " out of range");
    auto& box = *world_.mailboxes_[dest];
    {
      std::lock_guard lock(box.mutex);
      box.messages.push_back(Message{rank_, tag, std::string(payload)});
    }
    box.ready.notify_one();
  }
  bool try_receive(Message& out) override {
    auto& box = *world_.mailboxes_[rank_];
    std::lock_guard lock(box.mutex);
    if (box.messages.empty()) return false;
    out = std::move(box.messages.front());
    box.messages.pop_front();
    return true;
  }
  bool receive(Message& out, std::chrono::milliseconds timeout) override {
    auto& box = *world_.mailboxes_[rank_];
    std::unique_lock lock(box.mutex);
    if (!box.ready.wait_for(lock, timeout, [&] { return !box.messages.empty(); })) return false;
    out = std::move(box.messages.front());
    box.messages.pop_front();
    return true;
  }

 private:
  LocalWorld& world_;
  int rank_;
};

LocalWorld::LocalWorld(int size) {
  for (int r = 0; r < size; ++r) mailboxes_.push_back(std::make_unique<Mailbox>());
  for (int r = 0; r < size; ++r) endpoints_.push_back(std::make_unique<Endpoint>(*this, r));
}

Comm& LocalWorld::endpoint(int rank) { return *endpoints_.at(rank); }

}  // namespace hpsweep
