#pragma once
// `hpsweep run`: the whole pipeline on one rank of the job (master on rank 0, workers on the
// others), or on one process with in-process worker threads when there is no MPI launcher.
#include <string>

#include "hpsweep/util/exit_codes.hpp"

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
  int gpus_per_node = 0;            // > 0: each worker's node has this many GPUs (else detected)
};

// Master on this process with `local_workers` worker threads when there is no MPI launcher;
// under mpirun/srun, call from every rank: the master on rank 0, workers on the others.
// Returns the exit status (kExitInterrupted after a drained stop).
int run_sweep(const RunOptions& options, int& argc, char**& argv);

}  // namespace hpsweep
