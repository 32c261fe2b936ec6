#pragma once
// Point-to-point messaging between the master (rank 0) and workers. Two back-ends: MPI for real
// jobs, and an in-process one (threads) so the same master/worker code runs on a laptop without
// a launcher, in unit tests and in replay.
#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace hpsweep {

struct Message {
  int source = -1;
  int tag = 0;
  std::string payload;
};

class Comm {
 public:
  virtual ~Comm() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // Never blocks on the receiver.
  virtual void send(int dest, int tag, std::string_view payload) = 0;
  // Any source, any tag; false when nothing is waiting.
  virtual bool try_receive(Message& out) = 0;
  // Waits up to `timeout` without spinning a core; false on timeout.
  virtual bool receive(Message& out, std::chrono::milliseconds timeout) = 0;
};

// In-process world of `size` ranks, each an endpoint used from its own thread.
class LocalWorld {
 public:
  explicit LocalWorld(int size);
  LocalWorld(const LocalWorld&) = delete;
  LocalWorld& operator=(const LocalWorld&) = delete;
  Comm& endpoint(int rank);
  int size() const { return static_cast<int>(endpoints_.size()); }

 private:
  struct Mailbox {
    std::mutex mutex;
    std::condition_variable ready;
    std::deque<Message> messages;
  };
  class Endpoint;
  std::vector<std::unique_ptr<Mailbox>> mailboxes_;
  std::vector<std::unique_ptr<Comm>> endpoints_;
};

// MPI_Init/MPI_Finalize in one object owned by main. Not copyable, not movable.
class MpiEnvironment {
 public:
  MpiEnvironment(int* argc, char*** argv);
  ~MpiEnvironment();
  MpiEnvironment(const MpiEnvironment&) = delete;
  MpiEnvironment& operator=(const MpiEnvironment&) = delete;
  // Ends every rank of the job (used when one rank hits an error the others cannot see).
  [[noreturn]] static void abort(int code);
};

// Point-to-point over a private duplicate of MPI_COMM_WORLD.
class MpiComm : public Comm {
 public:
  MpiComm();
  ~MpiComm() override;
  MpiComm(const MpiComm&) = delete;
  MpiComm& operator=(const MpiComm&) = delete;
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  void send(int dest, int tag, std::string_view payload) override;
  bool try_receive(Message& out) override;
  bool receive(Message& out, std::chrono::milliseconds timeout) override;
  std::string processor_name() const;

 private:
  struct Pending;
  void reap_sends(bool wait_all);
  int rank_ = 0, size_ = 1;
  void* comm_ = nullptr;  // MPI_Comm, kept opaque so this header needs no mpi.h
  std::vector<std::unique_ptr<Pending>> pending_;
};

// True when this process was started by mpirun/mpiexec/srun as part of an MPI job.
bool launched_by_mpi();

}  // namespace hpsweep
