// Tests of the run layouts beyond jsonl and megatron (hpsweep/ingest/log_ingest.hpp): TensorBoard,
// Lightning CSVLogger, MLflow file store, HF Trainer and torchtitan stdout, --map and --layout auto.
// The files are examples/ingest/<layout>/, written by tests/scripts/ingest_fixtures.py (an
// independent Python writer); the tests here only damage, cut or move them.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "hpsweep/ingest/log_ingest.hpp"
#include "hpsweep/util/error.hpp"
#include "test_helpers.hpp"

using namespace hpsweep;
namespace fs = std::filesystem;

namespace {

fs::path examples() { return fs::path(__FILE__).parent_path().parent_path().parent_path() / "examples" / "ingest"; }

// The loss the fixture writer logs at `step` (tests/scripts/ingest_fixtures.py loss_at).
double loss_at(long step) { return 2.5 + 40.0 / (step + 20.0) + 0.01 * std::sin(static_cast<double>(step)); }
double as_float(double v) { return static_cast<double>(static_cast<float>(v)); }

fs::path wandb_dir() { return examples() / "wandb" / "wandb" / "offline-run-20250110_100000-abc123"; }
fs::path legacy_dir() { return examples() / "wandb" / "old" / "run-20200101_000000-old123"; }

#define EXPECT_CONSISTENT(run) EXPECT_EQ(check_parsed_run(run), "") << (run).error

class LogLayouts : public TempDirTest {
 protected:
  // A copy of an example run directory, to damage.
  std::string copy_example(const std::string& rel) {
    const std::string to = path(fs::path(rel).filename().string());
    fs::copy(examples() / rel, to, fs::copy_options::recursive);
    return to;
  }
  static std::string event_file(const std::string& dir) {
    for (const auto& e : fs::directory_iterator(dir))
      if (e.path().filename().string().rfind("events.out.tfevents.", 0) == 0) return e.path().string();
    return "";
  }
  // Start offsets of the TFRecords of `data` (read from the length fields).
  static std::vector<std::size_t> record_offsets(const std::string& data) {
    std::vector<std::size_t> out;
    for (std::size_t at = 0; at + 12 <= data.size();) {
      out.push_back(at);
      std::uint64_t len = 0;
      std::memcpy(&len, data.data() + at, 8);
      at += 16 + len;
    }
    return out;
  }
};

TEST_F(LogLayouts, TensorBoardEventFilesGiveTheLossCurveAndTheConfigsHyperparameters) {
  const std::string dir = (examples() / "tensorboard" / "run_lr1e-3").string();
  LogLayout layout{};
  ASSERT_TRUE(detect_layout(dir, layout));
  EXPECT_EQ(layout, LogLayout::TensorBoard);
  const ParsedRun r = parse_run_directory(dir, LogLayout::TensorBoard, LogIngestOptions{});
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_CONSISTENT(r);
  const auto& o = r.record.outcome;
  ASSERT_EQ(o.curve.step.size(), 20u);  // the train/lr scalars beside the loss are not the loss
  EXPECT_EQ(o.curve.step.front(), 10);
  EXPECT_EQ(o.steps, 200);
  EXPECT_DOUBLE_EQ(o.final_loss, as_float(loss_at(200)));  // simple_value is a float
  EXPECT_DOUBLE_EQ(o.curve.loss[4], as_float(loss_at(50)));
  const TrialPoint& p = r.record.trial.point;
  EXPECT_DOUBLE_EQ(p.lr, 1e-3);                   // optimizer.lr
  EXPECT_EQ(p.batch, 64);                         // data.global_batch_size
  EXPECT_EQ(p.seq_len, 1024);                     // data.seq_len
  EXPECT_DOUBLE_EQ(p.params, 2e7);                // model.params
  EXPECT_DOUBLE_EQ(p.wd, 0.05);                   // optimizer.weight_decay
  EXPECT_DOUBLE_EQ(p.tokens, 200.0 * 64 * 1024);  // trainer.max_steps x batch x seq_len
  EXPECT_TRUE(r.finished);
  EXPECT_EQ(r.record.source, "ingest:" + dir);
}

TEST_F(LogLayouts, TensorBoardScalarTensorsAndARunResumedIntoASecondFileRead) {
  const std::string dir = (examples() / "tensorboard" / "run_tensor_lr2e-3").string();
  const ParsedRun r = parse_run_directory(dir, LogLayout::Auto, LogIngestOptions{});
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_CONSISTENT(r);
  ASSERT_EQ(r.record.outcome.curve.step.size(), 20u);           // 10 records in each file
  EXPECT_DOUBLE_EQ(r.record.outcome.final_loss, loss_at(200));  // a double tensor keeps every bit
  EXPECT_DOUBLE_EQ(r.record.trial.point.lr, 2e-3);

  // A resumed run logs again from its checkpoint: the later file's values replace the earlier ones.
  const std::string copy = copy_example("tensorboard/run_tensor_lr2e-3");
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(copy))
    if (e.path().filename().string().rfind("events.", 0) == 0) files.push_back(e.path().string());
  std::sort(files.begin(), files.end());
  ASSERT_EQ(files.size(), 2u);
  const std::string first = read_bytes(files[0]), second = read_bytes(files[1]);
  write_bytes(files[1], first + second);  // the second file repeats steps 10..100 before its own
  const ParsedRun resumed = parse_run_directory(copy, LogLayout::TensorBoard, LogIngestOptions{});
  ASSERT_TRUE(resumed.ok) << resumed.error;
  EXPECT_EQ(resumed.record.outcome.curve.step, r.record.outcome.curve.step);
  EXPECT_EQ(resumed.record.trial.id, r.record.trial.id);  // same content, same id, any path
}

TEST_F(LogLayouts, TensorBoardDamagedRecordIsReportedByPathAndByteOffset) {
  const std::string dir = copy_example("tensorboard/run_lr1e-3");
  const std::string file = event_file(dir);
  const std::string good = read_bytes(file);
  const auto offsets = record_offsets(good);
  ASSERT_EQ(offsets.size(), 21u);  // file_version + 20 points

  std::string data = good;
  data[offsets[7] + 12 + 5] ^= 0x10;  // a bit of record 7's data
  write_bytes(file, data);
  ParsedRun r = parse_run_directory(dir, LogLayout::TensorBoard, LogIngestOptions{});
  ASSERT_FALSE(r.ok);
  EXPECT_CONSISTENT(r);
  EXPECT_EQ(r.error.rfind(file + ":" + std::to_string(offsets[7]) + ": damaged record: the CRC of its ", 0), 0u)
      << r.error;

  data = good;
  data[offsets[3] + 2] ^= 0x01;  // record 3's length field
  write_bytes(file, data);
  r = parse_run_directory(dir, LogLayout::TensorBoard, LogIngestOptions{});
  ASSERT_FALSE(r.ok);
  EXPECT_EQ(r.error,
            file + ":" + std::to_string(offsets[3]) + ": damaged record: the CRC of its length does not match");

  data = good;
  data[offsets[20] + 8] ^= 0x80;  // the length's CRC itself
  write_bytes(file, data);
  r = parse_run_directory(dir, LogLayout::TensorBoard, LogIngestOptions{});
  ASSERT_FALSE(r.ok);
  EXPECT_NE(r.error.find(":" + std::to_string(offsets[20]) + ": damaged record"), std::string::npos) << r.error;
}

TEST_F(LogLayouts, TensorBoardTruncatedRecordMakesTheRunBad) {
  const std::string dir = copy_example("tensorboard/run_lr1e-3");
  const std::string file = event_file(dir);
  const std::string good = read_bytes(file);
  const auto offsets = record_offsets(good);
  for (std::size_t cut : {good.size() - 1, good.size() - 4, offsets.back() + 13, offsets.back() + 5}) {
    write_bytes(file, good.substr(0, cut));
    const ParsedRun r = parse_run_directory(dir, LogLayout::TensorBoard, LogIngestOptions{});
    ASSERT_FALSE(r.ok) << cut;
    EXPECT_CONSISTENT(r);
    EXPECT_EQ(r.error.rfind(file + ":" + std::to_string(offsets.back()) + ": truncated record: ", 0), 0u) << r.error;
  }
}

TEST_F(LogLayouts, TensorBoardRunCutAtARecordBoundaryIsAGoodButUnfinishedRun) {
  const std::string dir = copy_example("tensorboard/run_lr1e-3");
  const std::string file = event_file(dir);
  const std::string good = read_bytes(file);
  write_bytes(file, good.substr(0, record_offsets(good)[11]));  // up to step 100 of 200
  const ParsedRun r = parse_run_directory(dir, LogLayout::TensorBoard, LogIngestOptions{});
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_CONSISTENT(r);
  EXPECT_EQ(r.record.outcome.steps, 100);
  EXPECT_FALSE(r.finished);
  EXPECT_EQ(r.target_step, 200);
  // An empty event file holds no loss.
  const ParsedRun junk = parse_tensorboard_run({RunFile{"x/events.out.tfevents.1", good.substr(0, 0), ""}},
                                               RunFile{"x/config.yaml", "lr: 1\n", ""}, LogIngestOptions{});
  EXPECT_FALSE(junk.ok);
  EXPECT_NE(junk.error.find("no loss values"), std::string::npos) << junk.error;
}

TEST_F(LogLayouts, LightningCsvSkipsValidationRowsAndReadsHparamsYaml) {
  const std::string dir = (examples() / "lightning" / "lightning_logs" / "version_0").string();
  const ParsedRun r = parse_run_directory(dir, LogLayout::Auto, LogIngestOptions{});
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_CONSISTENT(r);
  ASSERT_EQ(r.record.outcome.curve.step.size(), 20u);  // the val_loss rows have no train_loss
  EXPECT_DOUBLE_EQ(r.record.outcome.final_loss, loss_at(200));
  EXPECT_DOUBLE_EQ(r.record.trial.point.lr, 2e-3);
  EXPECT_EQ(r.record.trial.point.batch, 32);
  EXPECT_EQ(r.record.trial.point.seq_len, 512);
  EXPECT_DOUBLE_EQ(r.record.trial.point.params, 2e7);  // n_params
  EXPECT_TRUE(r.finished);

  const RunFile hparams{"v/hparams.yaml", "lr: 0.001\nbatch_size: 8\nn_params: 1.0e6\nmax_steps: 100\n", ""};
  // A last row without its newline that is cut short is still being written: dropped.
  ParsedRun cut = parse_lightning_run(RunFile{"v/metrics.csv", "epoch,step,train_loss\n0,10,3.5\n0,20,3.4\n0,30", ""},
                                      hparams, LogIngestOptions{});
  ASSERT_TRUE(cut.ok) << cut.error;
  EXPECT_EQ(cut.record.outcome.steps, 20);
  EXPECT_FALSE(cut.finished);
  // A ragged row that ends in a newline is an error with its line.
  ParsedRun ragged = parse_lightning_run(
      RunFile{"v/metrics.csv", "epoch,step,train_loss\n0,10,3.5\n0,20\n0,30,3.3\n", ""}, hparams, LogIngestOptions{});
  EXPECT_FALSE(ragged.ok);
  EXPECT_EQ(ragged.error, "v/metrics.csv:3: 2 cells, the header has 3");
  ParsedRun no_hparams =
      parse_lightning_run(RunFile{"v/metrics.csv", "step,train_loss\n10,3.5\n", ""}, RunFile{}, LogIngestOptions{});
  EXPECT_FALSE(no_hparams.ok);
  EXPECT_EQ(no_hparams.error, "v:0: no hparams.yaml beside metrics.csv");
}

TEST_F(LogLayouts, MlflowRunReadsMetricsAndParamsAndRefusesFailedOrDeletedRuns) {
  const std::string dir = (examples() / "mlflow" / "mlruns" / "1" / "0123456789abcdef0123456789abcdef").string();
  const ParsedRun r = parse_run_directory(dir, LogLayout::Auto, LogIngestOptions{});
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_CONSISTENT(r);
  ASSERT_EQ(r.record.outcome.curve.step.size(), 20u);
  EXPECT_DOUBLE_EQ(r.record.outcome.final_loss, loss_at(200));
  EXPECT_DOUBLE_EQ(r.record.trial.point.lr, 3e-3);
  EXPECT_EQ(r.record.trial.point.batch, 16);
  EXPECT_EQ(r.record.trial.point.seq_len, 256);

  const std::string copy = copy_example("mlflow/mlruns/1/0123456789abcdef0123456789abcdef");
  std::string meta = read_bytes(copy + "/meta.yaml");
  const std::string finished = "status: 3";
  ASSERT_NE(meta.find(finished), std::string::npos);
  write_bytes(copy + "/meta.yaml", std::string(meta).replace(meta.find(finished), finished.size(), "status: 4"));
  ParsedRun bad = parse_run_directory(copy, LogLayout::MLflow, LogIngestOptions{});
  EXPECT_FALSE(bad.ok);
  EXPECT_EQ(bad.error, copy + "/meta.yaml:0: the run ended FAILED (status: 4)");
  const std::string active = "lifecycle_stage: active";
  write_bytes(copy + "/meta.yaml",
              std::string(meta).replace(meta.find(active), active.size(), "lifecycle_stage: deleted"));
  bad = parse_run_directory(copy, LogLayout::MLflow, LogIngestOptions{});
  EXPECT_FALSE(bad.ok);
  EXPECT_NE(bad.error.find("deleted"), std::string::npos);
  // Several values at one step: the last one counts.
  write_bytes(copy + "/meta.yaml", meta);
  write_bytes(copy + "/metrics/loss", read_bytes(copy + "/metrics/loss") + "1700000000999 2.0 200\n");
  const ParsedRun again = parse_run_directory(copy, LogLayout::MLflow, LogIngestOptions{});
  ASSERT_TRUE(again.ok) << again.error;
  EXPECT_EQ(again.record.outcome.curve.step.size(), 20u);
  EXPECT_DOUBLE_EQ(again.record.outcome.final_loss, 2.0);
}

TEST_F(LogLayouts, HfTrainerReadsTheNewestCheckpointsLogHistory) {
  const std::string dir = (examples() / "hf-trainer" / "output_lr4e-3").string();
  const ParsedRun r = parse_run_directory(dir, LogLayout::Auto, LogIngestOptions{});
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_CONSISTENT(r);
  ASSERT_EQ(r.record.outcome.curve.step.size(), 20u);            // checkpoint-200, not checkpoint-100; no eval_loss
  EXPECT_NEAR(r.record.outcome.final_loss, loss_at(200), 5e-5);  // the Trainer rounds to 4 digits
  EXPECT_DOUBLE_EQ(r.record.trial.point.lr, 4e-3);               // learning_rate in config.yaml
  EXPECT_EQ(r.record.trial.point.batch, 48);
  EXPECT_EQ(r.target_step, 200);  // trainer_state max_steps
  EXPECT_EQ(r.record.source, "ingest:" + dir);

  // Without an lr in the config, the peak logged learning_rate; without params, a clear error.
  const std::string state = read_bytes(dir + "/checkpoint-100/trainer_state.json");
  const ParsedRun half =
      parse_hf_trainer_run(RunFile{"o/checkpoint-100/trainer_state.json", state, ""},
                           RunFile{"o/config.json", R"({"params": 1e6, "seq_len": 512})", ""}, LogIngestOptions{});
  ASSERT_TRUE(half.ok) << half.error;
  EXPECT_CONSISTENT(half);
  EXPECT_FALSE(half.finished);
  EXPECT_EQ(half.record.outcome.steps, 100);
  EXPECT_NEAR(half.record.trial.point.lr, 3e-4 * (1 - 10.0 / 201), 1e-12);
  EXPECT_EQ(half.record.trial.point.batch, 8);  // trainer_state train_batch_size
  EXPECT_EQ(half.record.source, "ingest:o");
  const ParsedRun none = parse_hf_trainer_run(RunFile{"o/checkpoint-100/trainer_state.json", state, ""},
                                              RunFile{"o/config.json", R"({"seq_len": 512})", ""}, LogIngestOptions{});
  EXPECT_FALSE(none.ok);
  EXPECT_EQ(
      none.error.rfind("o/config.json:0: no params (non-embedding parameters N) in the config: none of params,", 0), 0u)
      << none.error;
}

TEST_F(LogLayouts, TorchtitanStdoutWithAnsiColoursParses) {
  const std::string dir = (examples() / "torchtitan" / "llama_debug").string();
  LogLayout layout{};
  ASSERT_TRUE(detect_layout(dir, layout));
  EXPECT_EQ(layout, LogLayout::Torchtitan);  // a train.log, but not Megatron's
  const ParsedRun r = parse_run_directory(dir, LogLayout::Auto, LogIngestOptions{});
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_CONSISTENT(r);
  ASSERT_EQ(r.record.outcome.curve.step.size(), 20u);  // "validate step: N loss: X" lines skipped
  EXPECT_NEAR(r.record.outcome.final_loss, loss_at(200), 5e-5);
  EXPECT_DOUBLE_EQ(r.record.trial.point.lr, 5e-3);         // [optimizer] lr
  EXPECT_EQ(r.record.trial.point.batch, 64);               // [training] global_batch_size
  EXPECT_EQ(r.record.trial.point.seq_len, 2048);           // [training] seq_len
  EXPECT_DOUBLE_EQ(r.record.trial.point.params, 6139880);  // "size: 6,139,880 total parameters"
  EXPECT_TRUE(r.finished);

  const std::string log =
      "\x1b[31mstep:  1  \x1b[32mloss:  9.5000  \x1b[33mmemory: 1GiB\x1b[39m\n"
      "\x1b[31mstep:  2  \x1b[32mloss:  9.2500\x1b[39m\n"
      "\x1b[31mstep:  3  \x1b[32mloss:  9.1";  // still being written
  const RunFile config{"t/config.toml",
                       "[optimizer]\nlr = 1e-3\n[training]\nbatch_size = 4\nsteps = 10\n[model]\nparams = 1000\n", ""};
  const ParsedRun partial = parse_torchtitan_run(RunFile{"t/train.log", log, ""}, config, LogIngestOptions{});
  ASSERT_TRUE(partial.ok) << partial.error;
  EXPECT_EQ(partial.record.outcome.curve.loss, (std::vector<double>{9.5, 9.25}));
  EXPECT_FALSE(partial.finished);
  const ParsedRun bad_toml = parse_torchtitan_run(
      RunFile{"t/train.log", log, ""}, RunFile{"t/config.toml", "[optimizer\nlr = 1\n", ""}, LogIngestOptions{});
  EXPECT_FALSE(bad_toml.ok);
  EXPECT_EQ(bad_toml.error.rfind("t/config.toml:1: not valid TOML", 0), 0u) << bad_toml.error;
}

TEST_F(LogLayouts, WandbOfflineRunFileWithRecordsSpanningBlocksParses) {
  const std::string dir = wandb_dir().string();
  LogLayout layout{};
  ASSERT_TRUE(detect_layout(dir, layout));
  EXPECT_EQ(layout, LogLayout::Wandb);
  const ParsedRun r = parse_run_directory(dir, LogLayout::Auto, LogIngestOptions{});
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_CONSISTENT(r);
  ASSERT_EQ(r.record.outcome.curve.step.size(), 20u);  // history records; the summary is not a point
  EXPECT_DOUBLE_EQ(r.record.outcome.final_loss, loss_at(200));
  EXPECT_DOUBLE_EQ(r.record.trial.point.lr, 8e-3);  // the run record's config
  EXPECT_EQ(r.record.trial.point.batch, 64);
  EXPECT_DOUBLE_EQ(r.record.trial.point.wd, 0.05);  // optimizer: {weight_decay: 0.05} as nested JSON
  EXPECT_TRUE(r.finished);
  EXPECT_GT(fs::file_size(wandb_dir() / "run-abc123.wandb"), 32768u);  // a record in FIRST/MIDDLE/LAST

  const ParsedRun legacy = parse_run_directory(legacy_dir().string(), LogLayout::Wandb, LogIngestOptions{});
  ASSERT_TRUE(legacy.ok) << legacy.error;
  EXPECT_CONSISTENT(legacy);
  EXPECT_EQ(legacy.record.outcome.curve.step.size(), 20u);
  EXPECT_DOUBLE_EQ(legacy.record.trial.point.lr, 1e-2);  // config.yaml {desc: null, value: 0.01}
}

TEST_F(LogLayouts, WandbDamagedTruncatedOrFailedRunsAreBad) {
  const std::string dir = copy_example("wandb/wandb/offline-run-20250110_100000-abc123");
  const std::string file = dir + "/run-abc123.wandb";
  const std::string good = read_bytes(file);
  std::string data = good;
  data[40000] ^= 0x04;  // inside the long config record
  write_bytes(file, data);
  ParsedRun r = parse_run_directory(dir, LogLayout::Wandb, LogIngestOptions{});
  ASSERT_FALSE(r.ok);
  EXPECT_CONSISTENT(r);
  EXPECT_EQ(r.error.rfind(file + ":32768: damaged record: the CRC of its ", 0), 0u) << r.error;  // the MIDDLE/LAST
  write_bytes(file, good.substr(0, good.size() - 2));
  r = parse_run_directory(dir, LogLayout::Wandb, LogIngestOptions{});
  ASSERT_FALSE(r.ok);
  EXPECT_NE(r.error.find(": truncated record: "), std::string::npos) << r.error;
  write_bytes(file, "not a wandb file");
  r = parse_run_directory(dir, LogLayout::Wandb, LogIngestOptions{});
  ASSERT_FALSE(r.ok);
  EXPECT_EQ(r.error, file + ":0: not a W&B run file (no ':W&B' header)");
}

TEST_F(LogLayouts, TomlConfigsReadEveryKindOfValueAndRefuseBadOnes) {
  const std::string log = "step: 10  loss: 3.5\nstep: 20  loss: 3.25\n";
  const std::string toml = R"(# a comment
title = "a \"q\" \u00e9"   # trailing comment
[model]
params = 1_000_000
dims = [ 1, 2,
  [3, 4], ]  # multi-line, nested
[optimizer]
lr = 3e-4
betas = { b1 = 0.9, b2 = 0.95 }
[[schedule]]
steps = 10
[[schedule]]
steps = 20
[training]
"batch size" = 0x10
when = 1979-05-27 07:32:00Z
notes = """
line1
line2"""
path = 'C:\x'
flag = true
)";
  LogIngestOptions o;
  o.map = "lr=optimizer.lr,batch=training.batch size,steps=schedule.1.steps,wd=optimizer.betas.b2";
  const ParsedRun r = parse_torchtitan_run(RunFile{"t/train.log", log, ""}, RunFile{"t/config.toml", toml, ""}, o);
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_CONSISTENT(r);
  EXPECT_DOUBLE_EQ(r.record.trial.point.lr, 3e-4);
  EXPECT_EQ(r.record.trial.point.batch, 16);
  EXPECT_DOUBLE_EQ(r.record.trial.point.params, 1e6);
  EXPECT_DOUBLE_EQ(r.record.trial.point.wd, 0.95);
  EXPECT_EQ(r.target_step, 20);
  EXPECT_TRUE(r.finished);
  for (const auto& [bad, line] : std::vector<std::pair<std::string, int>>{{"a = 1\na = 2\n", 2},
                                                                          {"[\n\n[model]\n", 1},
                                                                          {"a = \"open\n", 1},
                                                                          {"x = [1, 2\n", 2},
                                                                          {"a = 1 b\n", 1},
                                                                          {"a = nope\n", 1},
                                                                          {"a = 1__0\n", 1}}) {
    const ParsedRun b = parse_torchtitan_run(RunFile{"t/train.log", log, ""}, RunFile{"t/config.toml", bad, ""}, o);
    ASSERT_FALSE(b.ok) << bad;
    EXPECT_CONSISTENT(b);
    EXPECT_EQ(b.error.rfind("t/config.toml:" + std::to_string(line) + ": not valid TOML: ", 0), 0u) << b.error;
  }
}

TEST_F(LogLayouts, MapNamesConfigKeysAndTheLossTagAndBatchMayCountTokens) {
  const RunFile csv{"v/metrics.csv", "step,train_loss,my_loss\n10,3.5,1.5\n20,3.4,1.4\n", ""};
  const RunFile hparams{"v/hparams.yaml",
                        "opt:\n  peak: 0.002\n  lr: 0.1\nmodel:\n  n: 5.0e6\ndata:\n  tokens_per_batch: 8192\n  "
                        "ctx: 1024\nrun:\n  iters: 20\n",
                        ""};
  LogIngestOptions o;
  o.map = "lr=opt.peak,batch=data.tokens_per_batch,params=model.n,steps=run.iters,seq_len=data.ctx,loss=my_loss";
  o.batch_in_tokens = true;
  const ParsedRun r = parse_lightning_run(csv, hparams, o);
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_CONSISTENT(r);
  EXPECT_DOUBLE_EQ(r.record.trial.point.lr, 0.002);
  EXPECT_EQ(r.record.trial.point.batch, 8);  // 8192 tokens / 1024
  EXPECT_DOUBLE_EQ(r.record.outcome.final_loss, 1.4);
  EXPECT_TRUE(r.finished);

  o.map = "lr=opt.missing";
  const ParsedRun missing = parse_lightning_run(csv, hparams, o);
  EXPECT_FALSE(missing.ok);
  EXPECT_EQ(missing.error, "v/hparams.yaml:0: no \"opt.missing\" in the config (from --map lr=opt.missing)");
  EXPECT_THROW(check_hyper_map("lr=a,learnrate=b"), InputError);
  EXPECT_THROW(check_hyper_map("lr="), InputError);
  EXPECT_NO_THROW(check_hyper_map("lr=a.b,loss=train/loss"));
  // By default a key that is the tail of exactly one path counts; two candidates are ambiguous.
  o = LogIngestOptions{};
  const ParsedRun ambiguous = parse_lightning_run(csv, hparams, o);
  EXPECT_FALSE(ambiguous.ok);
  EXPECT_NE(ambiguous.error.find("no params"), std::string::npos) << ambiguous.error;
}

TEST_F(LogLayouts, AutoFindsAndDetectsEveryExampleRunOnce) {
  const auto dirs = find_run_directories(examples().string(), LogLayout::Auto);
  std::map<LogLayout, int> count;
  for (const auto& d : dirs) {
    LogLayout l{};
    ASSERT_TRUE(detect_layout(d, l)) << d;
    ++count[l];
    const ParsedRun r = parse_run_directory(d, LogLayout::Auto, LogIngestOptions{});
    EXPECT_TRUE(r.ok) << d << ": " << r.error;
    EXPECT_CONSISTENT(r);
  }
  EXPECT_EQ(dirs.size(), 10u);  // W&B's logs/debug.log is part of its run, not a run
  EXPECT_EQ(count[LogLayout::TensorBoard], 2);
  EXPECT_EQ(count[LogLayout::Wandb], 2);
  for (LogLayout l : {LogLayout::JsonLines, LogLayout::Megatron, LogLayout::Lightning, LogLayout::MLflow,
                      LogLayout::HfTrainer, LogLayout::Torchtitan})
    EXPECT_EQ(count[l], 1) << to_string(l);
  // Every name parses back; a near miss gets a suggestion.
  for (const char* n :
       {"auto", "jsonl", "megatron", "tensorboard", "lightning", "mlflow", "hf-trainer", "torchtitan", "wandb"})
    EXPECT_STREQ(to_string(parse_layout(n)), n);
  try {
    parse_layout("tensorbord");
    FAIL();
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("did you mean 'tensorboard'"), std::string::npos);
  }
}

TEST_F(LogLayouts, FuzzInputsOfTheNewLayoutsKeepTheParsersPromises) {
  const fs::path ex = examples();
  const std::string tb = read_bytes(event_file((ex / "tensorboard" / "run_lr1e-3").string()));
  const std::string tb_config = read_bytes((ex / "tensorboard" / "run_lr1e-3" / "config.yaml").string());
  const fs::path ml = ex / "mlflow" / "mlruns" / "1" / "0123456789abcdef0123456789abcdef";
  std::string params;
  for (const char* k : {"lr", "batch_size", "params", "max_steps", "seq_len"})
    params += std::string(k) + " " + read_bytes((ml / "params" / k).string()) + "\n";
  const std::vector<std::string> inputs = {
      make_fuzz_input(LogLayout::TensorBoard, tb, tb_config, "config.yaml"),
      make_fuzz_input(LogLayout::Lightning,
                      read_bytes((ex / "lightning" / "lightning_logs" / "version_0" / "metrics.csv").string()),
                      read_bytes((ex / "lightning" / "lightning_logs" / "version_0" / "hparams.yaml").string()), ""),
      make_fuzz_input(LogLayout::MLflow, read_bytes((ml / "metrics" / "loss").string()),
                      read_bytes((ml / "meta.yaml").string()), params),
      make_fuzz_input(
          LogLayout::HfTrainer,
          read_bytes((ex / "hf-trainer" / "output_lr4e-3" / "checkpoint-200" / "trainer_state.json").string()),
          read_bytes((ex / "hf-trainer" / "output_lr4e-3" / "config.yaml").string()), "config.yaml"),
      make_fuzz_input(LogLayout::Torchtitan, read_bytes((ex / "torchtitan" / "llama_debug" / "train.log").string()),
                      read_bytes((ex / "torchtitan" / "llama_debug" / "config.toml").string()), "config.toml"),
      make_fuzz_input(LogLayout::Wandb, read_bytes((wandb_dir() / "run-abc123.wandb").string()), "", ""),
      make_fuzz_input(LogLayout::Wandb, read_bytes((legacy_dir() / "wandb-history.jsonl").string()),
                      read_bytes((legacy_dir() / "config.yaml").string()), ""),
  };
  for (const auto& in : inputs) {
    const ParsedRun r = parse_fuzz_input(in);
    EXPECT_TRUE(r.ok) << in.front() << ": " << r.error;
    EXPECT_CONSISTENT(r);
    // Every prefix is a well-formed answer too: good, or bad with "where:offset: reason".
    for (std::size_t cut = 1; cut < in.size(); cut += 1 + in.size() / 97) {
      const ParsedRun p = parse_fuzz_input(std::string_view(in).substr(0, cut));
      EXPECT_CONSISTENT(p);
    }
  }
}

}  // namespace
