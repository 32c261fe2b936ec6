#pragma once
// One error hierarchy for the whole tool. Every error carries the context a user needs to act
// on it (file and line of a job file, trial id, rank, HDF5 call) in its message.
#include <stdexcept>
#include <string>

#include "hpsweep/util/exit_codes.hpp"

namespace hpsweep {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
  // Process exit status the CLI uses when this error ends a command.
  virtual int exit_code() const noexcept { return kExitError; }
};

// The user's input (job file, command line) is invalid. Nothing has been written.
class InputError : public Error {
 public:
  using Error::Error;
  int exit_code() const noexcept override { return kExitBadInput; }
};

// The output file cannot be used for this run (different job, not HDF5, locked, ...).
// It has not been modified.
class StoreRefused : public Error {
 public:
  using Error::Error;
  int exit_code() const noexcept override { return kExitStoreRefused; }
};

// An HDF5 call failed; the message names the file, the object and the call.
class Hdf5Error : public Error {
 public:
  using Error::Error;
};

// Any communication failure between ranks.
class CommError : public Error {
 public:
  using Error::Error;
};

// errno-based failure of a system call on a named path.
[[noreturn]] void throw_system_error(const std::string& action, const std::string& path);

}  // namespace hpsweep
