#include "hpsweep/backends/backend.hpp"

#include <map>

#include "hpsweep/backends/command.hpp"
#include "hpsweep/backends/mlp.hpp"
#include "hpsweep/backends/registry.hpp"
#include "hpsweep/backends/surrogate.hpp"
#include "hpsweep/spec/job.hpp"
#include "hpsweep/util/error.hpp"

namespace hpsweep {

const std::vector<BackendKind>& backend_kinds() {
  static const std::vector<BackendKind> kinds = {
      {"surrogate",
       true,
       {
           {"E", "1.69", true, "irreducible loss"},
           {"A", "406.4", true, "model-size term coefficient"},
           {"alpha", "0.34", true, "model-size exponent"},
           {"B", "410.7", true, "data term coefficient"},
           {"beta", "0.28", true, "data exponent"},
           {"lr_coef", "1.79", true, "lr* = lr_coef * N^lr_n_exp * D^lr_d_exp"},
           {"lr_n_exp", "-0.713", true, ""},
           {"lr_d_exp", "0.307", true, ""},
           {"batch_coef", "0.58", true, "B* (tokens) = batch_coef * D^batch_d_exp"},
           {"batch_d_exp", "0.571", true, ""},
           {"tau_coef", "1", true, "tau* = tau_coef * (D/N)^tau_exp, tau = B/(lr*wd*D)"},
           {"tau_exp", "-0.53", true, ""},
           {"lr_curvature", "0.01", true, "relative loss per (ln lr/lr*)^2"},
           {"lr_high_asymmetry", "1", true, "extra curvature above lr*"},
           {"batch_curvature", "0.006", true, "relative loss per (ln B/B*)^2"},
           {"wd_curvature", "0.004", true, "relative loss per (ln tau/tau*)^2"},
           {"diverge_factor", "8", true, "diverges above diverge_factor * lr* * sqrt(B/B*)"},
           {"noise", "0.001", true, "relative noise of the final loss"},
           {"fail_probability", "0", true, "fraction of trials that raise an error (tests)"},
           {"curve_points", "64", true, "points of the stored loss curve"},
           {"sleep_per_pflop", "0", false, "wall seconds per 1e15 FLOPs, to mimic uneven trial durations"},
       }},
      {"mlp", true, mlp_backend_options(), validate_mlp_options},
      {"command",
       true,
       {
           {"argv", "", true,
            "the training command; {lr} {batch} {wd} {params} {tokens} {seed} {trial_dir} ... are filled in", true},
           {"timeout", "0", false, "seconds before a trial is killed and recorded TIMEOUT (0: no limit)"},
           {"result", "stdout", false, "stdout (last JSON line) or file ({trial_dir}/metrics.json)", true},
       },
       [](const std::map<std::string, std::string>& o) {
         const CommandSettings s = CommandSettings::from_options(o, "/tmp");
         Trial probe;
         probe.point = TrialPoint{1e6, 1e8, 1e-3, 8, 128, 0.1, 0, ""};
         expand_argv(s.argv, probe, 0, "/tmp/probe");
       }},
  };
  return kinds;
}

const BackendKind* find_backend_kind(const std::string& name) {
  for (const auto& k : backend_kinds())
    if (k.name == name) return &k;
  return nullptr;
}

namespace {

std::unique_ptr<Backend> make_single_backend(const JobSpec& job, const std::map<std::string, std::string>& options,
                                             const std::string& trial_root) {
  if (job.backend_kind == "surrogate")
    return std::make_unique<SurrogateBackend>(SurrogateParams::from_options(options));
  if (job.backend_kind == "mlp") return make_mlp_backend(options, job.seed);
  if (job.backend_kind == "command")
    return std::make_unique<CommandBackend>(CommandSettings::from_options(options, trial_root), job.seed);
  throw InputError("backend '" + job.backend_kind + "' is not available in this version of hpsweep");
}

// A job with [variants]: one backend per variant, built the first time a trial of it arrives.
class VariantBackend : public Backend {
 public:
  VariantBackend(const JobSpec& job, std::string trial_root) : job_(job), trial_root_(std::move(trial_root)) {}
  TrialOutcome run(const Trial& trial) override {
    auto& slot = backends_[trial.point.variant];
    if (!slot) slot = make_single_backend(job_, job_.options_for(trial.point.variant), trial_root_);
    return slot->run(trial);
  }

 private:
  JobSpec job_;
  std::string trial_root_;
  std::map<std::string, std::unique_ptr<Backend>> backends_;
};

}  // namespace

std::unique_ptr<Backend> make_backend(const JobSpec& job, const std::string& trial_root) {
  if (!job.variants.empty()) return std::make_unique<VariantBackend>(job, trial_root);
  return make_single_backend(job, job.backend_options, trial_root);
}

}  // namespace hpsweep
