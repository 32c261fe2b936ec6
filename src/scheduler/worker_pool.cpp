#include "hpsweep/scheduler/worker_pool.hpp"

#include <algorithm>
#include <cstdio>
#include <exception>
#include <thread>
#include <vector>

#include "hpsweep/scheduler/master.hpp"
#include "hpsweep/util/error.hpp"
#include "hpsweep/util/exit_codes.hpp"
#include "hpsweep/util/text.hpp"

namespace hpsweep {

namespace {

int run_master_telling_workers_on_failure(Comm& comm, const MasterSide& master) {
  try {
    return master(comm);
  } catch (...) {
    stop_workers(comm, protocol::Tag::Abort);
    await_departures(comm, std::chrono::milliseconds(15000));
    throw;
  }
}

int run_on_threads(const WorkerPoolOptions& options, const MasterSide& master, const WorkerSide& worker) {
  LocalWorld world(1 + std::max(1, options.local_workers));
  const std::string host = host_name();
  std::vector<std::thread> threads;
  for (int r = 1; r < world.size(); ++r)
    threads.emplace_back([&world, r, &host, &worker] { worker(world.endpoint(r), host); });
  int code = kExitOk;
  std::exception_ptr failure;
  try {
    code = run_master_telling_workers_on_failure(world.endpoint(0), master);
  } catch (...) {
    failure = std::current_exception();
  }
  for (auto& t : threads) t.join();
  if (failure) std::rethrow_exception(failure);
  return code;
}

int run_on_mpi_ranks(const WorkerPoolOptions& options, const MasterSide& master, const WorkerSide& worker) {
  MpiComm comm;
  if (comm.size() == 1) {
    if (!options.single_rank_error.empty()) throw InputError(options.single_rank_error);
    return run_on_threads(options, master, worker);
  }
  if (comm.rank() == 0) return run_master_telling_workers_on_failure(comm, master);
  if (options.prepare_worker_process) options.prepare_worker_process();
  worker(comm, comm.processor_name());
  return kExitOk;
}

}  // namespace

int run_with_workers(int& argc, char**& argv, const WorkerPoolOptions& options, const MasterSide& master,
                     const WorkerSide& worker) {
  if (!launched_by_mpi()) return run_on_threads(options, master, worker);
  MpiEnvironment env(&argc, &argv);
  try {
    return run_on_mpi_ranks(options, master, worker);
  } catch (const Error& e) {
    // The workers have been told to leave: finish normally with the error's exit status.
    std::fprintf(stderr, "hpsweep: error: %s\n", e.what());
    std::fflush(stderr);
    return e.exit_code();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "hpsweep: error: %s\n", e.what());
    std::fflush(stderr);
    MpiEnvironment::abort(kExitError);
  }
}

}  // namespace hpsweep
