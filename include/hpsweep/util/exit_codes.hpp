#pragma once
// The process exit statuses of every hpsweep command, defined once (README "Exit status").
namespace hpsweep {

enum ExitCode : int {
  kExitOk = 0,
  kExitError = 1,         // internal or I/O error
  kExitBadInput = 2,      // invalid job or command line; nothing written
  kExitStoreRefused = 3,  // output file refused (not HDF5, different job, locked); not modified
  kExitInterrupted = 4,   // stopped by a signal after draining; rerun the same command to resume
};

}  // namespace hpsweep
