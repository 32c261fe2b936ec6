#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <set>
#include <string>

#include "hpsweep/backends/backend.hpp"
#include "hpsweep/spec/job.hpp"
#include "hpsweep/trials/trial.hpp"
#include "hpsweep/util/error.hpp"

using namespace hpsweep;

namespace {

const std::string kValid = R"([sweep]
name = t
seed = 7
[scales]
params = 1e7, 2e7
tokens = 1e9
[grid]
lr = log:1e-4:1e-2:3
batch = 32, 64
wd = 0, 0.1
[backend]
kind = surrogate
)";

// Replaces the first occurrence of `from` in the valid job.
std::string with(const std::string& from, const std::string& to) {
  std::string s = kValid;
  const auto pos = s.find(from);
  EXPECT_NE(pos, std::string::npos) << from;
  return s.replace(pos, from.size(), to);
}

// The message of the InputError a job raises, or "" when it parses.
std::string error_of(const std::string& text) {
  try {
    parse_job(text, "jobs/t.ini");
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(JobFile, ValidJobParsesEveryKey) {
  const JobSpec j = parse_job(kValid, "jobs/t.ini");
  EXPECT_EQ(j.name, "t");
  EXPECT_EQ(j.seed, 7u);
  EXPECT_EQ(j.params, (std::vector<double>{1e7, 2e7}));
  EXPECT_EQ(j.tokens, (std::vector<double>{1e9}));
  ASSERT_EQ(j.lr.size(), 3u);
  EXPECT_DOUBLE_EQ(j.lr[0], 1e-4);
  EXPECT_NEAR(j.lr[1], 1e-3, 1e-15);
  EXPECT_DOUBLE_EQ(j.lr[2], 1e-2);
  EXPECT_EQ(j.batch, (std::vector<std::int64_t>{32, 64}));
  EXPECT_EQ(j.wd, (std::vector<double>{0, 0.1}));
  EXPECT_EQ(j.seq_len, 2048);
  EXPECT_EQ(j.backend_kind, "surrogate");
  EXPECT_EQ(j.backend_options.at("lr_coef"), "1.79");
}

TEST(JobFile, LogRangeHasExactEndpointsAndCount) {
  const auto v = parse_number_list("log:1e-4:1e-1:13", "x");
  ASSERT_EQ(v.size(), 13u);
  EXPECT_EQ(v.front(), 1e-4);
  EXPECT_EQ(v.back(), 1e-1);
  for (std::size_t i = 1; i < v.size(); ++i) EXPECT_NEAR(v[i] / v[i - 1], std::pow(10.0, 0.25), 1e-12);
}

TEST(JobFile, ShapesGiveStepLawParameterCounts) {
  const JobSpec j = parse_job(with("params = 1e7, 2e7", "shapes = 960x12x9368, 512x8"), "t.ini");
  // Step Law: N = numl * (4 h^2 + 3 h ffnh)
  EXPECT_DOUBLE_EQ(j.params[0], 12.0 * (4.0 * 960 * 960 + 3.0 * 960 * 9368));
  EXPECT_DOUBLE_EQ(j.params[1], 8.0 * (4.0 * 512 * 512 + 3.0 * 512 * 1365));
}

// Found by fuzzing (tests/fuzz/regressions/job/): a 115-digit hidden size and a batch of 2.2e38 were
// cast to int64.
TEST(JobFileErrors, AShapeDimensionOrBatchAboveTwoToThe53IsRefusedNotOverflowed) {
  const std::string e = error_of(with("params = 1e7, 2e7", "shapes = " + std::string(60, '6') + "x2, 128x2"));
  EXPECT_NE(e.find("jobs/t.ini:"), std::string::npos) << e;
  EXPECT_NE(e.find("is above 2^53"), std::string::npos) << e;
  const std::string b = error_of(with("batch = 32, 64", "batch = 32, 2.2e38"));
  EXPECT_NE(b.find("jobs/t.ini:"), std::string::npos) << b;
  EXPECT_NE(b.find("batch sizes must be at most 2^53 sequences, got "), std::string::npos) << b;
}

TEST(JobFile, TokensPerParamScaleWithModelSize) {
  const JobSpec j = parse_job(with("tokens = 1e9", "tokens_per_param = 20"), "t.ini");
  EXPECT_EQ(j.token_budgets_for(1e7), (std::vector<double>{2e8}));
}

TEST(JobFileErrors, UnknownKeySuggestsClosestValidKey) {
  const std::string e = error_of(with("batch = 32, 64", "bacth = 32, 64"));
  EXPECT_NE(e.find("jobs/t.ini:9"), std::string::npos) << e;
  EXPECT_NE(e.find("unknown key 'bacth'"), std::string::npos) << e;
  EXPECT_NE(e.find("did you mean 'batch' in [grid]"), std::string::npos) << e;
}

TEST(JobFileErrors, UnknownBackendOptionNamesItsSection) {
  const std::string e = error_of(kValid + "[surrogate]\nnoize = 0.1\n");
  EXPECT_NE(e.find("jobs/t.ini:14"), std::string::npos) << e;
  EXPECT_NE(e.find("did you mean 'noise'"), std::string::npos) << e;
}

TEST(JobFileErrors, MissingRequiredKeyIsNamed) {
  const std::string e = error_of(with("lr = log:1e-4:1e-2:3\n", ""));
  EXPECT_NE(e.find("missing required key 'lr' in section [grid]"), std::string::npos) << e;
  EXPECT_NE(error_of(with("tokens = 1e9\n", "")).find("missing token budgets"), std::string::npos);
}

TEST(JobFileErrors, MalformedNumberPointsAtLineAndKey) {
  const std::string e = error_of(with("tokens = 1e9", "tokens = 1e9x"));
  EXPECT_NE(e.find("jobs/t.ini:6: [scales] tokens: malformed number '1e9x'"), std::string::npos) << e;
}

TEST(JobFileErrors, MalformedRangeIsExplained) {
  EXPECT_NE(error_of(with("log:1e-4:1e-2:3", "log:1e-4:1e-2")).find("malformed range"), std::string::npos);
  EXPECT_NE(error_of(with("log:1e-4:1e-2:3", "log:0:1e-2:3")).find("positive endpoints"), std::string::npos);
  EXPECT_NE(error_of(with("log:1e-4:1e-2:3", "log:1e-4:1e-2:2.5")).find("whole number"), std::string::npos);
  EXPECT_NE(error_of(with("log:1e-4:1e-2:3", "geo:1e-4:1e-2:3")).find("unknown range kind"), std::string::npos);
}

TEST(JobFileErrors, NonPositiveValuesAreRefused) {
  EXPECT_NE(error_of(with("lr = log:1e-4:1e-2:3", "lr = 0.001, -0.1")).find("[grid] lr: values must be positive"),
            std::string::npos);
  EXPECT_NE(error_of(with("batch = 32, 64", "batch = 0")).find("[grid] batch: values must be positive"),
            std::string::npos);
  EXPECT_NE(error_of(with("params = 1e7, 2e7", "params = 1e7, 0")).find("[scales] params"), std::string::npos);
  EXPECT_NE(error_of(with("wd = 0, 0.1", "wd = -0.1")).find("non-negative"), std::string::npos);
}

TEST(JobFileErrors, EmptyGridListIsRefused) {
  EXPECT_NE(error_of(with("batch = 32, 64", "batch =")).find("[grid] batch: empty list"), std::string::npos);
}

TEST(JobFileErrors, DuplicateValuesAndKeysAreRefused) {
  EXPECT_NE(error_of(with("batch = 32, 64", "batch = 32, 64, 32")).find("duplicate value 32"), std::string::npos);
  const std::string e = error_of(with("wd = 0, 0.1", "wd = 0\nwd = 0.1"));
  EXPECT_NE(e.find("given twice (first at line 10)"), std::string::npos) << e;
  EXPECT_NE(error_of(with("batch = 32, 64", "batch = 32.2, 32.4")).find("round to the same"), std::string::npos);
}

TEST(JobFileErrors, InvalidLineSyntaxNamesTheLine) {
  const std::string e = error_of(with("[grid]", "[grid]\nthis is not ini"));
  EXPECT_NE(e.find("jobs/t.ini:8: invalid line"), std::string::npos) << e;
}

TEST(JobFileErrors, UnknownBackendSuggestsAKnownOne) {
  EXPECT_NE(error_of(with("kind = surrogate", "kind = surogate")).find("did you mean 'surrogate'"), std::string::npos);
}

TEST(JobFileErrors, MissingFileIsReported) { EXPECT_THROW(load_job("/nonexistent/job.ini"), InputError); }

namespace {
const std::string kVariants = kValid + R"(
[variants]
steep = lr_n_exp = -1.0, noise = 0
flat = lr_n_exp=0
)";
}  // namespace

TEST(JobVariants, EveryGridPointRunsOncePerVariantWithItsOwnSettings) {
  const JobSpec job = parse_job(kVariants, "jobs/v.ini");
  ASSERT_EQ(job.variants.size(), 2u);
  EXPECT_EQ(job.variants[0].name, "steep");
  EXPECT_EQ(job.options_for("steep").at("lr_n_exp"), "-1");
  EXPECT_EQ(job.options_for("steep").at("noise"), "0");
  EXPECT_EQ(job.options_for("flat").at("lr_n_exp"), "0");
  EXPECT_EQ(job.options_for("flat").at("noise"), job.backend_options.at("noise"));
  const auto plain = expand_grid(parse_job(kValid, "jobs/t.ini"));
  const auto grid = expand_grid(job);
  ASSERT_EQ(grid.size(), 2 * plain.size());
  std::set<TrialId> plain_ids, ids;
  for (const auto& t : plain) plain_ids.insert(t.id);
  std::size_t steep = 0;
  for (const auto& t : grid) {
    ids.insert(t.id);
    steep += t.point.variant == "steep";
    EXPECT_EQ(plain_ids.count(t.id), 0u) << "a variant's trial must not share an id with the plain job's";
  }
  EXPECT_EQ(ids.size(), grid.size());
  EXPECT_EQ(steep, plain.size());
}

TEST(JobVariants, ChangingOneVariantsSettingsChangesOnlyItsTrialIds) {
  const auto a = expand_grid(parse_job(kVariants, "v.ini"));
  std::string changed = kVariants;
  changed.replace(changed.find("lr_n_exp=0"), 10, "lr_n_exp=-0.5");
  const auto b = expand_grid(parse_job(changed, "v.ini"));
  std::map<std::string, std::set<TrialId>> ia, ib;
  for (const auto& t : a) ia[t.point.variant].insert(t.id);
  for (const auto& t : b) ib[t.point.variant].insert(t.id);
  EXPECT_EQ(ia["steep"], ib["steep"]);
  EXPECT_NE(ia["flat"], ib["flat"]);
}

TEST(JobVariantsErrors, UnknownOptionNamesTheLineAndSuggests) {
  const std::string e = error_of(kValid + "[variants]\nx = lr_n_ex=1\n");
  EXPECT_NE(e.find("jobs/t.ini:14"), std::string::npos) << e;
  EXPECT_NE(e.find("did you mean 'lr_n_exp'"), std::string::npos) << e;
  EXPECT_NE(error_of(kValid + "[variants]\nx = noise\n").find("expected 'option=value"), std::string::npos);
  EXPECT_NE(error_of(kValid + "[variants]\nx = noise=-1\n").find("must not be negative"), std::string::npos);
  EXPECT_NE(error_of(kValid + "[variants]\na = noise=0\nb = noise=0\n").find("same settings as variant 'a'"),
            std::string::npos);
  EXPECT_NE(error_of(kValid + "[variants]\na = noise=0, noise=1\n").find("given twice"), std::string::npos);
}

// The checks that need a backend's code run after parsing, with the same file and line in the message.
TEST(JobBackendChecks, BadCommandTemplateAndMlpSettingsAreInputErrorsNamingTheFileAndVariantLine) {
  auto backend_error_of = [](const std::string& text) {
    try {
      validate_backend_options(parse_job(text, "jobs/t.ini"));
    } catch (const InputError& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  const std::string command = with("kind = surrogate", "kind = command\n[command]\nargv = train --lr {lr}");
  EXPECT_EQ(backend_error_of(command), "");
  const std::string bad = with("kind = surrogate", "kind = command\n[command]\nargv = train --wd {weight_decay}");
  EXPECT_NO_THROW(parse_job(bad, "jobs/t.ini"));  // spec/ knows the keys, not the placeholders
  const std::string e = backend_error_of(bad);
  EXPECT_EQ(e.rfind("jobs/t.ini: ", 0), 0u) << e;
  EXPECT_NE(e.find("unknown placeholder {weight_decay}"), std::string::npos) << e;

  const std::string mlp = with("kind = surrogate", "kind = mlp\n[mlp]\nparametrization = mup") +
                          "[variants]\nok = depth_alpha=1\nbad = parametrization=mupp\n";
  const std::string v = backend_error_of(mlp);
  EXPECT_NE(v.find("jobs/t.ini:17: [variants] bad: [mlp] parametrization"), std::string::npos) << v;
  EXPECT_NE(v.find("did you mean 'mup'"), std::string::npos) << v;
}
