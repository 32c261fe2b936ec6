#include "hpsweep/backends/backend.hpp"

#include <atomic>
#include <map>

#include "hpsweep/backends/command.hpp"
#include "hpsweep/backends/lookup.hpp"
#include "hpsweep/backends/mlp.hpp"
#include "hpsweep/backends/surrogate.hpp"
#include "hpsweep/spec/job.hpp"
#include "hpsweep/util/error.hpp"

namespace hpsweep {

namespace {

// The checks of a kind's options as a whole; throws InputError without a location.
void check_options(const std::string& kind, const std::map<std::string, std::string>& options) {
  if (kind == "mlp") validate_mlp_options(options);
  if (kind == "lookup") LookupSettings::from_options(options);
  if (kind == "command") {
    const CommandSettings s = CommandSettings::from_options(options, "/tmp");
    Trial probe;
    probe.point = TrialPoint{1e6, 1e8, 1e-3, 8, 128, 0.1, 0, ""};
    expand_argv(s.argv, probe, 0, "/tmp/probe");
  }
}

void check_options_at(const std::string& kind, const std::map<std::string, std::string>& options,
                      const std::string& where) {
  try {
    check_options(kind, options);
  } catch (const InputError& err) {
    throw InputError(where + ": " + err.what());
  }
}

}  // namespace

void validate_backend_options(const JobSpec& job) {
  check_options_at(job.backend_kind, job.backend_options, job.path);
  for (const auto& v : job.variants) check_options_at(job.backend_kind, v.backend_options, v.where);
}

JobSpec load_valid_job(const std::string& path) {
  JobSpec job = load_job(path);
  validate_backend_options(job);
  return job;
}

std::string Placement::describe() const {
  auto list = [](const std::vector<std::string>& v) {
    std::string s;
    for (const auto& x : v) s += (s.empty() ? "" : ",") + x;
    return s;
  };
  if (hosts.size() <= 1) return list(devices);
  // Every node of a multi-node trial uses the same device ids as this one.
  std::string s;
  for (const auto& h : hosts) s += (s.empty() ? "" : " ") + h + ":" + list(devices);
  return s;
}

namespace {

std::unique_ptr<Backend> make_single_backend(const JobSpec& job, const std::map<std::string, std::string>& options,
                                             const std::string& trial_root) {
  if (job.backend_kind == "surrogate")
    return std::make_unique<SurrogateBackend>(SurrogateParams::from_options(options));
  if (job.backend_kind == "mlp") return make_mlp_backend(options, job.seed);
  if (job.backend_kind == "lookup") return std::make_unique<LookupBackend>(LookupSettings::from_options(options));
  if (job.backend_kind == "command")
    return std::make_unique<CommandBackend>(CommandSettings::from_options(options, trial_root), job.seed);
  throw InputError("backend '" + job.backend_kind + "' is not available in this version of hpsweep");
}

// A job with [variants]: one backend per variant, built the first time a trial of it arrives.
class VariantBackend : public Backend {
 public:
  VariantBackend(const JobSpec& job, std::string trial_root) : job_(job), trial_root_(std::move(trial_root)) {}
  TrialOutcome run(const Trial& trial) override { return run_placed(trial, Placement{}); }
  TrialOutcome run_placed(const Trial& trial, const Placement& placement) override {
    auto& slot = backends_[trial.point.variant];
    if (!slot) slot = make_single_backend(job_, job_.options_for(trial.point.variant), trial_root_);
    active_ = slot.get();
    return slot->run_placed(trial, placement);
  }
  // From the worker's message thread: the backend objects live as long as this one.
  void cancel() override {
    if (Backend* b = active_.load()) b->cancel();
  }

 private:
  JobSpec job_;
  std::string trial_root_;
  std::map<std::string, std::unique_ptr<Backend>> backends_;
  std::atomic<Backend*> active_{nullptr};
};

}  // namespace

std::unique_ptr<Backend> make_backend(const JobSpec& job, const std::string& trial_root) {
  if (!job.variants.empty()) return std::make_unique<VariantBackend>(job, trial_root);
  return make_single_backend(job, job.backend_options, trial_root);
}

}  // namespace hpsweep
