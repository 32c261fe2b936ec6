// Tests of hpsweep/ingest/log_ingest.hpp: the run-directory parsers (JSON lines, Megatron logs).
#include "hpsweep/ingest/log_ingest.hpp"

#include <gtest/gtest.h>

#include <linux/capability.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <sstream>

#include "hpsweep/ingest/csv_ingest.hpp"
#include "hpsweep/trials/smoothing.hpp"
#include "hpsweep/util/error.hpp"
#include "hpsweep/util/text.hpp"
#include "test_helpers.hpp"

using namespace hpsweep;
namespace fs = std::filesystem;

namespace {

const std::string kStepLawName = "step2v2_0618_h960_ffnh9368_numh15_numl7_lr3.453e-04_bs736_ti66342_mlr1.00e-05";

fs::path source_root() { return fs::path(__FILE__).parent_path().parent_path().parent_path(); }

const std::string kConfig = R"({"lr": 0.001, "batch": 64, "seq_len": 1024, "wd": 0.05, "params": 2.1e7,
 "tokens": 131072000, "train_steps": 2000})";

// "step loss" pairs -> metrics.jsonl text, one object per line.
std::string jsonl(const std::vector<std::pair<long, std::string>>& points, bool final_newline = true) {
  std::string out;
  for (std::size_t i = 0; i < points.size(); ++i) {
    out += "{\"step\": " + std::to_string(points[i].first) + ", \"loss\": " + points[i].second + "}";
    if (i + 1 < points.size() || final_newline) out += "\n";
  }
  return out;
}

std::string ramp(long first, long last, long every) {
  std::string out;
  for (long s = first; s <= last; s += every)
    out += "{\"step\": " + std::to_string(s) + ", \"loss\": " + std::to_string(2.0 + 1000.0 / (s + 100.0)) + "}\n";
  return out;
}

std::string megatron_line(long it, long total, const std::string& loss) {
  char buf[400];
  std::snprintf(buf, sizeof buf,
                " iteration %8ld/%8ld | consumed samples: %12ld | elapsed time per iteration (ms): 512.3 | learning "
                "rate: 3.453E-04 | global batch size:   736 | lm loss: %s | loss scale: 1.0 |",
                it, total, it * 736, loss.c_str());
  return buf;
}

std::string megatron_log(long first, long last, long every, long total) {
  std::string out = "training ...\n";
  for (long it = first; it <= last; it += every) {
    char loss[32];
    std::snprintf(loss, sizeof loss, "%.6E", 2.4 + 30.0 / (it + 10.0));
    out += megatron_line(it, total, loss) + "\n";
  }
  return out;
}

ParsedRun jsonl_run(const std::string& metrics, const std::string& config = kConfig) {
  return parse_jsonl_run(metrics, "runs/a/metrics.jsonl", config, "runs/a/config.json", LogIngestOptions{});
}

ParsedRun megatron_run(const std::string& log, const std::string& name = kStepLawName, const std::string& config = "") {
  return parse_megatron_run(log, "runs/" + name + "/train.log", name, config, "runs/" + name + "/config.json",
                            LogIngestOptions{});
}

// Every parse result must keep the parsers' promises, good or bad.
#define EXPECT_CONSISTENT(run) EXPECT_EQ(check_parsed_run(run), "") << (run).error

}  // namespace

TEST(LogIngest, ParseLayoutAcceptsJsonlAndMegatronAndSuggestsOnTypos) {
  EXPECT_EQ(parse_layout("jsonl"), LogLayout::JsonLines);
  EXPECT_EQ(parse_layout("Megatron"), LogLayout::Megatron);
  EXPECT_STREQ(to_string(LogLayout::JsonLines), "jsonl");
  EXPECT_STREQ(to_string(LogLayout::Megatron), "megatron");
  try {
    parse_layout("megatorn");
    FAIL() << "no InputError";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("did you mean 'megatron'"), std::string::npos) << e.what();
  }
  EXPECT_THROW(parse_layout("csv"), InputError);
}

TEST(LogIngest, JsonlRunGivesHyperparametersCurveAndDoneState) {
  const ParsedRun r = jsonl_run(jsonl({{100, "4.5"}, {200, "4.0"}, {300, "3.75"}}) + "\n\n");
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_CONSISTENT(r);
  const TrialPoint& p = r.record.trial.point;
  EXPECT_DOUBLE_EQ(p.lr, 1e-3);
  EXPECT_EQ(p.batch, 64);
  EXPECT_EQ(p.seq_len, 1024);
  EXPECT_DOUBLE_EQ(p.wd, 0.05);
  EXPECT_DOUBLE_EQ(p.params, 2.1e7);
  EXPECT_DOUBLE_EQ(p.tokens, 131072000);
  EXPECT_EQ(r.record.outcome.state, TrialState::Done);
  EXPECT_EQ(r.record.outcome.curve.step, (std::vector<std::int64_t>{100, 200, 300}));
  EXPECT_EQ(r.record.outcome.curve.loss, (std::vector<double>{4.5, 4.0, 3.75}));
  EXPECT_DOUBLE_EQ(r.record.outcome.final_loss, 3.75);
  EXPECT_EQ(r.record.outcome.steps, 300);
  EXPECT_EQ(r.record.source, "ingest:runs/a");
  EXPECT_EQ(r.target_step, 2000);
  EXPECT_FALSE(r.finished);
  EXPECT_EQ(r.bytes, jsonl({{100, "4.5"}, {200, "4.0"}, {300, "3.75"}}).size() + 2 + kConfig.size());
}

TEST(LogIngest, ConfigDefaultsComeFromTheOptions) {
  LogIngestOptions o;
  o.seq_len = 4096;
  o.wd = 0.01;
  const ParsedRun r = parse_jsonl_run(jsonl({{10, "3"}}), "m.jsonl",
                                      R"({"lr": 1e-3, "batch": 8, "params": 1e6, "tokens": 1e9})", "c.json", o);
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.record.trial.point.seq_len, 4096);
  EXPECT_DOUBLE_EQ(r.record.trial.point.wd, 0.01);
  EXPECT_EQ(r.record.source, "ingest:.");
}

TEST(LogIngest, TrainStepsDefaultsToTokensOverBatchTokensRoundedUp) {
  const ParsedRun r =
      jsonl_run(jsonl({{10, "3"}}), R"({"lr": 1e-3, "batch": 10, "seq_len": 100, "params": 1e6, "tokens": 100001})");
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.target_step, 101);  // 100001 / 1000 = 100.001 -> 101
  // Without tokens, train_steps gives D = train_steps * batch * seq_len.
  const ParsedRun t =
      jsonl_run(jsonl({{10, "3"}}), R"({"lr": 1e-3, "batch": 10, "seq_len": 100, "params": 1e6, "train_steps": 50})");
  ASSERT_TRUE(t.ok) << t.error;
  EXPECT_DOUBLE_EQ(t.record.trial.point.tokens, 50000);
  const ParsedRun neither = jsonl_run(jsonl({{10, "3"}}), R"({"lr": 1e-3, "batch": 10, "params": 1e6})");
  EXPECT_FALSE(neither.ok);
  EXPECT_EQ(neither.error, "runs/a/config.json:0: missing \"tokens\" (training tokens D; or give \"train_steps\")");
}

TEST(LogIngest, MegatronRunNameGivesStepLawHyperparameters) {
  const ParsedRun r = megatron_run(megatron_log(100, 66300, 100, 66342));
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_CONSISTENT(r);
  const TrialPoint& p = r.record.trial.point;
  EXPECT_DOUBLE_EQ(p.params, 214663680.0);  // 7 * (4*960^2 + 3*960*9368), the N column of the Step Law CSV
  EXPECT_DOUBLE_EQ(p.lr, 3.453e-4);
  EXPECT_EQ(p.batch, 736);
  EXPECT_EQ(p.seq_len, 2048);
  EXPECT_DOUBLE_EQ(p.wd, 0.1);
  EXPECT_DOUBLE_EQ(p.tokens, 66342.0 * 736 * 2048);
  EXPECT_EQ(r.target_step, 66342);
  EXPECT_EQ(r.record.outcome.steps, 66300);
  EXPECT_EQ(r.record.outcome.curve.step.size(), 663u);
  EXPECT_DOUBLE_EQ(r.log_interval, 100);
  EXPECT_TRUE(r.finished);  // 66300 >= 66342 - 100
  EXPECT_EQ(r.record.outcome.state, TrialState::Done);
  EXPECT_EQ(r.record.source, "ingest:runs/" + kStepLawName);
}

TEST(LogIngest, MegatronRunNameWithUppercaseExponentAndOtherFieldsParses) {
  const std::string name = "step2v2_0618_h1280_ffnh9472_numh10_numl10_lr5.524E-03_bs736_ti33171_mlr1.00E-05";
  const ParsedRun r = megatron_run(megatron_log(100, 33100, 100, 33171), name);
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_DOUBLE_EQ(r.record.trial.point.lr, 5.524e-3);
  EXPECT_DOUBLE_EQ(r.record.trial.point.params, 429260800.0);  // the CSV's N for this row
}

TEST(LogIngest, MegatronRunNameWithoutTiTakesTheLogsTarget) {
  const ParsedRun r = megatron_run(megatron_log(10, 100, 10, 100), "run_h64_ffnh256_numl2_lr1e-3_bs32");
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.target_step, 100);
  EXPECT_DOUBLE_EQ(r.record.trial.point.tokens, 100.0 * 32 * 2048);
  EXPECT_DOUBLE_EQ(r.record.trial.point.params, 2 * (4.0 * 64 * 64 + 3.0 * 64 * 256));
}

TEST(LogIngest, MegatronRunNameMissingPiecesIsABadRunNamingThePiece) {
  const ParsedRun r = megatron_run(megatron_log(10, 100, 10, 100), "run_h64_ffnh256_numl2_lr1e-3");
  EXPECT_FALSE(r.ok);
  EXPECT_CONSISTENT(r);
  EXPECT_EQ(r.error,
            "runs/run_h64_ffnh256_numl2_lr1e-3/train.log:0: no config.json and the run name "
            "'run_h64_ffnh256_numl2_lr1e-3' has no _bs<number> (batch size in sequences)");
  const ParsedRun no_lr = megatron_run(megatron_log(10, 100, 10, 100), "run_h64_ffnh256_numl2_bs32");
  EXPECT_NE(no_lr.error.find("has no _lr<number> (peak learning rate)"), std::string::npos) << no_lr.error;
  const ParsedRun twice = megatron_run(megatron_log(10, 100, 10, 100), "run_h64_ffnh256_numl2_lr1e-3_lr2e-3_bs32");
  EXPECT_NE(twice.error.find("gives _lr twice"), std::string::npos) << twice.error;
}

TEST(LogIngest, MoeRunNameWithoutConfigIsRefused) {
  const std::string name =
      "step2v2_0801_1in89_moeh352_sed352_h1408_ffnh3904_numh11_numl16_lr1.726e-04_bs32_ti100_mlr1e-5_gg";
  const ParsedRun r = megatron_run(megatron_log(10, 100, 10, 100), name);
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.error.find("mixture-of-experts"), std::string::npos) << r.error;
  // With a config it is fine.
  const ParsedRun c = megatron_run(megatron_log(10, 100, 10, 100), name,
                                   R"({"lr": 1.726e-4, "batch": 32, "params": 2.15e9, "tokens": 6.5e6})");
  ASSERT_TRUE(c.ok) << c.error;
  EXPECT_DOUBLE_EQ(c.record.trial.point.params, 2.15e9);
}

TEST(LogIngest, MegatronConfigTakesPrecedenceOverRunName) {
  const ParsedRun r = megatron_run(megatron_log(10, 100, 10, 100), "not_a_steplaw_name",
                                   R"({"lr": 2e-4, "batch": 128, "params": 1e8, "wd": 0, "seq_len": 4096})");
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_CONSISTENT(r);
  EXPECT_DOUBLE_EQ(r.record.trial.point.lr, 2e-4);
  EXPECT_EQ(r.record.trial.point.batch, 128);
  EXPECT_DOUBLE_EQ(r.record.trial.point.wd, 0);
  EXPECT_DOUBLE_EQ(r.record.trial.point.tokens, 100.0 * 128 * 4096);  // no tokens: the log's target * batch tokens
  const ParsedRun bad = megatron_run(megatron_log(10, 100, 10, 100), "x",
                                     "{\"lr\": 2e-4,\n \"batch\": 128, \"params\": 1e8,\n \"train_steps\": 99}");
  EXPECT_FALSE(bad.ok);
  EXPECT_EQ(bad.error,
            "runs/x/config.json:3: \"train_steps\" 99 disagrees with the log's target iteration count 100 "
            "(runs/x/train.log:2)");
}

TEST(LogIngest, MegatronLinesWithoutLmLossAreIgnored) {
  std::string log = "using world size: 64\n> building GPT model ...\n";
  log += megatron_line(10, 30, "3.5E+00") + "\n";
  log += " validation loss at iteration 10 | lm loss value: 3.600000E+00 | lm loss PPL: 3.6E+01 |\n";
  log += "[Rank 0] (after 10 iterations) memory (MB) | allocated: 100.0 | max allocated: 200.0\n";
  log += "[2024-06-18 10:00:00] " + megatron_line(20, 30, "3.25E+00") + "\n";
  log += megatron_line(30, 30, "3.0E+00") + "\n";
  const ParsedRun r = megatron_run(log, "r_h64_ffnh256_numl2_lr1e-3_bs32_ti30");
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.record.outcome.curve.step, (std::vector<std::int64_t>{10, 20, 30}));
  EXPECT_EQ(r.record.outcome.curve.loss, (std::vector<double>{3.5, 3.25, 3.0}));
  EXPECT_TRUE(r.finished);
}

TEST(LogIngest, MegatronTargetMustAgreeWithRunNameAndStayTheSame) {
  const ParsedRun r = megatron_run(megatron_log(10, 100, 10, 100), "r_h64_ffnh256_numl2_lr1e-3_bs32_ti200");
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.error,
            "runs/r_h64_ffnh256_numl2_lr1e-3_bs32_ti200/train.log:2: the log's target iteration count 100 "
            "disagrees with _ti200 in the run name");
  const std::string log = megatron_line(10, 100, "3") + "\n" + megatron_line(20, 200, "2.9") + "\n";
  const ParsedRun changed = megatron_run(log, "r_h64_ffnh256_numl2_lr1e-3_bs32");
  EXPECT_FALSE(changed.ok);
  EXPECT_EQ(changed.error,
            "runs/r_h64_ffnh256_numl2_lr1e-3_bs32/train.log:2: target iteration count 200 differs from "
            "100 on line 1");
  const ParsedRun no_it = megatron_run(" step 5 | lm loss: 3.0 |\n");
  EXPECT_FALSE(no_it.ok);
  EXPECT_NE(no_it.error.find("train.log:1: 'lm loss' without 'iteration N/M'"), std::string::npos) << no_it.error;
}

TEST(LogIngest, NonMonotoneStepsAreReportedWithFileAndLine) {
  const ParsedRun j = jsonl_run(jsonl({{100, "4"}, {200, "3.9"}, {200, "3.8"}}));
  EXPECT_FALSE(j.ok);
  EXPECT_CONSISTENT(j);
  EXPECT_EQ(j.error, "runs/a/metrics.jsonl:3: step 200 does not come after step 200 of line 2 (steps must increase)");
  const ParsedRun back = jsonl_run(jsonl({{100, "4"}, {300, "3.9"}, {200, "3.8"}}));
  EXPECT_EQ(back.error,
            "runs/a/metrics.jsonl:3: step 200 does not come after step 300 of line 2 (steps must increase)");
  const std::string log = "header\n" + megatron_line(20, 100, "3") + "\n" + megatron_line(10, 100, "2.9") + "\n";
  const ParsedRun m = megatron_run(log);
  EXPECT_FALSE(m.ok);
  EXPECT_EQ(m.error, "runs/" + kStepLawName +
                         "/train.log:3: step 10 does not come after step 20 of line 2 (steps must increase)");
}

TEST(LogIngest, TruncatedLastLineIsIgnored) {
  // JSON lines: a cut object without its newline is dropped.
  const ParsedRun j = jsonl_run(jsonl({{100, "4"}, {200, "3.5"}}) + "{\"step\": 300, \"lo");
  ASSERT_TRUE(j.ok) << j.error;
  EXPECT_EQ(j.record.outcome.curve.step, (std::vector<std::int64_t>{100, 200}));
  // Megatron: a cut number that would still parse ("2.5E+0" of "2.5E+01") is dropped too: the
  // last line counts only when its lm loss field is closed by '|'.
  const std::string good = megatron_line(10, 100, "3.0E+00") + "\n";
  const std::string cut = megatron_line(20, 100, "2.5E+01");
  for (std::size_t keep : {cut.find("lm loss: 2.5E+0") + 15, cut.find("lm loss:") + 4, cut.size() - 20}) {
    const ParsedRun m = megatron_run(good + cut.substr(0, keep), "r_h64_ffnh256_numl2_lr1e-3_bs32");
    ASSERT_TRUE(m.ok) << m.error;
    EXPECT_EQ(m.record.outcome.curve.step, (std::vector<std::int64_t>{10})) << cut.substr(0, keep);
  }
}

TEST(LogIngest, CompleteLastLineWithoutNewlineIsKept) {
  const ParsedRun j = jsonl_run(jsonl({{100, "4"}, {200, "3.5"}}, /*final_newline=*/false));
  ASSERT_TRUE(j.ok) << j.error;
  EXPECT_EQ(j.record.outcome.steps, 200);
  const ParsedRun m = megatron_run(megatron_line(10, 100, "3.0E+00") + "\n" + megatron_line(20, 100, "2.5E+00"),
                                   "r_h64_ffnh256_numl2_lr1e-3_bs32");
  ASSERT_TRUE(m.ok) << m.error;
  EXPECT_EQ(m.record.outcome.steps, 20);
}

TEST(LogIngest, BadLastLineEndingInNewlineIsAnError) {
  const ParsedRun j = jsonl_run(jsonl({{100, "4"}}) + "{\"step\": 300, \"lo\n");
  EXPECT_FALSE(j.ok);
  EXPECT_CONSISTENT(j);
  EXPECT_EQ(j.error.rfind("runs/a/metrics.jsonl:2: not valid JSON", 0), 0u) << j.error;
  const ParsedRun m = megatron_run(megatron_line(10, 100, "3.0E+00") + "\n" + megatron_line(20, 100, "2.5E") + "\n");
  EXPECT_FALSE(m.ok);
  EXPECT_EQ(m.error, "runs/" + kStepLawName + "/train.log:2: lm loss is not a number: '2.5E'");
}

TEST(LogIngest, NonFiniteLossMidCurveIsAnError) {
  const ParsedRun j = jsonl_run(jsonl({{100, "4"}, {200, "NaN"}, {300, "3.5"}}));
  EXPECT_FALSE(j.ok);
  EXPECT_CONSISTENT(j);
  EXPECT_EQ(j.error,
            "runs/a/metrics.jsonl:2: loss nan at step 200 is followed by finite losses (line 3): non-finite "
            "values may only end a curve");
  const ParsedRun m = megatron_run(megatron_line(10, 66342, "inf") + "\n" + megatron_line(20, 66342, "2.5E+00") + "\n");
  EXPECT_FALSE(m.ok);
  EXPECT_NE(m.error.find("train.log:1: loss inf at step 10"), std::string::npos) << m.error;
}

TEST(LogIngest, NonFiniteLastLossMeansDiverged) {
  for (const std::string& bad : {"NaN", "Infinity", "-Infinity", "null", "\"nan\"", "\"inf\""}) {
    const ParsedRun r = jsonl_run(jsonl({{100, "4"}, {200, "9.5"}, {300, bad}, {400, "NaN"}}));
    ASSERT_TRUE(r.ok) << bad << ": " << r.error;
    EXPECT_CONSISTENT(r);
    EXPECT_EQ(r.record.outcome.state, TrialState::Diverged) << bad;
    EXPECT_FALSE(std::isfinite(r.record.outcome.final_loss));
    EXPECT_EQ(r.record.outcome.curve.loss.size(), 4u);
    EXPECT_NE(r.record.outcome.error.find("at step 300"), std::string::npos) << r.record.outcome.error;
  }
  const ParsedRun m = megatron_run(megatron_line(10, 66342, "3.0E+00") + "\n" + megatron_line(20, 66342, "nan") + "\n");
  ASSERT_TRUE(m.ok) << m.error;
  EXPECT_EQ(m.record.outcome.state, TrialState::Diverged);
}

TEST(LogIngest, LossAboveTenThousandAtTheEndMeansDiverged) {
  const ParsedRun r = jsonl_run(jsonl({{100, "4"}, {200, "2e4"}}));
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.record.outcome.state, TrialState::Diverged);
  EXPECT_DOUBLE_EQ(r.record.outcome.final_loss, 2e4);
  EXPECT_NE(r.record.outcome.error.find("above"), std::string::npos);
  // Mid-curve spikes are just data.
  const ParsedRun spike = jsonl_run(jsonl({{100, "4"}, {200, "2e4"}, {300, "3.9"}}));
  ASSERT_TRUE(spike.ok) << spike.error;
  EXPECT_EQ(spike.record.outcome.state, TrialState::Done);
}

TEST(LogIngest, MissingFieldsAreReportedWithFileAndLine) {
  EXPECT_EQ(jsonl_run("{\"step\": 1, \"loss\": 3}\n{\"step\": 2}\n").error, "runs/a/metrics.jsonl:2: no \"loss\"");
  EXPECT_EQ(jsonl_run("\n{\"loss\": 3}\n").error, "runs/a/metrics.jsonl:2: no \"step\"");
  EXPECT_EQ(jsonl_run("[1, 2]\n").error, "runs/a/metrics.jsonl:1: not a JSON object");
  EXPECT_EQ(jsonl_run("{\"step\": \"x\", \"loss\": 3}\n").error,
            "runs/a/metrics.jsonl:1: \"step\" must be a whole number from 0 to 2^53, got 'x'");
  EXPECT_EQ(jsonl_run("{\"step\": 1.5, \"loss\": 3}\n").error,
            "runs/a/metrics.jsonl:1: \"step\" must be a whole number from 0 to 2^53, got '1.5'");
  EXPECT_EQ(jsonl_run("{\"step\": 1, \"loss\": {\"a\": 1}}\n").error,
            "runs/a/metrics.jsonl:1: \"loss\" is not a number: ''");
  EXPECT_EQ(jsonl_run(jsonl({{1, "3"}}), R"({"batch": 64, "params": 1e6, "tokens": 1e9})").error,
            "runs/a/config.json:0: missing \"lr\" (peak learning rate)");
  EXPECT_EQ(jsonl_run(jsonl({{1, "3"}}), "{\"lr\": 1e-3,\n\"params\": 1e6, \"tokens\": 1e9}").error,
            "runs/a/config.json:0: missing \"batch\" (sequences per step)");
  EXPECT_EQ(jsonl_run(jsonl({{1, "3"}}), "{\"lr\": 1e-3,\n\"batch\": 8, \"tokens\": 1e9}").error,
            "runs/a/config.json:0: missing \"params\" (non-embedding parameters N)");
  const ParsedRun broken = jsonl_run(jsonl({{1, "3"}}), "{\"lr\": 1e-3,\n\"batch\": 8,,\n}");
  EXPECT_EQ(broken.error.rfind("runs/a/config.json:2: not valid JSON", 0), 0u) << broken.error;
  EXPECT_EQ(jsonl_run(jsonl({{1, "3"}}), "").error,
            "runs/a/config.json:0: empty config (expected a JSON object with lr, batch, params, tokens)");
}

TEST(LogIngest, NonPositiveHyperparametersAreRejected) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"({"lr": 0, "batch": 8, "params": 1e6, "tokens": 1e9})",
       "runs/a/config.json:1: \"lr\" must be positive and finite, got 0"},
      {"{\"lr\": 1e-3,\n\"batch\": -8, \"params\": 1e6, \"tokens\": 1e9}",
       "runs/a/config.json:2: \"batch\" must be a positive whole number, got '-8'"},
      {R"({"lr": 1e-3, "batch": 8.5, "params": 1e6, "tokens": 1e9})",
       "runs/a/config.json:1: \"batch\" must be a positive whole number, got '8.5'"},
      {R"({"lr": 1e-3, "batch": 8, "params": -1, "tokens": 1e9})",
       "runs/a/config.json:1: \"params\" must be positive and finite, got -1"},
      {R"({"lr": 1e-3, "batch": 8, "params": 1e6, "tokens": 0})",
       "runs/a/config.json:1: \"tokens\" must be positive and finite, got 0"},
      {R"({"lr": 1e-3, "batch": 8, "params": 1e6, "tokens": 1e9, "wd": -0.1})",
       "runs/a/config.json:1: \"wd\" must be zero or positive and finite, got -0.1"},
      {R"({"lr": NaN, "batch": 8, "params": 1e6, "tokens": 1e9})",
       "runs/a/config.json:1: \"lr\" must be positive and finite, got nan"},
      {R"({"lr": 1e-3, "batch": 8, "params": 1e6, "tokens": 1e9, "seq_len": 0})",
       "runs/a/config.json:1: \"seq_len\" must be a positive whole number, got '0'"},
      {R"({"lr": 1e-3, "batch": 8, "params": 1e6, "tokens": 1e9, "train_steps": "many"})",
       "runs/a/config.json:1: \"train_steps\" must be a positive whole number, got 'many'"},
      {R"({"lr": 1e-3, "batch": 1, "seq_len": 1, "params": 1e6, "tokens": 1e300})",
       "runs/a/config.json:1: tokens / (batch * seq_len) = 1e300 steps is out of range"},
  };
  for (const auto& [config, error] : cases) {
    const ParsedRun r = jsonl_run(jsonl({{1, "3"}}), config);
    EXPECT_FALSE(r.ok) << config;
    EXPECT_CONSISTENT(r);
    EXPECT_EQ(r.error, error) << config;
  }
}

TEST(LogIngest, EmptyCurveIsABadRun) {
  EXPECT_EQ(jsonl_run("").error, "runs/a/metrics.jsonl:0: no loss values (empty curve)");
  EXPECT_EQ(jsonl_run("\n  \n\r\n").error, "runs/a/metrics.jsonl:0: no loss values (empty curve)");
  EXPECT_EQ(jsonl_run("{\"step\": 1, \"lo").error, "runs/a/metrics.jsonl:0: no loss values (empty curve)");
  EXPECT_EQ(megatron_run("training ...\n").error,
            "runs/" + kStepLawName + "/train.log:0: no 'iteration N/M | ... | lm loss: X |' lines (empty curve)");
}

TEST(LogIngest, PythonStyleJsonCrlfAndBomAreAccepted) {
  const std::string text =
      "\xEF\xBB\xBF{\"step\": 1, \"loss\": 3.5, \"grad_norm\": NaN, \"tag\": \"NaN inside\"}\r\n"
      "{\"loss\": \"3.25\", \"step\": \"2\", \"extra\": {\"a\": [1, 2, Infinity]}}\r\n";
  const ParsedRun r = jsonl_run(text);
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.record.outcome.curve.loss, (std::vector<double>{3.5, 3.25}));
}

TEST(LogIngest, DeeplyNestedJsonIsRejectedNotCrashed) {
  const std::string deep = "{\"step\": 1, \"loss\": 2, \"x\": " + std::string(100000, '[') + "\n";
  const ParsedRun r = jsonl_run(deep);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.error, "runs/a/metrics.jsonl:1: JSON nested deeper than 64 levels");
  const ParsedRun c = jsonl_run(jsonl({{1, "3"}}), std::string(100000, '{'));
  EXPECT_EQ(c.error, "runs/a/config.json:0: JSON nested deeper than 64 levels");
}

// An independent scipy.ndimage.gaussian_filter1d(mode="reflect", truncate=4) at the last point.
static double scipy_style_last(const std::vector<double>& x, double sigma) {
  const int radius = static_cast<int>(4.0 * sigma + 0.5);
  const long n = static_cast<long>(x.size());
  double num = 0, den = 0;
  for (int k = -radius; k <= radius; ++k) {
    long j = n - 1 + k;
    if (j >= n) j = 2 * n - 1 - j;  // (... c d | d c ...)
    const double w = std::exp(-0.5 * k * k / (sigma * sigma));
    num += w * x[static_cast<std::size_t>(j)];
    den += w;
  }
  return num / den;
}

TEST(LogIngest, SmoothLossIsTheStepLawGaussianOfTheCurve) {
  // 250 points every 40 steps up to 10000: sigma = min(100, 0.01 * 10000) / 40 = 2.5 logged points.
  std::vector<std::pair<long, std::string>> pts;
  std::vector<double> loss;
  for (int i = 1; i <= 250; ++i) {
    const double l = 2.5 + 3.0 / std::sqrt(i) + 0.05 * ((i * 7919) % 13 - 6) / 6.0;
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.17g", l);
    pts.push_back({40L * i, buf});
    loss.push_back(l);
  }
  const ParsedRun r = jsonl_run(jsonl(pts));
  ASSERT_TRUE(r.ok) << r.error;
  const double expected = scipy_style_last(loss, 2.5);
  EXPECT_NEAR(r.record.outcome.smooth_loss, expected, 1e-12);
  EXPECT_NE(r.record.outcome.smooth_loss, r.record.outcome.final_loss);
  EXPECT_DOUBLE_EQ(r.record.outcome.final_loss, loss.back());
  EXPECT_DOUBLE_EQ(r.record.outcome.smooth_loss,
                   smoothed_final_loss(r.record.outcome.curve.step, r.record.outcome.curve.loss));
  // One point: the smooth loss is that point.
  const ParsedRun one = jsonl_run(jsonl({{5, "3.25"}}));
  EXPECT_DOUBLE_EQ(one.record.outcome.smooth_loss, 3.25);
}

TEST(LogIngest, IdIsTheCsvIngestContentHashAndStableAcrossVersions) {
  const std::string text = ramp(100, 2000, 100);
  const ParsedRun a = jsonl_run(text), b = jsonl_run(text);
  ASSERT_TRUE(a.ok) << a.error;
  EXPECT_NE(a.record.trial.id, 0u);
  EXPECT_EQ(a.record.trial.id, b.record.trial.id);
  EXPECT_EQ(a.record.trial.id, ingested_trial_id(a.record.trial.point, a.record.outcome.smooth_loss));
  // Re-ingesting a log into a file written by an earlier hpsweep relies on this exact id.
  // Pinned (this run: "ingest|N=2.1e+07;D=131072000;lr=0.001;batch=64;seq_len=1024;wd=0.05;repeat=0;
  // loss=2.4761900887309505"; the hash checked independently with Python FNV-1a-64).
  EXPECT_EQ(hex64(a.record.trial.id), "a1ac09e3e5588ff3");
  // Reference value computed independently (Python FNV-1a-64 of "ingest|<canonical coordinates>;loss=2.5").
  EXPECT_EQ(hex64(ingested_trial_id(TrialPoint{1e8, 2e9, 1e-3, 64, 2048, 0.1, 0}, 2.5)), "a8b4ed00e63033cb");
  const ParsedRun other = jsonl_run(text + "{\"step\": 2100, \"loss\": 2.1}\n");
  EXPECT_NE(a.record.trial.id, other.record.trial.id);
}

TEST(LogIngest, UnfinishedRunIsFlagged) {
  // train_steps 2000, logged every 100.
  const ParsedRun half = jsonl_run(ramp(100, 1000, 100));
  ASSERT_TRUE(half.ok) << half.error;
  EXPECT_FALSE(half.finished);
  EXPECT_EQ(half.record.outcome.state, TrialState::Done);  // unfinished is a flag, not a state
  EXPECT_EQ(half.target_step, 2000);
  EXPECT_DOUBLE_EQ(half.log_interval, 100);
  const ParsedRun almost = jsonl_run(ramp(100, 1800, 100));
  EXPECT_FALSE(almost.finished);  // 1800 < 2000 - 100
  const ParsedRun within = jsonl_run(ramp(100, 1900, 100));
  EXPECT_TRUE(within.finished);  // 1900 >= 2000 - 100
  const ParsedRun done = jsonl_run(ramp(100, 2000, 100));
  EXPECT_TRUE(done.finished);
  // The interval is the median spacing: one late straggler does not make a run finished.
  const ParsedRun odd = jsonl_run(jsonl({{10, "3"}, {20, "2.9"}, {30, "2.8"}, {1200, "2.7"}}));
  EXPECT_DOUBLE_EQ(odd.log_interval, 10);
  EXPECT_FALSE(odd.finished);
  // Megatron: the total of "iteration N/M" is the target.
  EXPECT_FALSE(megatron_run(megatron_log(100, 30000, 100, 66342)).finished);
}

TEST(LogIngest, BadRunsNeverCarryAHalfFilledRecord) {
  const std::vector<std::string> metrics = {"",
                                            "{",
                                            "{}\n",
                                            "{\"step\": -1, \"loss\": 3}\n",
                                            "{\"step\": 1e300, \"loss\": 3}\n",
                                            "{\"step\": 1, \"loss\": 1e999}\n",
                                            "{\"step\": 9007199254740993, \"loss\": 3}\n",
                                            "{\"step\": 1, \"loss\": 3}\n{\"step\": 1, \"loss\": 3}\n",
                                            "\x01\x02\x03\n",
                                            std::string("{\"step\"\0: 1}\n", 13)};
  for (const auto& m : metrics) {
    const ParsedRun r = jsonl_run(m);
    EXPECT_FALSE(r.ok) << m;
    EXPECT_CONSISTENT(r);
  }
  for (const std::string& name : {"", "_", "h_ffnh_numl_lr_bs", "x_h0_ffnh1_numl1_lr1e-3_bs1",
                                  "x_h1_ffnh1_numl1_lr0_bs1", "x_h99999999999999999999_ffnh1_numl1_lr1e-3_bs1"}) {
    const ParsedRun r = megatron_run(megatron_log(10, 100, 10, 100), name);
    EXPECT_FALSE(r.ok) << name;
    EXPECT_CONSISTENT(r);
  }
}

TEST(LogIngest, ExampleDirectoriesParse) {
  const fs::path examples = source_root() / "examples" / "ingest";
  const auto jsonl_dirs = find_run_directories((examples / "jsonl").string(), LogLayout::JsonLines);
  ASSERT_EQ(jsonl_dirs.size(), 1u);
  const ParsedRun j = parse_run_directory(jsonl_dirs[0], LogLayout::JsonLines, LogIngestOptions{});
  ASSERT_TRUE(j.ok) << j.error;
  EXPECT_CONSISTENT(j);
  EXPECT_TRUE(j.finished);
  EXPECT_EQ(j.record.outcome.state, TrialState::Done);
  EXPECT_EQ(j.record.outcome.curve.step.size(), 20u);
  EXPECT_DOUBLE_EQ(j.record.trial.point.lr, 1e-3);
  EXPECT_EQ(j.record.trial.point.batch, 64);
  EXPECT_EQ(j.record.source, "ingest:" + jsonl_dirs[0]);

  const auto megatron_dirs = find_run_directories((examples / "megatron").string(), LogLayout::Megatron);
  ASSERT_EQ(megatron_dirs.size(), 1u);
  EXPECT_EQ(fs::path(megatron_dirs[0]).filename(), kStepLawName);
  const ParsedRun m = parse_run_directory(megatron_dirs[0], LogLayout::Megatron, LogIngestOptions{});
  ASSERT_TRUE(m.ok) << m.error;
  EXPECT_CONSISTENT(m);
  EXPECT_TRUE(m.finished);
  EXPECT_EQ(m.record.outcome.state, TrialState::Done);
  EXPECT_EQ(m.record.outcome.curve.step.size(), 19u);
  EXPECT_DOUBLE_EQ(m.record.trial.point.params, 214663680.0);
  EXPECT_EQ(m.record.outcome.steps, 66342);
  EXPECT_NEAR(m.record.outcome.final_loss, 2.411551, 1e-12);
  EXPECT_EQ(m.bytes, fs::file_size(fs::path(megatron_dirs[0]) / "train.log"));
  // The whole examples tree holds one run of each layout.
  EXPECT_EQ(find_run_directories(examples.string(), LogLayout::JsonLines), jsonl_dirs);
  // Explicitly megatron, every *.log counts: torchtitan's train.log and W&B's logs/debug.log too
  // (auto tells them apart).
  const auto all_logs = find_run_directories(examples.string(), LogLayout::Megatron);
  EXPECT_EQ(all_logs, (std::vector<std::string>{
                          megatron_dirs[0], (examples / "torchtitan" / "llama_debug").string(),
                          (examples / "wandb" / "wandb" / "offline-run-20250110_100000-abc123" / "logs").string()}));
}

// The kept crashers and seeds of tests/fuzz/ replay in test_fuzz_corpus.cpp; here the example runs.
TEST(LogIngest, ExampleRunsAsFuzzInputsParseWithoutBrokenPromises) {
  std::vector<std::string> inputs;
  std::vector<std::string> names;
  // The example runs, as run_fuzz.sh seeds them.
  const fs::path examples = source_root() / "examples" / "ingest";
  auto slurp = [](const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
  };
  for (const auto& d : find_run_directories(examples.string(), LogLayout::JsonLines)) {
    inputs.push_back(make_fuzz_input(LogLayout::JsonLines, slurp(fs::path(d) / "metrics.jsonl"),
                                     slurp(fs::path(d) / "config.json"), ""));
    names.push_back(d);
  }
  for (const auto& d : find_run_directories(examples.string(), LogLayout::Megatron)) {
    inputs.push_back(
        make_fuzz_input(LogLayout::Megatron, slurp(fs::path(d) / "train.log"), "", fs::path(d).filename().string()));
    names.push_back(d);
  }
  ASSERT_GE(inputs.size(), 2u);
  std::size_t ok = 0;
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    ParsedRun r;
    ASSERT_NO_THROW(r = parse_fuzz_input(inputs[i])) << names[i];
    EXPECT_EQ(check_parsed_run(r), "") << names[i] << ": " << r.error;
    ok += r.ok;
  }
  EXPECT_GE(ok, 2u);  // at least the examples
  // The split itself.
  const ParsedRun split = parse_fuzz_input(
      make_fuzz_input(LogLayout::Megatron, megatron_log(10, 100, 10, 100), "", "r_h64_ffnh256_numl2_lr1e-3_bs32"));
  ASSERT_TRUE(split.ok) << split.error;
  EXPECT_EQ(split.record.source, "ingest:fuzz");
  EXPECT_FALSE(parse_fuzz_input("").ok);
  EXPECT_FALSE(parse_fuzz_input(std::string_view("M\0\0", 3)).ok);
}

// ---- directories ----------------------------------------------------------------------------

// For its lifetime, this thread obeys file permissions even as root: CAP_DAC_OVERRIDE and
// CAP_DAC_READ_SEARCH leave the effective set (they stay permitted, so they come back after).
class WithoutFilePermissionOverride {
 public:
  WithoutFilePermissionOverride() {
    if (geteuid() != 0) {
      applies_ = true;  // permissions already apply
      return;
    }
    if (syscall(SYS_capget, &header_, saved_) != 0) return;
    __user_cap_data_struct lowered[2] = {saved_[0], saved_[1]};
    lowered[0].effective &= ~((1u << CAP_DAC_OVERRIDE) | (1u << CAP_DAC_READ_SEARCH));
    dropped_ = applies_ = syscall(SYS_capset, &header_, lowered) == 0;
  }
  ~WithoutFilePermissionOverride() {
    if (dropped_) syscall(SYS_capset, &header_, saved_);
  }
  WithoutFilePermissionOverride(const WithoutFilePermissionOverride&) = delete;
  WithoutFilePermissionOverride& operator=(const WithoutFilePermissionOverride&) = delete;
  bool applies() const { return applies_; }

 private:
  __user_cap_header_struct header_{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct saved_[2] = {};
  bool applies_ = false, dropped_ = false;
};

class LogIngestDir : public TempDirTest {
 protected:
  void make_run(const std::string& rel, const std::map<std::string, std::string>& files) {
    fs::create_directories(path(rel));
    for (const auto& [name, text] : files) write_bytes(path(rel + "/" + name), text);
  }
};

TEST_F(LogIngestDir, MissingFilesAreReportedWithTheirPath) {
  make_run("a", {{"metrics.jsonl", ramp(10, 100, 10)}});
  const ParsedRun no_config = parse_run_directory(path("a"), LogLayout::JsonLines, {});
  EXPECT_FALSE(no_config.ok);
  EXPECT_CONSISTENT(no_config);
  EXPECT_EQ(no_config.error, path("a/config.json") + ":0: cannot read: no such file");
  make_run("b", {{"config.json", kConfig}});
  EXPECT_EQ(parse_run_directory(path("b"), LogLayout::JsonLines, {}).error,
            path("b/metrics.jsonl") + ":0: cannot read: no such file");
  EXPECT_EQ(parse_run_directory(path("nope"), LogLayout::JsonLines, {}).error, path("nope") + ":0: not a directory");
  fs::create_directories(path("c/metrics.jsonl"));
  EXPECT_EQ(parse_run_directory(path("c"), LogLayout::JsonLines, {}).error,
            path("c/metrics.jsonl") + ":0: cannot read: is a directory");
  make_run("e", {});
  EXPECT_EQ(parse_run_directory(path("e"), LogLayout::Megatron, {}).error,
            path("e") + ":0: no train.log or other *.log file");
}

TEST_F(LogIngestDir, UnreadableConfigIsReportedAsPermissionDeniedAlsoWhenRunAsRoot) {
  make_run("d", {{"metrics.jsonl", ramp(10, 100, 10)}, {"config.json", kConfig}});
  fs::permissions(path("d/config.json"), fs::perms::none);
  // Root reads any file through CAP_DAC_OVERRIDE: the suite runs as root, so drop it here.
  const WithoutFilePermissionOverride as_unprivileged;
  if (!as_unprivileged.applies()) GTEST_SKIP() << "running as root and cannot drop CAP_DAC_OVERRIDE";
  EXPECT_EQ(parse_run_directory(path("d"), LogLayout::JsonLines, {}).error,
            path("d/config.json") + ":0: cannot read: Permission denied");
}

TEST_F(LogIngestDir, MegatronDirectoryUsesTrainLogOrTheSingleLogFileAndTheDirectoryName) {
  const std::string name = "r_h64_ffnh256_numl2_lr1e-3_bs32_ti100";
  make_run(name, {{"slurm-123.log", megatron_log(10, 100, 10, 100)}});
  const ParsedRun one = parse_run_directory(path(name) + "/", LogLayout::Megatron, {});
  ASSERT_TRUE(one.ok) << one.error;
  EXPECT_EQ(one.record.source, "ingest:" + path(name));
  EXPECT_DOUBLE_EQ(one.record.trial.point.lr, 1e-3);
  make_run(name, {{"other.log", "nothing\n"}});
  const ParsedRun two = parse_run_directory(path(name), LogLayout::Megatron, {});
  EXPECT_FALSE(two.ok);
  EXPECT_EQ(two.error, path(name) + ":0: 2 *.log files and none is train.log (other.log, slurm-123.log)");
  make_run(name, {{"train.log", megatron_log(10, 50, 10, 100)}});
  const ParsedRun train = parse_run_directory(path(name), LogLayout::Megatron, {});
  ASSERT_TRUE(train.ok) << train.error;
  EXPECT_EQ(train.record.outcome.steps, 50);
  EXPECT_FALSE(train.finished);
  // A config.json next to the log wins over the name; an empty one is an error.
  make_run(name, {{"config.json", "  \n"}});
  EXPECT_EQ(parse_run_directory(path(name), LogLayout::Megatron, {}).error,
            path(name + "/config.json") + ":0: empty config (expected a JSON object with lr, batch, params)");
  make_run(name, {{"config.json", R"({"lr": 7e-4, "batch": 16, "params": 5e7})"}});
  const ParsedRun cfg = parse_run_directory(path(name), LogLayout::Megatron, {});
  ASSERT_TRUE(cfg.ok) << cfg.error;
  EXPECT_DOUBLE_EQ(cfg.record.trial.point.lr, 7e-4);
  EXPECT_EQ(cfg.bytes,
            megatron_log(10, 50, 10, 100).size() + std::string(R"({"lr": 7e-4, "batch": 16, "params": 5e7})").size());
}

TEST_F(LogIngestDir, FindRunDirectoriesListsRunsSorted) {
  make_run("sweep/b", {{"metrics.jsonl", ""}});
  make_run("sweep/a", {{"metrics.jsonl", ""}, {"train.log", ""}});
  make_run("sweep/a/nested", {{"metrics.jsonl", ""}});
  make_run("sweep/c", {{"notes.txt", ""}, {"x.log", ""}});
  make_run("sweep/d/metrics.jsonl", {});  // a directory named like the file does not count
  EXPECT_EQ(find_run_directories(path("sweep"), LogLayout::JsonLines),
            (std::vector<std::string>{path("sweep/a"), path("sweep/a/nested"), path("sweep/b")}));
  EXPECT_EQ(find_run_directories(path("sweep") + "/", LogLayout::Megatron),
            (std::vector<std::string>{path("sweep/a"), path("sweep/c")}));
  make_run("flat", {{"metrics.jsonl", ""}});
  EXPECT_EQ(find_run_directories(path("flat"), LogLayout::JsonLines), std::vector<std::string>{path("flat")});
  EXPECT_TRUE(find_run_directories(path("sweep/d"), LogLayout::Megatron).empty());
}

TEST_F(LogIngestDir, FindRunDirectoriesRefusesAMissingRoot) {
  EXPECT_THROW(find_run_directories(path("missing"), LogLayout::JsonLines), InputError);
  write_bytes(path("file"), "x");
  EXPECT_THROW(find_run_directories(path("file"), LogLayout::Megatron), InputError);
}

TEST_F(LogIngestDir, SameRunIngestedTwiceGetsTheSameIdFromAnyPath) {
  make_run("one/r", {{"metrics.jsonl", ramp(10, 100, 10)}, {"config.json", kConfig}});
  make_run("two/r", {{"metrics.jsonl", ramp(10, 100, 10)}, {"config.json", kConfig}});
  const ParsedRun a = parse_run_directory(path("one/r"), LogLayout::JsonLines, {});
  const ParsedRun b = parse_run_directory(path("two/r"), LogLayout::JsonLines, {});
  ASSERT_TRUE(a.ok && b.ok) << a.error << b.error;
  EXPECT_EQ(a.record.trial.id, b.record.trial.id);
  EXPECT_NE(a.record.source, b.record.source);
}

TEST(LogIngest, JsonLinesFastPathReadsEveryLineAsTheFullParserDoes) {
  // A nested value sends a line to the full parser (simdjson); without it the fast scanner reads it.
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"100", "3.25"},     {"100.0", "3.25"},    {"1e2", "-0.5e-3"}, {"\"100\"", "\"3.25\""}, {"100", "NaN"},
      {"100", "Infinity"}, {"100", "-Infinity"}, {"100", "null"},    {"100", "\"NULL\""},     {"100", "\"nan\""},
      {"-1", "3"},         {"100", "true"},      {"1.5", "3"},       {"100", "\"x\""},        {"9007199254740993", "3"},
      {"100", "1e400"},    {"0", "0"},           {"100", "01"},      {"100", "3."},           {"100", "NaNx"}};
  for (const auto& [step, loss] : cases) {
    const std::string line = "{\"step\": " + step + ", \"loss\": " + loss + ", \"lr\": 0.001}\n";
    const std::string nested = "{\"step\": " + step + ", \"loss\": " + loss + ", \"lr\": 0.001, \"n\": [1]}\n";
    const ParsedRun fast = jsonl_run(line), slow = jsonl_run(nested);
    EXPECT_EQ(fast.ok, slow.ok) << line << fast.error << " | " << slow.error;
    EXPECT_EQ(fast.error, slow.error) << line;
    if (fast.ok && slow.ok) {
      EXPECT_EQ(fast.record.outcome.curve.step, slow.record.outcome.curve.step) << line;
      EXPECT_EQ(fast.record.trial.id, slow.record.trial.id) << line;
    }
  }
  // Lines only the full parser accepts or rejects still read as before.
  EXPECT_FALSE(jsonl_run("{\"step\": 1, \"loss\": 2,}\n").ok);
  EXPECT_FALSE(jsonl_run("{\"step\": 1, \"loss\": 2} x\n").ok);
  EXPECT_TRUE(jsonl_run("{\"st\\u0065p\": 1, \"loss\": 2}\n").ok)
      << jsonl_run("{\"st\\u0065p\": 1, \"loss\": 2}\n").error;
}
