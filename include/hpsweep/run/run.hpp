#pragma once
// `hpsweep run`: the whole pipeline on one rank of the job (master on rank 0, workers on the
// others), or on one process with in-process worker threads when there is no MPI launcher.
#include <string>

namespace hpsweep {

struct RunOptions {
  std::string job_path;
  std::string out_path;
  bool extend = false;
  bool retry_failed = false;
  int local_workers = 1;          // worker threads when running as a single process
  double fold_interval_s = 2.0;   // journal -> HDF5 fold period
  std::string progress = "auto";  // auto | tty | lines | none
  int prefetch = 2;
  std::string command_line;         // recorded in the launch table
  double grace_s = 60;              // after a stop signal, how long trials in flight may finish
  double drain_before_limit_s = 0;  // Slurm only: start draining this long before the time limit
};

// Exit codes, documented in README.
enum ExitCode : int {
  kExitOk = 0,
  kExitError = 1,
  kExitBadInput = 2,
  kExitStoreRefused = 3,
  kExitInterrupted = 4,  // stopped by a signal after draining; rerun the same command to resume
};

// Single process (no MPI launcher): master plus `local_workers` threads.
int run_local(const RunOptions& options);
// One rank of an MPI job; call from every rank between MPI init and finalize.
int run_mpi_rank(const RunOptions& options);

}  // namespace hpsweep
