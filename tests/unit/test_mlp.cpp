#include <gtest/gtest.h>
#include <sched.h>

#include <cmath>
#include <cstdlib>
#include <limits>
#include <random>
#include <set>

#include "backends/mlp/kernels.hpp"
#include "hpsweep/backends/mlp.hpp"
#include "hpsweep/parametrization/rules.hpp"
#include "hpsweep/spec/job.hpp"
#include "hpsweep/transfer/coordcheck.hpp"
#include "hpsweep/transfer/format.hpp"
#include "hpsweep/trials/smoothing.hpp"
#include "hpsweep/util/error.hpp"
#include "hpsweep/util/text.hpp"

using namespace hpsweep;

namespace {

using Options = std::map<std::string, std::string>;

Trial trial(double lr, std::int64_t batch, std::int64_t steps, std::uint64_t id = 11, double wd = 0.0, double n = 0) {
  Trial t;
  t.id = id;
  t.point = TrialPoint{n, static_cast<double>(batch * steps), lr, batch, 1, wd, 0};
  return t;
}

const AppliedGroup& group(const std::vector<AppliedGroup>& groups, const std::string& name) {
  for (const auto& g : groups)
    if (g.name == name) return g;
  throw std::runtime_error("no group " + name);
}

// ---------------------------------------------------------------------------------------------
// Gradient check, double precision, every layer type, every parametrization and activation.
// ---------------------------------------------------------------------------------------------

struct GradCase {
  const char* parametrization;
  const char* activation;
};

class MlpGradientCheck : public ::testing::TestWithParam<GradCase> {};

TEST_P(MlpGradientCheck, EveryLayerTypeMatchesCentralFiniteDifferences) {
  // Non-trivial multipliers everywhere: width != base width, and under mup the residual
  // multiplier m_L^-1 = 2/3 (depth_alpha is a μP rule).
  const bool mup = std::string(GetParam().parametrization) == "mup";
  const MlpSettings s = MlpSettings::from_options({{"parametrization", GetParam().parametrization},
                                                   {"activation", GetParam().activation},
                                                   {"base_width", "8"},
                                                   {"depth_alpha", mup ? "1" : "0"},
                                                   {"base_depth", "2"},
                                                   {"input_mult", "2"},
                                                   {"output_mult", "3"}});
  const MlpShape shape{5, 16, 24, 3, 7};
  MlpProbe probe(s, shape, 3);
  std::mt19937_64 rng(1);
  auto normal = [&] {  // Box-Muller: std::normal_distribution is implementation-defined
    const double u1 = (static_cast<double>(rng() >> 11) + 0.5) * 0x1.0p-53,
                 u2 = static_cast<double>(rng() >> 11) * 0x1.0p-53;
    return std::sqrt(-2 * std::log(u1)) * std::cos(2 * M_PI * u2);
  };
  // Move away from the init (zero readout, unit gains) so every gradient is non-zero.
  for (std::size_t t = 0; t < probe.tensors().size(); ++t)
    for (std::size_t i = 0; i < probe.tensors()[t].size; ++i) probe.value(t, i) += 0.3 * normal();
  const int n = 6;
  std::vector<double> x(static_cast<std::size_t>(shape.d_in * n));
  for (auto& v : x) v = normal();
  std::vector<int> labels(n);
  for (auto& y : labels) y = static_cast<int>(rng() % static_cast<std::uint64_t>(shape.classes));
  probe.loss(x, labels, true);

  std::map<std::string, double> worst;  // per group: max |fd - analytic| / max |analytic|
  for (std::size_t t = 0; t < probe.tensors().size(); ++t) {
    const auto& tensor = probe.tensors()[t];
    double max_err = 0, max_grad = 0;
    std::vector<double> analytic(tensor.size);
    for (std::size_t i = 0; i < tensor.size; ++i) analytic[i] = probe.gradient(t, i);
    for (std::size_t i = 0; i < tensor.size; ++i) {
      double& v = probe.value(t, i);
      const double orig = v, h = 1e-6;
      v = orig + h;
      const double up = probe.loss(x, labels, false);
      v = orig - h;
      const double down = probe.loss(x, labels, false);
      v = orig;
      max_err = std::max(max_err, std::abs((up - down) / (2 * h) - analytic[i]));
      max_grad = std::max(max_grad, std::abs(analytic[i]));
    }
    ASSERT_GT(max_grad, 1e-6) << tensor.name;
    worst[tensor.group] = std::max(worst[tensor.group], max_err / max_grad);
  }
  const std::set<std::string> expected = {"input", "hidden.w1", "hidden.w2", "hidden.norm", "final_norm", "output"};
  for (const auto& g : expected) {
    ASSERT_TRUE(worst.count(g)) << g;
    EXPECT_LT(worst[g], 1e-6) << g;
  }
}

INSTANTIATE_TEST_SUITE_P(MlpGradientCheck, MlpGradientCheck,
                         ::testing::Values(GradCase{"sp", "gelu"}, GradCase{"sp", "relu"}, GradCase{"mup", "gelu"},
                                           GradCase{"mup", "relu"}, GradCase{"umup", "gelu"}, GradCase{"umup", "relu"}),
                         [](const auto& info) {
                           return std::string(info.param.parametrization) + "_" + info.param.activation;
                         });

// ---------------------------------------------------------------------------------------------
// Training runs.
// ---------------------------------------------------------------------------------------------

const Options kSmall = {{"width", "32"}, {"depth", "2"}};

TEST(MlpTraining, SameTrialGivesBitIdenticalLossAndCurve) {
  MlpBackend a(MlpSettings::from_options(kSmall), 5);
  MlpBackend b(MlpSettings::from_options(kSmall), 5);
  const Trial t = trial(4e-3, 32, 120);
  const TrialOutcome x = a.run(t), y = a.run(t), z = b.run(t);
  ASSERT_EQ(x.state, TrialState::Done);
  EXPECT_EQ(x.final_loss, y.final_loss);
  EXPECT_EQ(x.curve.loss, y.curve.loss);
  EXPECT_EQ(x.curve.step, y.curve.step);
  EXPECT_EQ(x.final_loss, z.final_loss);  // a fresh backend object gives the same too
  Trial other = t;
  other.id = 12;
  EXPECT_NE(a.run(other).final_loss, x.final_loss);  // seeding = trial: another id, another init and data
}

TEST(MlpTraining, WithTwoGemmThreadsTheSameTrialIsStillBitIdenticalAndAgreesWithOneThread) {
  // Width 400: OpenBLAS splits these GEMMs between threads (and the sums' blocking with them,
  // so one and two threads may differ in the last bits; each is deterministic on its own).
  Options one = {{"width", "400"}, {"depth", "1"}, {"eval_size", "64"}}, two = one, automatic = one;
  two["threads"] = "2";
  automatic["threads"] = "auto";
  EXPECT_EQ(MlpSettings::from_options(automatic).threads, 0);
  EXPECT_GE(mlp_auto_threads(), 1);
  const Trial t = trial(2e-3, 64, 6);
  MlpBackend a(MlpSettings::from_options(one), 5), b(MlpSettings::from_options(two), 5),
      c(MlpSettings::from_options(automatic), 5);
  const TrialOutcome x = a.run(t), again = a.run(t), y = b.run(t), y_again = b.run(t), z = c.run(t);
  ASSERT_EQ(x.state, TrialState::Done);
  ASSERT_EQ(y.state, TrialState::Done);
  EXPECT_EQ(x.curve.loss, again.curve.loss);
  EXPECT_EQ(x.final_loss, again.final_loss);
  EXPECT_EQ(y.curve.loss, y_again.curve.loss);
  EXPECT_EQ(y.final_loss, y_again.final_loss);
  EXPECT_NEAR(x.final_loss, y.final_loss, 1e-5 * x.final_loss);
  EXPECT_NEAR(x.final_loss, z.final_loss, 1e-5 * x.final_loss);
  EXPECT_THROW(MlpSettings::from_options({{"threads", "0"}}), InputError);
  EXPECT_THROW(MlpSettings::from_options({{"threads", "many"}}), InputError);
}

TEST(MlpTraining, AutoThreadsSplitTheCoresBetweenTheTrialsThatCanRunAtOnce) {
  if (std::getenv("OMPI_COMM_WORLD_LOCAL_SIZE") || std::getenv("SLURM_STEP_TASKS_PER_NODE"))
    GTEST_SKIP() << "run under a launcher: workers per host come from its environment";
  cpu_set_t set;
  ASSERT_EQ(sched_getaffinity(0, sizeof(set), &set), 0);
  const int cores = CPU_COUNT(&set);
  // Two workers in this process (two backends), as `hpsweep run --workers 2`.
  MlpBackend a(MlpSettings::from_options(kSmall), 5), b(MlpSettings::from_options(kSmall), 5);
  EXPECT_EQ(mlp_auto_threads(), std::max(1, cores / 2));
  EXPECT_EQ(mlp_auto_threads(5), std::max(1, cores / 2));  // more trials left than workers
  EXPECT_EQ(mlp_auto_threads(1), cores);                   // the last trial gets every core
  // What `hpsweep run` knows in this process: trials left, counted down as trials end here.
  mlp_set_trials_left(2);
  EXPECT_EQ(mlp_auto_threads(), std::max(1, cores / 2));
  const TrialOutcome done = a.run(trial(4e-3, 32, 4));
  ASSERT_EQ(done.state, TrialState::Done);
  EXPECT_EQ(mlp_auto_threads(), cores);
  EXPECT_EQ(mlp_auto_threads(7), cores);  // the smaller bound wins
  mlp_set_trials_left(0);
  EXPECT_EQ(mlp_auto_threads(), std::max(1, cores / 2));
}

TEST(MlpTraining, UpdatingInsideTheBackwardPassEqualsUpdatingAfterItAsClippingDoes) {
  // grad_clip > 0 takes the other path: every gradient first (one buffer per block), then the
  // update; without clipping each tensor is updated inside the backward pass (shared buffers).
  // A clip no gradient reaches changes nothing, so both paths must agree bit for bit.
  Options never = kSmall, tight = kSmall;
  never["grad_clip"] = "1e30";
  tight["grad_clip"] = "1e-3";
  const Trial t = trial(4e-3, 32, 60);
  const TrialOutcome inside = MlpBackend(MlpSettings::from_options(kSmall), 5).run(t);
  const TrialOutcome after = MlpBackend(MlpSettings::from_options(never), 5).run(t);
  const TrialOutcome clipped = MlpBackend(MlpSettings::from_options(tight), 5).run(t);
  ASSERT_EQ(inside.state, TrialState::Done);
  EXPECT_EQ(inside.curve.loss, after.curve.loss);
  EXPECT_EQ(inside.final_loss, after.final_loss);
  EXPECT_NE(inside.final_loss, clipped.final_loss);
}

TEST(MlpTraining, SharedSeedingGivesEveryTrialOfARepeatTheSameInitAndData) {
  Options o = kSmall;
  o["seeding"] = "shared";
  MlpBackend b(MlpSettings::from_options(o), 5);
  const Trial t = trial(4e-3, 32, 60, 1);
  Trial same_point_other_id = t;
  same_point_other_id.id = 99;
  EXPECT_EQ(b.run(t).final_loss, b.run(same_point_other_id).final_loss);
  Trial other_repeat = t;
  other_repeat.point.repeat = 1;
  EXPECT_NE(b.run(t).final_loss, b.run(other_repeat).final_loss);
  // The task (teacher, held-out set) follows the sweep seed.
  MlpBackend other_sweep(MlpSettings::from_options(o), 6);
  EXPECT_NE(b.task_floor(), other_sweep.task_floor());
}

TEST(MlpTraining, TrainingReducesTheHeldOutLossTowardsTheTaskFloor) {
  MlpBackend b(MlpSettings::from_options({{"width", "64"}, {"depth", "2"}}), 1);
  const double chance = std::log(64.0);
  EXPECT_GT(b.task_floor(), 0.5);
  EXPECT_LT(b.task_floor(), chance - 0.5);
  const TrialOutcome out = b.run(trial(8e-3, 64, 400));
  ASSERT_EQ(out.state, TrialState::Done) << out.error;
  EXPECT_EQ(out.steps, 400);
  EXPECT_LT(out.final_loss, chance - 0.6);
  EXPECT_GT(out.final_loss, b.task_floor());
  EXPECT_EQ(out.smooth_loss, out.final_loss);  // fit_loss = heldout
  ASSERT_EQ(out.curve.step.size(), 64u);
  EXPECT_EQ(out.curve.step.back(), 400);
  EXPECT_LT(out.curve.loss.back(), out.curve.loss.front() - 0.8);
  EXPECT_NEAR(out.curve.loss.back(), out.final_loss, 0.15);  // fresh-batch and held-out estimates agree
}

TEST(MlpTraining, FitLossCurveStoresTheStepLawSmoothedCurve) {
  Options o = kSmall;
  o["fit_loss"] = "curve";
  o["curve_points"] = "20";
  MlpBackend b(MlpSettings::from_options(o), 1);
  const TrialOutcome out = b.run(trial(4e-3, 32, 100));
  ASSERT_EQ(out.curve.step.size(), 20u);
  EXPECT_EQ(out.smooth_loss, smoothed_final_loss(out.curve.step, out.curve.loss));
  EXPECT_NE(out.smooth_loss, out.final_loss);
}

TEST(MlpTraining, TooHighLearningRateIsReportedDiverged) {
  MlpBackend b(MlpSettings::from_options(kSmall), 1);
  const TrialOutcome out = b.run(trial(3.0, 32, 200));
  EXPECT_EQ(out.state, TrialState::Diverged);
  EXPECT_NE(out.error.find("diverged"), std::string::npos) << out.error;
  EXPECT_LT(out.steps, 200);  // stopped where it blew up
  EXPECT_FALSE(out.curve.step.empty());
  EXPECT_EQ(out.curve.step.back(), out.steps);
  // A sane learning rate on the same trial does not.
  EXPECT_EQ(b.run(trial(3e-3, 32, 200)).state, TrialState::Done);
}

TEST(MlpTraining, WeightDecayModesAgreeWithoutDecayAndDifferWithIt) {
  std::map<std::string, double> with_decay;
  double without = 0;
  for (const char* mode : {"coupled", "decoupled", "l2"}) {
    Options o = kSmall;
    o["wd_mode"] = mode;
    MlpBackend b(MlpSettings::from_options(o), 1);
    const double zero = b.run(trial(4e-3, 32, 60, 11, 0.0)).final_loss;
    if (without == 0) without = zero;
    EXPECT_EQ(zero, without) << mode;
    with_decay[mode] = b.run(trial(4e-3, 32, 60, 11, 0.5)).final_loss;
    EXPECT_NE(with_decay[mode], without) << mode;
  }
  EXPECT_NE(with_decay["coupled"], with_decay["decoupled"]);
  EXPECT_NE(with_decay["coupled"], with_decay["l2"]);
}

TEST(MlpTraining, MaxStepsCapsTheTrialsSteps) {
  Options o = kSmall;
  o["max_steps"] = "25";
  MlpBackend b(MlpSettings::from_options(o), 1);
  const TrialOutcome out = b.run(trial(4e-3, 16, 1000));
  EXPECT_EQ(out.steps, 25);
  EXPECT_EQ(out.curve.step.back(), 25);
}

// ---------------------------------------------------------------------------------------------
// μP transfer, measured: the best learning rate over a grid at widths 16 and 64.
// ---------------------------------------------------------------------------------------------

// log2 of the best lr, refined by a parabola through the best grid point and its neighbours.
double best_log2_lr(const std::map<std::string, std::string>& options, std::int64_t width) {
  Options o = options;
  o["width"] = std::to_string(width);
  MlpBackend b(MlpSettings::from_options(o), 1);
  std::vector<double> e, loss;
  for (double x = -10; x <= -3; x += 1) {
    const TrialOutcome out = b.run(trial(std::exp2(x), 32, 200));
    e.push_back(x);
    loss.push_back(out.state == TrialState::Done ? out.final_loss : 1e9);
  }
  const std::size_t i = static_cast<std::size_t>(std::min_element(loss.begin(), loss.end()) - loss.begin());
  if (i == 0 || i + 1 == loss.size()) return e[i];
  const double a = loss[i - 1], c = loss[i], d = loss[i + 1];
  return e[i] + 0.5 * (a - d) / (a - 2 * c + d);
}

TEST(MlpTransfer, BestLearningRateMovesWithWidthUnderSpButNotUnderMup) {
  const Options base = {{"depth", "2"}, {"base_width", "16"}, {"seeding", "shared"}};
  Options mup = base;
  mup["parametrization"] = "mup";
  const double sp_shift = best_log2_lr(base, 64) - best_log2_lr(base, 16);
  const double mup_shift = best_log2_lr(mup, 64) - best_log2_lr(mup, 16);
  // Width x4: SP's optimum drops ~2 octaves (lr ∝ 1/width for hidden layers under Adam), μP's stays.
  EXPECT_LT(sp_shift, -1.0);
  EXPECT_LT(std::abs(mup_shift), 0.6);
  EXPECT_LT(std::abs(mup_shift) + 0.8, std::abs(sp_shift));
}

// ---------------------------------------------------------------------------------------------
// Per-group tables.
// ---------------------------------------------------------------------------------------------

std::vector<AppliedGroup> groups_at(Options o, std::int64_t width, double lr = 1e-2, double wd = 0.1) {
  o["width"] = std::to_string(width);
  return applied_hyperparameters(trial(lr, 32, 10, 1, wd), o);
}

TEST(MlpParametrization, SpGivesEveryGroupThePeakLrAndFanInInit) {
  const auto g = groups_at({}, 256);
  for (const auto& x : g) {
    EXPECT_EQ(x.lr, 1e-2) << x.name;
    EXPECT_EQ(x.eps, 1e-8) << x.name;
  }
  EXPECT_DOUBLE_EQ(group(g, "hidden.w1").init_std, 1 / std::sqrt(256.0));
  EXPECT_DOUBLE_EQ(group(g, "hidden.w2").init_std, 1 / std::sqrt(1024.0));
  EXPECT_DOUBLE_EQ(group(g, "output").init_std, 1 / std::sqrt(256.0));
  EXPECT_EQ(group(g, "output").multiplier, 1.0);
  EXPECT_EQ(group(g, "hidden.norm").wd, 0.0);
  EXPECT_EQ(group(g, "final_norm").wd, 0.0);
  EXPECT_EQ(group(g, "hidden.w1").wd, 0.1);
  EXPECT_EQ(group(g, "hidden.norm").init_mean, 1.0);
  EXPECT_EQ(group(g, "hidden.w1").params, 4 * 256 * 1024);
}

TEST(MlpParametrization, MupHiddenLrAndEpsScaleAsOneOverWidthReadoutMultiplierToo) {
  const Options mup = {{"parametrization", "mup"}, {"base_width", "128"}};
  const auto base = groups_at(mup, 128), wide = groups_at(mup, 512);  // m = 1 and m = 4
  for (const char* name : {"hidden.w1", "hidden.w2"}) {
    EXPECT_DOUBLE_EQ(group(base, name).lr / group(wide, name).lr, 4.0) << name;
    EXPECT_DOUBLE_EQ(group(base, name).eps / group(wide, name).eps, 4.0) << name;
    EXPECT_DOUBLE_EQ(group(base, name).init_std / group(wide, name).init_std, 2.0) << name;  // variance σ²/m
  }
  for (const char* name : {"input", "output", "hidden.norm", "final_norm"})
    EXPECT_EQ(group(base, name).lr, group(wide, name).lr) << name;
  EXPECT_DOUBLE_EQ(group(base, "output").multiplier / group(wide, "output").multiplier, 4.0);
  EXPECT_DOUBLE_EQ(group(base, "output").eps / group(wide, "output").eps, 4.0);
  EXPECT_DOUBLE_EQ(group(base, "input").eps / group(wide, "input").eps, 4.0);
  EXPECT_EQ(group(wide, "output").init_std, 0.0);  // zero readout (output_init = auto)
  EXPECT_EQ(group(base, "input").init_std, group(wide, "input").init_std);
  // At the base width μP is SP apart from the readout init.
  const auto sp = groups_at({}, 128);
  EXPECT_EQ(group(base, "hidden.w1").lr, group(sp, "hidden.w1").lr);
  Options normal_out = mup;
  normal_out["output_init"] = "normal";
  EXPECT_DOUBLE_EQ(group(groups_at(normal_out, 512), "output").init_std, 1 / std::sqrt(128.0));  // constant in m
}

TEST(MlpParametrization, UmupUsesUnitInitFanInLrAndOneOverSqrtDepthForResidualBranches) {
  const auto g = groups_at({{"parametrization", "umup"}, {"depth", "4"}}, 256);
  for (const auto& x : g) {
    if (x.name != "hidden.norm" && x.name != "final_norm") {
      EXPECT_EQ(x.init_std, 1.0) << x.name;
    }
  }
  EXPECT_DOUBLE_EQ(group(g, "hidden.w1").lr, 1e-2 / std::sqrt(256.0) / 2.0);
  EXPECT_DOUBLE_EQ(group(g, "hidden.w2").lr, 1e-2 / std::sqrt(1024.0) / 2.0);
  EXPECT_DOUBLE_EQ(group(g, "hidden.norm").lr, 1e-2 / 2.0);
  EXPECT_DOUBLE_EQ(group(g, "input").lr, 1e-2 / std::sqrt(64.0));
  EXPECT_EQ(group(g, "output").lr, 1e-2);
  EXPECT_EQ(group(g, "final_norm").lr, 1e-2);
  EXPECT_DOUBLE_EQ(group(g, "hidden.w1").multiplier, 1 / std::sqrt(256.0));
  EXPECT_DOUBLE_EQ(group(g, "output").multiplier, 1 / 256.0);
}

TEST(MlpParametrization, DepthAlphaScalesResidualBranchLrAndEpsAsCompleteP) {
  auto json_residual = [](const Options& o) {
    const std::string j = applied_hyperparameters_json(trial(1e-2, 32, 10), o);
    const auto at = j.find("\"residual_mult\":");
    return std::stod(j.substr(at + 16));
  };
  const Options mup = {{"parametrization", "mup"}, {"base_depth", "4"}, {"depth", "16"}, {"width", "128"}};
  Options complete = mup, depth_mup = mup;
  complete["depth_alpha"] = "1";
  depth_mup["depth_alpha"] = "0.5";
  const auto base = applied_hyperparameters(trial(1e-2, 32, 10), mup);
  const auto c = applied_hyperparameters(trial(1e-2, 32, 10), complete);
  const auto d = applied_hyperparameters(trial(1e-2, 32, 10), depth_mup);
  EXPECT_EQ(json_residual(mup), 1.0);
  EXPECT_EQ(json_residual(complete), 0.25);  // m_L = 4, m_L^-1
  EXPECT_EQ(json_residual(depth_mup), 0.5);
  // CompleteP (α = 1): hidden lr × m_L^0, eps / m_L; Depth-μP (α = ½): lr × m_L^-½, eps / m_L^½.
  EXPECT_DOUBLE_EQ(group(c, "hidden.w1").lr, group(base, "hidden.w1").lr);
  EXPECT_DOUBLE_EQ(group(c, "hidden.w1").eps, group(base, "hidden.w1").eps / 4);
  EXPECT_DOUBLE_EQ(group(d, "hidden.w2").lr, group(base, "hidden.w2").lr / 2);
  EXPECT_DOUBLE_EQ(group(d, "hidden.norm").lr, group(base, "hidden.norm").lr / 2);
  EXPECT_DOUBLE_EQ(group(d, "hidden.w2").eps, group(base, "hidden.w2").eps / 2);
  EXPECT_EQ(group(d, "final_norm").lr, group(base, "final_norm").lr);
  EXPECT_EQ(group(d, "input").lr, group(base, "input").lr);
}

TEST(MlpParametrization, WeightDecayWidthRuleScalesHiddenMatricesOnly) {
  for (const auto& [rule, factor] :
       std::vector<std::pair<std::string, double>>{{"none", 1}, {"linear", 4}, {"sqrt", 2}}) {
    const auto g = groups_at({{"parametrization", "mup"}, {"base_width", "64"}, {"wd_width_rule", rule}}, 256);
    EXPECT_DOUBLE_EQ(group(g, "hidden.w1").wd, 0.1 * factor) << rule;
    EXPECT_DOUBLE_EQ(group(g, "hidden.w2").wd, 0.1 * factor) << rule;
    EXPECT_EQ(group(g, "input").wd, 0.1) << rule;
    EXPECT_EQ(group(g, "output").wd, 0.1) << rule;
    EXPECT_EQ(group(g, "hidden.norm").wd, 0.0) << rule;
  }
}

TEST(MlpParametrization, EveryGroupAppliesWhatHpsweepTransferPrintsForTheTrialsShape) {
  // The proxy `hpsweep transfer` is asked about, spelled out here rather than taken from the
  // backend: base 128 x 4 (d_ffn 512), the trial's lr and wd, the [mlp] init_std, eps and
  // multipliers, undecayed norm gains, a dense input layer. Under SP the proxy is the trial itself.
  const double lr = 3e-3, wd = 0.05, sigma = 0.5, eps = 1e-6, alpha_in = 2, alpha_out = 3;
  const std::vector<std::pair<const char*, const char*>> pairs = {
      {"input", "input/embedding"},        {"hidden.w1", "hidden matrices"}, {"hidden.w2", "FFN down-projection"},
      {"hidden.norm", "norms and biases"}, {"final_norm", "final norm"},     {"output", "output/unembedding"}};
  int compared = 0;
  for (Parametrization p : {Parametrization::SP, Parametrization::MuP, Parametrization::UMuP})
    for (const std::int64_t width : {32, 128, 200, 512, 1024})
      for (const std::int64_t depth : {4, 12}) {
        const bool sp = p == Parametrization::SP, umup = p == Parametrization::UMuP;
        SCOPED_TRACE(std::string(to_string(p)) + " width " + std::to_string(width) + " depth " + std::to_string(depth));
        TransferOptions rules;
        rules.param = p;
        rules.wd_rule = sp ? WdRule::Unchanged : umup ? WdRule::Sqrt : WdRule::Linear;
        rules.depth_alpha = p == Parametrization::MuP ? 1 : 0;
        const Options o = {{"parametrization", to_string(p)},
                           {"width", std::to_string(width)},
                           {"depth", std::to_string(depth)},
                           {"base_width", "128"},
                           {"base_depth", "4"},
                           {"wd_width_rule", to_string(rules.wd_rule)},
                           {"depth_alpha", format_double(rules.depth_alpha)},
                           {"init_std", format_double(sigma)},
                           {"eps", format_double(eps)},
                           {"input_mult", format_double(alpha_in)},
                           {"output_mult", format_double(alpha_out)},
                           {"output_init", "normal"}};
        BaseModel base;
        base.width = sp ? static_cast<double>(width) : 128;
        base.depth = sp ? static_cast<double>(depth) : 4;
        base.ffn_width = 4 * base.width;
        base.lr = lr;
        base.wd = wd;
        base.norm_bias_wd = 0;
        base.init_std = sigma;
        base.eps = eps;
        base.input_multiplier = alpha_in;
        base.output_multiplier = alpha_out;
        base.input_is_embedding = false;
        TargetModel target;
        target.width = static_cast<double>(width);
        target.depth = static_cast<double>(depth);
        const TransferTable table = transfer(base, target, rules);
        const MlpSettings settings = MlpSettings::from_options(o);
        const Trial t = trial(lr, 32, 10, 1, wd);
        // The backend asks transfer() exactly this question: the printed tables are identical.
        EXPECT_EQ(format_transfer(mlp_transfer_table(settings, mlp_shape(t.point, settings), lr, wd)),
                  format_transfer(table));

        const auto applied = applied_hyperparameters(t, o);
        const double w = static_cast<double>(width), f = 4 * w, L = static_cast<double>(depth), d_in = 64;
        for (const auto& [mlp_name, rule_name] : pairs) {
          SCOPED_TRACE(mlp_name);
          const AppliedGroup& g = group(applied, mlp_name);
          const GroupValues& v = table.find_group(rule_name)->target;
          const std::string n = mlp_name;
          const bool gain = n == "hidden.norm" || n == "final_norm";
          EXPECT_EQ(g.wd, v.weight_decay);
          EXPECT_EQ(g.eps, v.adam_eps);
          // Init: σ relative to 1/√fan_in at the proxy's shape (sp, mup), u-μP's unit init times σ.
          const double fan_in = n == "input" ? d_in : n == "hidden.w2" ? base.ffn_width : base.width;
          if (gain) {
            EXPECT_EQ(g.init_std, 0.0);
            EXPECT_EQ(g.init_mean, 1.0);
          } else {
            EXPECT_DOUBLE_EQ(g.init_std, umup ? v.init_std * sigma : v.init_std / std::sqrt(fan_in));
          }
          // Forward multipliers: u-μP's ops apply 1/√fan_in (readout 1/fan_in) of the trial's shape.
          const double op = !umup || gain      ? 1
                            : n == "input"     ? 1 / std::sqrt(d_in)
                            : n == "hidden.w1" ? 1 / std::sqrt(w)
                            : n == "hidden.w2" ? 1 / std::sqrt(f)
                                               : 1 / w;
          EXPECT_DOUBLE_EQ(g.multiplier, v.forward_multiplier * op);
          // Adam lr: exactly the table's under sp and mup; u-μP's optimizer adds its own
          // fan_in^-1/2 and depth^-1/2, which at the trial's shape is η/(√fan_in·√L).
          if (!umup) {
            EXPECT_EQ(g.lr, v.adam_lr);
          } else {
            const double expected = n == "input"         ? lr / std::sqrt(d_in)
                                    : n == "hidden.w1"   ? lr / std::sqrt(w) / std::sqrt(L)
                                    : n == "hidden.w2"   ? lr / std::sqrt(f) / std::sqrt(L)
                                    : n == "hidden.norm" ? lr / std::sqrt(L)
                                                         : lr;
            EXPECT_DOUBLE_EQ(g.lr, expected);
            const double at_proxy = n == "input"         ? 1 / std::sqrt(d_in)
                                    : n == "hidden.w1"   ? 1 / std::sqrt(128.0 * 4)
                                    : n == "hidden.w2"   ? 1 / std::sqrt(512.0 * 4)
                                    : n == "hidden.norm" ? 1 / std::sqrt(4.0)
                                                         : 1;
            EXPECT_DOUBLE_EQ(g.lr, v.adam_lr * at_proxy);
          }
          ++compared;
        }
        const std::string j = applied_hyperparameters_json(t, o);
        const double residual = table.find_group("residual branches")->target.forward_multiplier;
        EXPECT_NE(j.find("\"residual_mult\":" + format_double(std::isfinite(residual) ? residual : 1.0)),
                  std::string::npos)
            << j;
      }
  EXPECT_EQ(compared, 3 * 5 * 2 * 6);
}

TEST(MlpParametrization, CombinationsTransferHasNoRulesForAreRejectedNamingThem) {
  auto message = [](const Options& o) {
    try {
      validate_mlp_options(o);
    } catch (const InputError& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  EXPECT_NE(message({{"parametrization", "sp"}, {"depth_alpha", "1"}}).find("depth alpha 1 is a muP depth rule"),
            std::string::npos);
  EXPECT_NE(message({{"parametrization", "umup"}, {"depth_alpha", "0.5"}}).find("applies to mup only"),
            std::string::npos);
  EXPECT_NE(message({{"parametrization", "sp"}, {"wd_width_rule", "linear"}}).find("[mlp] parametrization sp"),
            std::string::npos);
  EXPECT_NE(message({{"parametrization", "mup"}, {"base_width", "100.5"}}).find("base_width"), std::string::npos);
  EXPECT_EQ(message({{"parametrization", "umup"}, {"wd_width_rule", "sqrt"}}), "accepted");
  EXPECT_EQ(message({{"parametrization", "mup"}, {"depth_alpha", "1"}, {"wd_width_rule", "linear"}}), "accepted");
}

TEST(MlpParametrization, AppliedJsonRecordsScheduleWeightDecayModeAndEveryGroup) {
  const std::string j = applied_hyperparameters_json(
      trial(1e-2, 32, 1000, 1, 0.1),
      {{"width", "64"}, {"schedule", "wsd"}, {"wd_mode", "decoupled"}, {"parametrization", "umup"}});
  for (const char* s :
       {"\"parametrization\":\"umup\"", "\"schedule\":\"wsd\"", "\"warmup_steps\":50", "\"decay_steps\":200",
        "\"final_lr_frac\":0.1", "\"wd_mode\":\"decoupled\"", "\"wd_width_rule\":\"none\"", "\"steps\":1000",
        "\"name\":\"input\"", "\"name\":\"hidden.w1\"", "\"name\":\"hidden.w2\"", "\"name\":\"hidden.norm\"",
        "\"name\":\"final_norm\"", "\"name\":\"output\""})
    EXPECT_NE(j.find(s), std::string::npos) << s << " in " << j;
}

// ---------------------------------------------------------------------------------------------
// Schedule, shape, options.
// ---------------------------------------------------------------------------------------------

// ---------------------------------------------------------------------------------------------
// The float trainer's elementwise kernels (one clone per instruction set, picked at load time;
// the gradient checks run the double probe, which does not use them).
// ---------------------------------------------------------------------------------------------

TEST(MlpKernels, GeluAndItsDerivativeMatchTheTanhFormulaInDoublePrecisionReluAndTheProductExactly) {
  std::vector<float> u, a, da;
  for (int i = -4000; i <= 4000; ++i) u.push_back(static_cast<float>(i) * 0.0025f);  // [-10, 10]
  for (float x : {1e-5f, -3e-4f, 30.0f, -30.0f}) u.push_back(x);
  a.resize(u.size());
  da.resize(u.size());
  mlp_detail::gelu_tanh(u.data(), a.data(), da.data(), static_cast<std::ptrdiff_t>(u.size()));
  const double c0 = std::sqrt(2 / M_PI), c1 = 0.044715;
  double worst_a = 0, worst_da = 0;
  for (std::size_t i = 0; i < u.size(); ++i) {
    const double x = u[i], t = std::tanh(c0 * (x + c1 * x * x * x));
    const double ref_a = 0.5 * x * (1 + t);
    const double ref_da = 0.5 * (1 + t) + 0.5 * c0 * x * (1 - t * t) * (1 + 3 * c1 * x * x);
    worst_a = std::max(worst_a, std::abs(a[i] - ref_a) / std::max(1.0, std::abs(ref_a)));
    worst_da = std::max(worst_da, std::abs(da[i] - ref_da));
  }
  EXPECT_LT(worst_a, 2e-6) << "on " << mlp_detail::elementwise_isa();
  EXPECT_LT(worst_da, 1e-5) << "on " << mlp_detail::elementwise_isa();  // 1 - t^2 cancels near |t| = 1
  std::vector<float> r(u.size()), dr(u.size());
  mlp_detail::relu(u.data(), r.data(), dr.data(), static_cast<std::ptrdiff_t>(u.size()));
  for (std::size_t i = 0; i < u.size(); ++i) {
    EXPECT_EQ(r[i], u[i] > 0 ? u[i] : 0.0f);
    EXPECT_EQ(dr[i], u[i] > 0 ? 1.0f : 0.0f);
  }
  std::vector<float> product = u;  // du *= act'(u), as the backward pass does
  mlp_detail::multiply(product.data(), da.data(), static_cast<std::ptrdiff_t>(u.size()));
  for (std::size_t i = 0; i < u.size(); ++i) EXPECT_EQ(product[i], u[i] * da[i]);
}

TEST(MlpKernels, AdamWStepMatchesTheUpdateInDoublePrecisionOnEveryElement) {
  // 1003 values: the vector loop and its scalar remainder both run.
  const std::ptrdiff_t n = 1003;
  std::vector<float> p(n), g(n), m(n), v(n);
  for (std::ptrdiff_t i = 0; i < n; ++i) {
    p[i] = std::sin(0.1f * static_cast<float>(i));
    g[i] = 0.01f * std::cos(0.37f * static_cast<float>(i));
    m[i] = 0.001f * static_cast<float>(i % 7);
    v[i] = 1e-6f * static_cast<float>(i % 5);
  }
  const std::vector<float> p0 = p, m0 = m, v0 = v;
  mlp_detail::AdamStep s{0.5f, 0.01f, 0.9f, 0.1f, 0.95f, 0.05f, 0.999f, 1e-3f, 1.7f, 1e-8f};
  mlp_detail::adam_update(s, p.data(), g.data(), m.data(), v.data(), n);
  const double clip = s.clip, l2 = s.l2, b1 = s.b1, b2 = s.b2, keep = s.keep, lr = s.step_size, c = s.inv_sqrt_bc2;
  for (std::ptrdiff_t i = 0; i < n; ++i) {
    const double gi = clip * g[i] + l2 * p0[i];
    const double mi = b1 * m0[i] + (1 - b1) * gi, vi = b2 * v0[i] + (1 - b2) * gi * gi;
    const double step = lr * mi / (std::sqrt(vi) * c + 1e-8), pi = keep * p0[i] - step;
    // Float rounding, a few ulps of each term (the sums may cancel), carried through.
    const double e_g = 1e-6 * (clip * std::abs(g[i]) + l2 * std::abs(p0[i]));
    const double e_m = 1e-6 * b1 * std::abs(m0[i]) + (1 - b1) * e_g;
    const double e_v = 1e-6 * vi + (1 - b2) * 2 * std::abs(gi) * e_g;
    const double e_p = 1e-6 * std::abs(p0[i]) + std::abs(step) * (1e-6 + e_m / std::abs(mi) + e_v / vi);
    ASSERT_NEAR(m[i], mi, e_m + 1e-30) << i;
    ASSERT_NEAR(v[i], vi, e_v + 1e-30) << i;
    ASSERT_NEAR(p[i], pi, e_p + 1e-30) << i;
  }
}

TEST(MlpSchedule, WarmupThenCosineWsdOrLinearCooldownToTheFinalFraction) {
  MlpSettings s;  // warmup 5%, final 10%
  EXPECT_DOUBLE_EQ(mlp_lr_factor(s, 1, 1000), 1.0 / 50);
  EXPECT_DOUBLE_EQ(mlp_lr_factor(s, 50, 1000), 1.0);
  EXPECT_NEAR(mlp_lr_factor(s, 525, 1000), 0.55, 1e-12);  // cosine midpoint
  EXPECT_DOUBLE_EQ(mlp_lr_factor(s, 1000, 1000), 0.1);
  s.schedule = MlpSchedule::Wsd;  // decay over the last 20%
  EXPECT_EQ(mlp_lr_factor(s, 800, 1000), 1.0);
  EXPECT_NEAR(mlp_lr_factor(s, 850, 1000), 0.1 + 0.9 * (1 - std::sqrt(0.25)), 1e-12);
  EXPECT_DOUBLE_EQ(mlp_lr_factor(s, 1000, 1000), 0.1);
  s.schedule = MlpSchedule::Constant;
  EXPECT_EQ(mlp_lr_factor(s, 800, 1000), 1.0);
  EXPECT_NEAR(mlp_lr_factor(s, 900, 1000), 0.55, 1e-12);
  EXPECT_DOUBLE_EQ(mlp_lr_factor(s, 1000, 1000), 0.1);
  s.decay_frac = 0;
  EXPECT_EQ(mlp_lr_factor(s, 1000, 1000), 1.0);
  s.warmup_frac = 0;
  EXPECT_EQ(mlp_lr_factor(s, 1, 1000), 1.0);
}

TEST(MlpShape, WidthIsDerivedFromParamsAtFixedDepthUnlessGiven) {
  MlpSettings s;  // depth 4, ffn 4w: N ≈ 32 w²
  EXPECT_EQ(mlp_shape(TrialPoint{32.0 * 128 * 128, 1e6, 1e-3, 8, 1, 0, 0}, s).width, 128);
  EXPECT_EQ(mlp_shape(TrialPoint{32.0 * 130 * 130, 1e6, 1e-3, 8, 1, 0, 0}, s).width, 128);  // multiple of 8
  EXPECT_EQ(mlp_shape(TrialPoint{10, 1e6, 1e-3, 8, 1, 0, 0}, s).width, 8);
  const MlpShape sh = mlp_shape(TrialPoint{32.0 * 256 * 256, 1e6, 1e-3, 8, 1, 0, 0}, s);
  EXPECT_EQ(sh.ffn, 1024);
  EXPECT_NEAR(sh.params() / (32.0 * 256 * 256), 1.0, 0.01);
  EXPECT_THROW(mlp_shape(TrialPoint{1e13, 1e6, 1e-3, 8, 1, 0, 0}, s), InputError);
  s.width = 48;
  EXPECT_EQ(mlp_shape(TrialPoint{1e9, 1e6, 1e-3, 8, 1, 0, 0}, s).width, 48);
}

TEST(MlpOptions, DefaultsAreCanonicalAndMatchTheSettingsDefaults) {
  Options defaults;
  std::set<std::string> keys;
  for (const auto& o : mlp_backend_options()) {
    EXPECT_TRUE(keys.insert(o.key).second) << o.key;
    EXPECT_FALSE(o.default_value.empty()) << o.key;
    EXPECT_FALSE(o.help.empty()) << o.key;
    EXPECT_EQ(o.affects_result, o.key != "threads") << o.key;  // threads: see the test above
    if (!o.text) {
      EXPECT_EQ(format_double(std::stod(o.default_value)), o.default_value) << o.key;  // as job.cpp writes it
    }
    defaults[o.key] = o.default_value;
  }
  const MlpSettings parsed = MlpSettings::from_options(defaults), d;
  EXPECT_EQ(parsed.width, d.width);
  EXPECT_EQ(parsed.depth, d.depth);
  EXPECT_EQ(parsed.eps, d.eps);
  EXPECT_EQ(parsed.teacher_temp, d.teacher_temp);
  EXPECT_EQ(parsed.eval_size, d.eval_size);
  EXPECT_EQ(parsed.parametrization, d.parametrization);
  EXPECT_EQ(parsed.schedule, d.schedule);
  EXPECT_EQ(parsed.wd_mode, d.wd_mode);
  EXPECT_EQ(parsed.fit_loss, d.fit_loss);
  EXPECT_EQ(applied_hyperparameters_json(trial(1e-3, 8, 10, 1, 0.1, 1e6), defaults),
            applied_hyperparameters_json(trial(1e-3, 8, 10, 1, 0.1, 1e6), Options{}));
}

TEST(MlpOptions, BadValuesAreRejectedNamingTheKey) {
  auto message = [](const Options& o) {
    try {
      validate_mlp_options(o);
    } catch (const InputError& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  EXPECT_NE(message({{"depth_alpha", "0.3"}}).find("depth_alpha"), std::string::npos);
  EXPECT_EQ(message({{"parametrization", "mup"}, {"depth_alpha", "0.5"}}), "accepted");
  EXPECT_NE(message({{"parametrization", "mupp"}}).find("did you mean 'mup'"), std::string::npos);
  EXPECT_NE(message({{"width", "1.5"}}).find("width"), std::string::npos);
  EXPECT_NE(message({{"depth", "0"}}).find("depth"), std::string::npos);
  EXPECT_NE(message({{"beta2", "1"}}).find("beta2"), std::string::npos);
  EXPECT_NE(message({{"eps", "abc"}}).find("eps"), std::string::npos);
  EXPECT_NE(message({{"schedule", "wsd"}, {"warmup_frac", "0.5"}, {"decay_frac", "0.6"}}).find("warmup_frac"),
            std::string::npos);
  EXPECT_EQ(message({{"parametrization", "MuP"}, {"activation", "ReLU"}}), "accepted");
  EXPECT_THROW(make_mlp_backend({{"classes", "1"}}), InputError);
}

}  // namespace

TEST(MlpTraining, EveryTrialRecordsTheHyperparametersAppliedToEachGroup) {
  Options o = kSmall;
  o["parametrization"] = "mup";
  o["width"] = "64";
  o["base_width"] = "32";
  MlpBackend b(MlpSettings::from_options(o), 5);
  const Trial t = trial(4e-3, 16, 20);
  const TrialOutcome out = b.run(t);
  EXPECT_EQ(out.details, applied_hyperparameters_json(t, o));
  // muP at twice the base width: the hidden matrices get half the Adam lr, and the record says so.
  EXPECT_NE(out.details.find("\"name\":\"hidden.w1\""), std::string::npos) << out.details;
  EXPECT_NE(out.details.find("\"lr\":0.002"), std::string::npos) << out.details;
}

// ---------------------------------------------------------------------------------------------
// Coordinate check
// ---------------------------------------------------------------------------------------------

TEST(CoordCheck, ActivationsGrowWithWidthUnderSpAndStayPutUnderMup) {
  const JobSpec job = parse_job(R"([sweep]
name = cc
[scales]
params = 65536
tokens = 6400
seq_len = 1
[grid]
lr = 1e-2
batch = 32
[backend]
kind = mlp
[mlp]
depth = 2
)",
                                "cc.ini");
  CoordCheckOptions o;
  o.widths = {32, 64, 128, 256};
  o.steps = 6;
  o.seeds = 1;
  const CoordCheckResult r = coord_check(job, o);
  ASSERT_EQ(r.layers.size(), 4u);  // input, block0, block1, logits
  ASSERT_EQ(r.slopes.size(), 2u);
  const auto& sp = r.slopes[0];
  const auto& mup = r.slopes[1];
  for (std::size_t l = 1; l < r.layers.size(); ++l) {
    EXPECT_GT(sp[l], 0.2) << "SP " << r.layers[l];
    EXPECT_GT(sp[l], mup[l] + 0.2) << r.layers[l];
    EXPECT_LT(std::fabs(mup[l]), 0.15) << "muP " << r.layers[l];
  }
  EXPECT_THROW(coord_check(parse_job("[sweep]\nname=x\n[scales]\nparams=1e6\ntokens=1e8\n[grid]\nlr=1e-3\nbatch=8\n"
                                     "[backend]\nkind=surrogate\n",
                                     "s.ini"),
                           o),
               InputError);
}
