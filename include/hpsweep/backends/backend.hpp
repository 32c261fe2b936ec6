#pragma once
// A backend turns a trial into an outcome: a simulated run (surrogate), a real small network
// (mlp), the user's own training command (command). Workers own one backend.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "hpsweep/spec/job.hpp"
#include "hpsweep/trials/outcome.hpp"

namespace hpsweep {

// Where the scheduler placed a trial that asked for [resources]: its devices on this node and the
// nodes it spans (the first is this worker's). Empty when the job has no [resources].
struct Placement {
  std::vector<std::string> devices;  // this node's device ids (CUDA_VISIBLE_DEVICES entries)
  std::vector<std::string> hosts;    // every node of the trial, this one first
  int gpus = 0;                      // all nodes together
  int cpus = 0;                      // per node (0: not given)
  bool placed() const { return !hosts.empty(); }
  // "0,1" on one node; "host-a:0,1 host-b:0,1" on several (the store's `devices` column).
  std::string describe() const;
};

class Backend {
 public:
  virtual ~Backend() = default;
  // Runs one trial. Throwing marks the trial FAILED with the message; a non-finite or exploding
  // loss must be reported as DIVERGED in the outcome.
  virtual TrialOutcome run(const Trial& trial) = 0;
  // The same on the devices and nodes the scheduler gave it. Backends that start programs hand
  // them over (the command backend); the others run as above.
  virtual TrialOutcome run_placed(const Trial& trial, const Placement& placement) {
    (void)placement;
    return run(trial);
  }
  // Asks the trial running in run() (on another thread) to end now: the sweep is stopping and
  // the master has already recorded it LOST. run() then returns soon; its outcome is discarded.
  // Thread-safe; a no-op for backends whose trials are short.
  virtual void cancel() {}
  // The sweep's trials not yet finished, as the master counted them when it sent the next trial
  // (the mlp's threads = auto splits the cores by it). A hint; a no-op for most backends.
  virtual void note_trials_left(std::int64_t trials) { (void)trials; }
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
