#pragma once
// Where the workers of a launch live, decided once for `hpsweep run` and `hpsweep ingest`:
// threads of this process (no MPI launcher, `--workers N`), or the other ranks of an MPI job.
#include <functional>
#include <string>

#include "hpsweep/scheduler/comm.hpp"

namespace hpsweep {

struct WorkerPoolOptions {
  int local_workers = 1;  // worker threads when there is no MPI launcher (at least one)
  // An MPI job of one rank: run worker threads like without a launcher, or, when this is not
  // empty, refuse with this InputError message.
  std::string single_rank_error;
  // MPI worker ranks only, before they serve (e.g. ignore the signals the master handles).
  std::function<void()> prepare_worker_process;
};

// The master's side returns the process exit status; the worker's side serves until stopped.
using MasterSide = std::function<int(Comm&)>;
using WorkerSide = std::function<void(Comm& comm, const std::string& host)>;

// Runs `master` here and `worker` on every worker, then returns the master's exit status (0 on
// worker ranks). When `master` throws, the workers are told to leave (Tag::Abort) first, so an
// MPI job ends through MPI_Finalize. Under MPI an Error is printed and becomes this rank's exit
// status; any other exception aborts the whole job. Without MPI, exceptions propagate.
int run_with_workers(int& argc, char**& argv, const WorkerPoolOptions& options, const MasterSide& master,
                     const WorkerSide& worker);

}  // namespace hpsweep
