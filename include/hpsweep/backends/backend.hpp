#pragma once
// A backend turns a trial into an outcome: a simulated run (surrogate), a real small network
// (mlp), the user's own training command (command). Workers own one backend.
#include <memory>
#include <string>

#include "hpsweep/spec/job.hpp"
#include "hpsweep/trials/outcome.hpp"

namespace hpsweep {

class Backend {
 public:
  virtual ~Backend() = default;
  // Runs one trial. Throwing marks the trial FAILED with the message; a non-finite or exploding
  // loss must be reported as DIVERGED in the outcome.
  virtual TrialOutcome run(const Trial& trial) = 0;
  // Asks the trial running in run() (on another thread) to end now: the sweep is stopping and
  // the master has already recorded it LOST. run() then returns soon; its outcome is discarded.
  // Thread-safe; a no-op for backends whose trials are short.
  virtual void cancel() {}
};

// `trial_root`: where backends that write files put one folder per trial (<sweep file>.trials).
// The checks parse_job() cannot make without the backends' code: the command template expands,
// the mlp settings parse (and their parametrization rules hold). InputError naming the file (and
// the [variants] line), as parse_job's own errors do.
void validate_backend_options(const JobSpec& job);
// load_job() and validate_backend_options(): every job file a user hands to hpsweep goes through it.
JobSpec load_valid_job(const std::string& path);

std::unique_ptr<Backend> make_backend(const JobSpec& job, const std::string& trial_root = "");

}  // namespace hpsweep
