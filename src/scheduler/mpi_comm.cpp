#include <mpi.h>

#include <chrono>
#include <thread>

#include "hpsweep/scheduler/comm.hpp"
#include "hpsweep/util/error.hpp"

namespace hpsweep {

namespace {
void check_mpi(int rc, const char* what) {
  if (rc == MPI_SUCCESS) return;
  char msg[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, msg, &len);
  throw CommError(std::string(what) + ": " + std::string(msg, static_cast<std::size_t>(len)));
}
MPI_Comm& as_comm(void*& p) { return *reinterpret_cast<MPI_Comm*>(&p); }
}  // namespace

MpiEnvironment::MpiEnvironment(int* argc, char*** argv) {
  int provided = 0;
  check_mpi(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
}

MpiEnvironment::~MpiEnvironment() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Finalize();
}

void MpiEnvironment::abort(int code) {
  MPI_Abort(MPI_COMM_WORLD, code);
  std::_Exit(code);
}

struct MpiComm::Pending {
  MPI_Request request = MPI_REQUEST_NULL;
  std::string buffer;
};

MpiComm::MpiComm() {
  static_assert(sizeof(MPI_Comm) <= sizeof(void*), "MPI_Comm must fit the opaque slot");
  MPI_Comm dup;
  check_mpi(MPI_Comm_dup(MPI_COMM_WORLD, &dup), "MPI_Comm_dup");
  as_comm(comm_) = dup;
  MPI_Comm_rank(dup, &rank_);
  MPI_Comm_size(dup, &size_);
}

MpiComm::~MpiComm() {
  // Sends still pending have a receiver that normally takes them within moments (the master
  // drains every message before it finalizes). Waiting without a bound would hang the rank if it
  // never does, so give up after a while and cancel what is left.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  try {
    while (!pending_.empty() && std::chrono::steady_clock::now() < deadline) {
      reap_sends(false);
      if (!pending_.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    for (auto& p : pending_) {
      MPI_Cancel(&p->request);
      MPI_Request_free(&p->request);
    }
    pending_.clear();
  } catch (...) {
  }
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Comm_free(&as_comm(comm_));
}

std::string MpiComm::processor_name() const {
  char name[MPI_MAX_PROCESSOR_NAME];
  int len = 0;
  MPI_Get_processor_name(name, &len);
  return std::string(name, static_cast<std::size_t>(len));
}

void MpiComm::send(int dest, int tag, std::string_view payload) {
  // Non-blocking so the master never waits on one worker; buffers live until the send completes.
  auto p = std::make_unique<Pending>();
  p->buffer.assign(payload);
  check_mpi(
      MPI_Isend(p->buffer.data(), static_cast<int>(p->buffer.size()), MPI_BYTE, dest, tag, as_comm(comm_), &p->request),
      "MPI_Isend");
  pending_.push_back(std::move(p));
  if (pending_.size() > 64) reap_sends(false);
}

void MpiComm::reap_sends(bool wait_all) {
  std::size_t keep = 0;
  for (auto& p : pending_) {
    int done = 0;
    if (wait_all) {
      MPI_Wait(&p->request, MPI_STATUS_IGNORE);
      done = 1;
    } else {
      MPI_Test(&p->request, &done, MPI_STATUS_IGNORE);
    }
    if (!done) pending_[keep++] = std::move(p);
  }
  pending_.resize(keep);
}

bool MpiComm::try_receive(Message& out) {
  int flag = 0;
  MPI_Status status;
  check_mpi(MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, as_comm(comm_), &flag, &status), "MPI_Iprobe");
  if (!flag) return false;
  int count = 0;
  MPI_Get_count(&status, MPI_BYTE, &count);
  out.source = status.MPI_SOURCE;
  out.tag = status.MPI_TAG;
  out.payload.resize(static_cast<std::size_t>(count));
  check_mpi(MPI_Recv(out.payload.data(), count, MPI_BYTE, status.MPI_SOURCE, status.MPI_TAG, as_comm(comm_),
                     MPI_STATUS_IGNORE),
            "MPI_Recv");
  return true;
}

bool MpiComm::receive(Message& out, std::chrono::milliseconds timeout) {
  // Open MPI's blocking receive spins a core; ranks are often oversubscribed, so poll with a
  // backoff that starts fast (low latency under load) and settles at 0.5 ms (near-zero CPU idle).
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  auto pause = std::chrono::microseconds(0);
  int spins = 0;
  while (true) {
    if (try_receive(out)) return true;
    if (!pending_.empty()) reap_sends(false);
    if (std::chrono::steady_clock::now() >= deadline) return false;
    if (++spins > 32) {
      pause = std::min(std::chrono::microseconds(500), pause + std::chrono::microseconds(10) + pause / 2);
      std::this_thread::sleep_for(pause);
    }
  }
}

}  // namespace hpsweep
