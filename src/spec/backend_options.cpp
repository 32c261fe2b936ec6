#include "hpsweep/spec/backend_options.hpp"

namespace hpsweep {

const std::vector<BackendOption>& mlp_backend_options() {
  static const std::vector<BackendOption> options = {
      // model
      {"width", "0", true,
       "hidden width; 0: derived from N at fixed depth, w = sqrt(N / (2 ffn_mult depth)) rounded to a multiple of 8"},
      {"depth", "4", true, "residual blocks"},
      {"ffn_mult", "4", true, "FFN width = ffn_mult * width"},
      {"activation", "gelu", true, "gelu (tanh form) or relu", true},
      // parametrization
      {"parametrization", "sp", true, "sp, mup or umup (per-group init, multipliers, lr and eps: see mlp.hpp)", true},
      {"base_width", "128", true, "width at which mup/umup equal the tuned base model (m = width / base_width)"},
      {"base_depth", "4", true, "depth of the base model (m_L = depth / base_depth)"},
      {"depth_alpha", "0", true,
       "residual branch multiplier m_L^-alpha; 0, or 0.5 (Depth-muP) to 1 (CompleteP); mup only"},
      {"input_mult", "1", true, "forward multiplier of the input projection (alpha_in)"},
      {"output_mult", "1", true,
       "forward multiplier of the logits (alpha_out; divided by m under mup, by width under umup)"},
      {"init_std", "1", true, "sigma: weights are N(0, sigma^2 / fan_in) (sp, mup) or N(0, sigma^2) (umup)"},
      {"output_init", "auto", true, "auto (zero under mup, normal otherwise), zero or normal", true},
      // optimizer
      {"beta1", "0.9", true, "Adam beta1"},
      {"beta2", "0.95", true, "Adam beta2"},
      {"eps", "1e-08", true, "Adam epsilon (scaled per group under mup)"},
      {"grad_clip", "0", true, "global gradient norm clip; 0: off"},
      {"wd_mode", "coupled", true,
       "coupled (p -= lr_t*wd*p, PyTorch AdamW), decoupled (p -= s_t*wd*p) or l2 (wd*p added to the gradient)", true},
      {"wd_width_rule", "none", true,
       "hidden-matrix weight decay times 1 (none), m (linear) or sqrt(m) (sqrt); mup, umup", true},
      // schedule
      {"schedule", "cosine", true,
       "cosine, wsd (constant then 1-sqrt cooldown) or constant (constant then linear cooldown)", true},
      {"warmup_frac", "0.05", true, "linear warmup, fraction of the steps"},
      {"decay_frac", "0.2", true, "wsd/constant: cooldown, fraction of the steps"},
      {"final_lr_frac", "0.1", true, "final lr as a fraction of the peak"},
      // task
      {"d_in", "64", true, "input dimension"},
      {"classes", "64", true, "output classes"},
      {"teacher_width", "256", true, "hidden units of the random teacher"},
      {"teacher_temp", "0.25", true, "teacher softmax temperature (lower: lower loss floor)"},
      {"spectrum_decay", "1", true, "input covariance spectrum s_i ~ (i+1)^-spectrum_decay"},
      {"eval_size", "4096", true, "held-out samples (shared by all trials)"},
      // run
      {"max_steps", "1e+05", true, "cap on the steps of one trial"},
      {"curve_points", "64", true, "points of the stored loss curve"},
      {"diverge_factor", "3", true, "DIVERGED when a step's loss exceeds diverge_factor x the first step's loss"},
      {"seeding", "trial", true,
       "trial (init and data from the trial id) or shared (from sweep seed and repeat: common random numbers)", true},
      {"fit_loss", "heldout", true,
       "what smooth_loss holds: heldout (final held-out loss) or curve (Step-Law smoothing of the curve)", true},
      {"threads", "1", false,
       "GEMM threads per trial: a whole number, or auto (the host's cores / the workers on it); not in the trial id "
       "(another count may change the last bits)",
       true},
  };
  return options;
}

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
      {"mlp", true, mlp_backend_options()},
      {"lookup",
       true,
       {
           {"file", "", false, "results CSV (read as `hpsweep ingest` reads it) or sweep .h5 answering the trials",
            true},
           {"map", "lr=lr,batch=bs,loss=smooth loss,final_loss=loss,params=N,tokens=D", false,
            "CSV columns, as `hpsweep ingest --map` (the default reads the released Step Law CSV)", true},
           {"batch_unit", "sequences", false, "sequences or tokens: the unit of the batch column", true},
           {"seq_len", "2048", false, "tokens per sequence when the table has no seq_len column"},
           {"diverged_ratio", "1.5", false, "DIVERGED above this times the cell's best loss, as `hpsweep ingest`"},
           {"tolerance", "0.001", false, "relative distance at which a grid point matches a table row"},
       }},
      {"command",
       true,
       {
           {"argv", "", true,
            "the training command; {lr} {batch} {wd} {params} {tokens} {seed} {trial_dir} ... are filled in", true},
           {"timeout", "0", false, "seconds before a trial is killed and recorded TIMEOUT (0: no limit)"},
           {"result", "stdout", false, "stdout (last JSON line) or file ({trial_dir}/metrics.json)", true},
       }},
  };
  return kinds;
}

const BackendKind* find_backend_kind(const std::string& name) {
  for (const auto& k : backend_kinds())
    if (k.name == name) return &k;
  return nullptr;
}

}  // namespace hpsweep
