#include <gtest/gtest.h>

#include <cmath>

#include "hpsweep/backends/surrogate.hpp"
#include "hpsweep/trials/smoothing.hpp"

using namespace hpsweep;

namespace {
Trial trial_at(const SurrogateParams& p, double lr_factor, double batch_factor, std::uint64_t id = 42) {
  const double n = 1e8, d = 2e9;
  const double bt = p.optimal_batch_tokens(d) * batch_factor;
  Trial t;
  t.id = id;
  t.point =
      TrialPoint{n, d, p.optimal_lr(n, d) * lr_factor, std::max<std::int64_t>(1, std::llround(bt / 2048)), 2048, 0, 0};
  t.point.wd = p.optimal_wd(n, d, t.point.lr, t.point.batch_tokens());
  return t;
}
}  // namespace

TEST(Surrogate, DefaultsAreThePublishedStepLaw) {
  SurrogateParams p;
  // hp-laws.md worked example: N = 7e9, D = 1.4e12 -> lr ~ 9.35e-4, B ~ 5.0e6 tokens. The
  // formula with the published rounded coefficients gives 9.17e-4 (2% below the quoted figure).
  EXPECT_NEAR(p.optimal_lr(7e9, 1.4e12), 9.166e-4, 0.005e-4);
  EXPECT_NEAR(p.optimal_lr(7e9, 1.4e12), 9.35e-4, 0.03 * 9.35e-4);
  EXPECT_NEAR(p.optimal_batch_tokens(1.4e12), 5.0e6, 0.05e6);
}

TEST(Surrogate, SameTrialGivesBitIdenticalResult) {
  SurrogateBackend b{SurrogateParams{}};
  const Trial t = trial_at(b.params(), 1.0, 1.0);
  const auto a = b.run(t), c = b.run(t);
  EXPECT_EQ(a.final_loss, c.final_loss);
  EXPECT_EQ(a.curve.loss, c.curve.loss);
  Trial other = t;
  other.id = 43;
  EXPECT_NE(b.run(other).final_loss, a.final_loss);
}

TEST(Surrogate, LossIsLowestAtTheOptimumAndTooHighLrHurtsMore) {
  SurrogateParams p;
  p.noise = 0;
  const auto loss = [&](double lr_f, double b_f) {
    const Trial t = trial_at(p, lr_f, b_f);
    return p.expected_loss(t.point.params, t.point.tokens, t.point.lr, t.point.batch_tokens(), t.point.wd);
  };
  const double best = loss(1, 1);
  EXPECT_LT(best, loss(2, 1));
  EXPECT_LT(best, loss(0.5, 1));
  EXPECT_LT(best, loss(1, 2));
  EXPECT_LT(best, loss(1, 0.5));
  EXPECT_GT(loss(2, 1), loss(0.5, 1));  // asymmetric
}

TEST(Surrogate, LrAboveStabilityLimitDiverges) {
  SurrogateBackend b{SurrogateParams{}};
  const auto out = b.run(trial_at(b.params(), 20.0, 1.0));
  EXPECT_EQ(out.state, TrialState::Diverged);
  EXPECT_FALSE(std::isfinite(out.final_loss));
  EXPECT_NE(out.error.find("stability limit"), std::string::npos);
  EXPECT_EQ(b.run(trial_at(b.params(), 1.0, 1.0)).state, TrialState::Done);
}

TEST(Surrogate, EmitsALossCurveEndingAtTheFinalStep) {
  SurrogateBackend b{SurrogateParams{}};
  const Trial t = trial_at(b.params(), 1.0, 1.0);
  const auto out = b.run(t);
  ASSERT_EQ(out.curve.step.size(), 64u);
  EXPECT_EQ(out.curve.step.back(), t.point.steps());
  EXPECT_GT(out.curve.loss.front(), out.curve.loss.back());  // it learns
  EXPECT_NEAR(out.smooth_loss, out.final_loss, 0.01 * out.final_loss);
}

TEST(Smoothing, ConstantCurveSmoothsToItself) {
  EXPECT_DOUBLE_EQ(smoothed_final_loss({100, 200, 300, 400}, {2.5, 2.5, 2.5, 2.5}), 2.5);
}

TEST(Smoothing, MatchesScipyGaussianFilterAtTheLastPoint) {
  // 1000 steps logged every 10: sigma = min(100, 0.01*1000)/10 = 1 logged point.
  std::vector<std::int64_t> step;
  std::vector<double> loss;
  for (int i = 1; i <= 100; ++i) {
    step.push_back(10 * i);
    loss.push_back(i == 100 ? 1.0 : 0.0);
  }
  // scipy.ndimage.gaussian_filter1d(x, 1.0)[-1] for x = [0]*99 + [1] (reflect, truncate 4.0)
  // = (w0 + w1) / sum(w), w_k = exp(-k^2/2), k = -4..4
  double sum = 0;
  for (int k = -4; k <= 4; ++k) sum += std::exp(-0.5 * k * k);
  EXPECT_NEAR(smoothed_final_loss(step, loss), (1.0 + std::exp(-0.5)) / sum, 1e-12);
}
