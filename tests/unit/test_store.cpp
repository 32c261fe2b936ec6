#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <set>

#include "hpsweep/backends/surrogate.hpp"
#include "hpsweep/ingest/ingest.hpp"
#include "hpsweep/spec/job.hpp"
#include "hpsweep/store/hdf5_store.hpp"
#include "hpsweep/store/journal.hpp"
#include "hpsweep/store/sweep_store.hpp"
#include "hpsweep/util/error.hpp"
#include "hpsweep/version.hpp"
#include "test_helpers.hpp"

using namespace hpsweep;

namespace {
const std::string kJob = R"([sweep]
name = store
[scales]
params = 1e7, 3e7
tokens = 1e9
[grid]
lr = 1e-3, 3e-3, 1e-2
batch = 32, 64
[backend]
kind = surrogate
)";

TrialRecord run_one(const Trial& t) {
  SurrogateBackend b{SurrogateParams{}};
  TrialRecord r;
  r.trial = t;
  r.outcome = b.run(t);
  r.rank = 1;
  r.host = "node-a";
  r.wall_time = 0.5;
  r.start_time = 1.7e9;
  return r;
}

class SweepStoreTest : public TempDirTest {
 protected:
  JobSpec job = parse_job(kJob, "store.ini");
  std::vector<Trial> grid = expand_grid(job);
  SweepStore open(const JobSpec& j, StoreOptions o = {}) {
    return SweepStore::open_for_run(path("s.h5"), j, expand_grid(j), o, LaunchRecord{});
  }
};
}  // namespace

TEST_F(SweepStoreTest, JournalRoundTripKeepsEveryField) {
  SweepLog header;
  header.schema_version = kSchemaVersion;
  header.tool_version = "tool-9.8.7";
  header.created = 1.7e9 + 0.25;
  header.job_path = "/jobs/store.ini";
  header.job_text = kJob;
  // Every field set to a value unlike its default, so a field dropped by encode or decode shows.
  TrialRecord r;
  r.trial.id = 0x0123456789abcdefULL;
  r.trial.point = TrialPoint{1.5e7, 2.5e9, 3.25e-3, 48, 1024, 0.125, 3, "mup"};
  r.outcome.state = TrialState::Diverged;
  r.outcome.final_loss = 2.75;
  r.outcome.smooth_loss = 2.8125;
  r.outcome.steps = 777;
  r.outcome.curve.step = {10, 20, 777};
  r.outcome.curve.loss = {4.5, 3.25, 2.75};
  r.outcome.error = "loss became NaN at step 777";
  r.outcome.details = R"({"mult":2})";
  r.start_time = 1.7e9 + 0.5;
  r.wall_time = 12.375;
  r.rank = 5;
  r.host = "node-a";
  r.attempt = 4;
  r.launch = 2;
  r.source = "ingest:runs.csv:17";
  r.finished = false;
  const LaunchRecord launch{2, 1.7e9 + 1, 1.7e9 + 99, 16, "a,b,c", "4242", 3, "hpsweep run x.ini", "interrupted", 41};
  FitRecord fit;
  fit.name = "steplaw";
  fit.kind = ResultKind::Transfer;
  fit.options = "select=within:1%;boot=100";
  fit.created = 1.7e9 + 2.5;
  fit.json = R"({"laws":[]})";
  fit.coefficients = {FitCoefficient{"lr", "alpha", -0.25, -0.24, -0.245, -0.3, -0.2}};
  fit.points = {FitPoint{1e7, 2e9, 3e-3, 65536, 0.1, 2.5}};
  fit.results = 11;
  {
    JournalWriter w = JournalWriter::create(path("j"), header);
    w.append_launch_begin(launch);
    w.append_dispatch(DispatchRecord{grid[1].id, 2, 7, 1.7e9 + 3});
    w.append_result(r);
    w.append_fit(fit);
    w.sync();
  }
  const JournalContents c = read_journal(path("j"));
  EXPECT_EQ(c.records, 5u);
  EXPECT_FALSE(c.torn_tail);
  EXPECT_FALSE(c.damaged);
  EXPECT_EQ(c.log.schema_version, kSchemaVersion);
  EXPECT_EQ(c.log.tool_version, "tool-9.8.7");
  EXPECT_EQ(c.log.created, 1.7e9 + 0.25);
  EXPECT_EQ(c.log.job_path, "/jobs/store.ini");
  EXPECT_EQ(c.log.job_text, kJob);

  ASSERT_EQ(c.log.results.size(), 1u);
  const TrialRecord& back = c.log.results[0];
  EXPECT_EQ(back.trial.id, r.trial.id);
  EXPECT_EQ(back.trial.point.params, 1.5e7);
  EXPECT_EQ(back.trial.point.tokens, 2.5e9);
  EXPECT_EQ(back.trial.point.lr, 3.25e-3);
  EXPECT_EQ(back.trial.point.batch, 48);
  EXPECT_EQ(back.trial.point.seq_len, 1024);
  EXPECT_EQ(back.trial.point.wd, 0.125);
  EXPECT_EQ(back.trial.point.repeat, 3);
  EXPECT_EQ(back.trial.point.variant, "mup");
  EXPECT_EQ(back.outcome.state, TrialState::Diverged);
  EXPECT_EQ(back.outcome.final_loss, 2.75);
  EXPECT_EQ(back.outcome.smooth_loss, 2.8125);
  EXPECT_EQ(back.outcome.steps, 777);
  EXPECT_EQ(back.outcome.curve.step, r.outcome.curve.step);
  EXPECT_EQ(back.outcome.curve.loss, r.outcome.curve.loss);
  EXPECT_EQ(back.outcome.error, r.outcome.error);
  EXPECT_EQ(back.outcome.details, r.outcome.details);
  EXPECT_EQ(back.start_time, r.start_time);
  EXPECT_EQ(back.wall_time, 12.375);
  EXPECT_EQ(back.rank, 5);
  EXPECT_EQ(back.host, "node-a");
  EXPECT_EQ(back.attempt, 4);
  EXPECT_EQ(back.launch, 2);
  EXPECT_EQ(back.source, "ingest:runs.csv:17");
  EXPECT_FALSE(back.finished);

  ASSERT_EQ(c.log.launches.size(), 3u);  // indexed by launch.index
  const LaunchRecord& l = c.log.launches[2];
  EXPECT_EQ(l.index, 2);
  EXPECT_EQ(l.start_time, 1.7e9 + 1);
  EXPECT_EQ(l.end_time, 1.7e9 + 99);
  EXPECT_EQ(l.ranks, 16);
  EXPECT_EQ(l.hosts, "a,b,c");
  EXPECT_EQ(l.slurm_job_id, "4242");
  EXPECT_EQ(l.slurm_restart_count, 3);
  EXPECT_EQ(l.command, "hpsweep run x.ini");
  EXPECT_EQ(l.ended, "interrupted");
  EXPECT_EQ(l.trials_recorded, 41);

  ASSERT_EQ(c.log.in_flight.count(grid[1].id), 1u);
  const DispatchRecord& d = c.log.in_flight.at(grid[1].id);
  EXPECT_EQ(d.launch, 2);
  EXPECT_EQ(d.rank, 7);
  EXPECT_EQ(d.time, 1.7e9 + 3);

  ASSERT_EQ(c.log.fits.size(), 1u);
  const FitRecord& f = c.log.fits[0];
  EXPECT_EQ(f.name, "steplaw");
  EXPECT_EQ(f.kind, ResultKind::Transfer);
  EXPECT_EQ(f.options, fit.options);
  EXPECT_EQ(f.created, 1.7e9 + 2.5);
  EXPECT_EQ(f.json, fit.json);
  ASSERT_EQ(f.coefficients.size(), 1u);
  EXPECT_EQ(f.coefficients[0].law, "lr");
  EXPECT_EQ(f.coefficients[0].name, "alpha");
  EXPECT_EQ(f.coefficients[0].estimate, -0.25);
  EXPECT_EQ(f.coefficients[0].mean, -0.24);
  EXPECT_EQ(f.coefficients[0].median, -0.245);
  EXPECT_EQ(f.coefficients[0].lo, -0.3);
  EXPECT_EQ(f.coefficients[0].hi, -0.2);
  ASSERT_EQ(f.points.size(), 1u);
  EXPECT_EQ(f.points[0].params, 1e7);
  EXPECT_EQ(f.points[0].tokens, 2e9);
  EXPECT_EQ(f.points[0].lr, 3e-3);
  EXPECT_EQ(f.points[0].batch_tokens, 65536);
  EXPECT_EQ(f.points[0].wd, 0.1);
  EXPECT_EQ(f.points[0].loss, 2.5);
  EXPECT_EQ(f.results, 11u);
}

namespace {
// Where record `n` (0 = the header) of a journal starts: frames are u32 length | u8 type | payload | u32 crc.
std::size_t record_offset(const std::string& journal, int n) {
  std::size_t pos = 8;  // magic
  for (int i = 0; i < n; ++i) {
    std::uint32_t len;
    std::memcpy(&len, journal.data() + pos, 4);
    pos += 4 + 1 + len + 4;
  }
  return pos;
}
}  // namespace

namespace {
// Results unlike each other in every field a batch could mix up between neighbours.
std::vector<TrialRecord> distinct_results(std::size_t n) {
  std::vector<TrialRecord> out(n);
  for (std::size_t i = 0; i < n; ++i) {
    TrialRecord& r = out[i];
    r.trial.id = 0x9e3779b97f4a7c15ULL * (i + 1);
    r.trial.point = TrialPoint{1e7 + i,
                               2e9 + 3.0 * i,
                               1e-3 + 1e-7 * i,
                               static_cast<std::int64_t>(16 + i % 7),
                               2048,
                               0.1,
                               static_cast<std::int32_t>(i % 3),
                               i % 5 ? "" : "mup"};
    r.outcome.state = i % 4 ? TrialState::Done : TrialState::Diverged;
    r.outcome.final_loss = 3.0 - 1e-6 * i;
    r.outcome.smooth_loss = 3.1 - 1e-6 * i;
    r.outcome.steps = static_cast<std::int64_t>(100 + i);
    if (i % 9 == 0) {
      r.outcome.curve.step = {1, 2, static_cast<std::int64_t>(100 + i)};
      r.outcome.curve.loss = {5.0, 4.0, 3.0 - 1e-6 * i};
    }
    r.outcome.error = i % 4 ? "" : "loss " + std::to_string(i) + " above the divergence rule";
    r.source = "ingest:big.csv:" + std::to_string(i + 2);
    r.attempt = 1;
  }
  return out;
}
std::string encoded(const TrialRecord& r) {
  ByteWriter w;
  encode(w, r);
  return w.take();
}
}  // namespace

TEST_F(SweepStoreTest, ResultBatchesReadBackEveryResultBitForBitInOrder) {
  SweepLog header;
  header.schema_version = kSchemaVersion;
  header.job_text = kJob;
  const auto results = distinct_results(2 * JournalWriter::kResultsPerBatch + 5);
  {
    JournalWriter w = JournalWriter::create(path("j"), header);
    w.append_results(results.data(), results.size());
    w.sync();
  }
  const JournalContents c = read_journal(path("j"));
  EXPECT_EQ(c.records, 4u) << "a header and three batches";
  EXPECT_FALSE(c.damaged);
  ASSERT_EQ(c.log.results.size(), results.size());
  for (std::size_t i = 0; i < results.size(); ++i)
    ASSERT_EQ(encoded(c.log.results[i]), encoded(results[i])) << "result " << i << " differs after its batch";
}

TEST_F(SweepStoreTest, ADamagedBatchLosesOnlyItsOwnResultsFromTheJournal) {
  SweepLog header;
  header.schema_version = kSchemaVersion;
  header.job_text = kJob;
  const auto results = distinct_results(3 * JournalWriter::kResultsPerBatch);
  {
    JournalWriter w = JournalWriter::create(path("j"), header);
    w.append_results(results.data(), results.size());
    w.sync();
  }
  std::string bytes = read_bytes(path("j"));
  bytes[bytes.size() / 2] ^= 0x10;  // inside the middle batch
  write_bytes(path("j"), bytes);
  const JournalContents c = read_journal(path("j"));
  EXPECT_TRUE(c.damaged);
  EXPECT_FALSE(c.torn_tail);
  EXPECT_EQ(c.log.results.size(), 2 * JournalWriter::kResultsPerBatch) << "the batches before and after it are read";
}

TEST_F(SweepStoreTest, AByteFlippedInsideARecordPayloadIsDetectedByItsCrcNotReadAsData) {
  SweepLog header;
  header.job_text = kJob;
  {
    JournalWriter w = JournalWriter::create(path("j"), header);
    for (int i = 0; i < 3; ++i) w.append_result(run_one(grid[i]));
    w.sync();
  }
  const std::string good = read_bytes(path("j"));
  ASSERT_EQ(good.compare(0, 8, "HPSWJNL1"), 0) << "record_offset assumes the 8-byte magic";
  for (int damaged_record : {2, 3}) {  // a middle record (damage) and the final one (a torn tail)
    std::string bytes = good;
    const std::size_t at = record_offset(bytes, damaged_record);
    std::uint32_t len;
    std::memcpy(&len, bytes.data() + at, 4);
    // The last byte of the stored final loss (after id, 6 coordinates, repeat and state): the
    // length and the frame stay intact, only the CRC can tell; without it the record would
    // decode to a different loss.
    const std::size_t final_loss_end = 7 * 8 + 4 + 1 + 8;
    ASSERT_LT(final_loss_end, len);
    bytes[at + 5 + final_loss_end - 1] ^= 0x01;
    write_bytes(path("j-bad"), bytes);
    const JournalContents c = read_journal(path("j-bad"));
    EXPECT_EQ(c.damaged, damaged_record == 2) << "record " << damaged_record;
    EXPECT_EQ(c.torn_tail, damaged_record == 3) << "record " << damaged_record;
    if (damaged_record == 2) EXPECT_EQ(c.damage_offset, at);
    EXPECT_EQ(c.log.results.size(), 2u) << "record " << damaged_record << " was read despite its bad CRC";
    for (const auto& back : c.log.results) {
      EXPECT_NE(back.trial.id, grid[damaged_record - 1].id);
      EXPECT_EQ(back.outcome.final_loss, run_one(back.trial).outcome.final_loss);
    }
  }
}

TEST_F(SweepStoreTest, TornJournalTailIsDiscardedNotFatal) {
  SweepLog header;
  header.job_text = kJob;
  {
    JournalWriter w = JournalWriter::create(path("j"), header);
    w.append_result(run_one(grid[0]));
    w.append_result(run_one(grid[1]));
    w.sync();
  }
  std::string bytes = read_bytes(path("j"));
  write_bytes(path("j"), bytes.substr(0, bytes.size() - 7));  // a kill in the middle of a write
  const JournalContents c = read_journal(path("j"));
  EXPECT_TRUE(c.torn_tail);
  EXPECT_EQ(c.log.results.size(), 1u);
}

TEST_F(SweepStoreTest, Hdf5SnapshotRoundTrip) {
  SweepLog log;
  log.schema_version = kSchemaVersion;
  log.tool_version = "x";
  log.job_text = kJob;
  log.launches.push_back(LaunchRecord{0, 1.0, 2.0, 4, "a,b", "123", 1, "cmd", "completed", 2});
  log.add_result(run_one(grid[0]));
  TrialRecord failed = run_one(grid[1]);
  failed.outcome = TrialOutcome{};
  failed.outcome.state = TrialState::Failed;
  failed.outcome.error = "boom: CUDA out of memory";
  log.add_result(failed);
  Hdf5Store::write_snapshot(path("s.h5"), log, grid, 7);
  const StoreContents c = read_store(path("s.h5"));
  EXPECT_EQ(c.journal_records, 7u);
  EXPECT_EQ(c.log.job_text, kJob);
  ASSERT_EQ(c.log.results.size(), 2u);
  EXPECT_EQ(c.log.results[0].outcome.curve.loss, log.results[0].outcome.curve.loss);
  EXPECT_EQ(c.log.results[0].outcome.smooth_loss, log.results[0].outcome.smooth_loss);
  EXPECT_EQ(c.log.results[1].outcome.state, TrialState::Failed);
  EXPECT_EQ(c.log.results[1].outcome.error, "boom: CUDA out of memory");
  ASSERT_EQ(c.log.launches.size(), 1u);
  EXPECT_EQ(c.log.launches[0].slurm_job_id, "123");
  EXPECT_EQ(c.log.launches[0].hosts, "a,b");
}

TEST_F(SweepStoreTest, ResumeSkipsFinishedTrials) {
  {
    SweepStore s = open(job);
    EXPECT_EQ(s.to_run().size(), grid.size());
    for (int i = 0; i < 5; ++i) s.record_result(run_one(s.to_run()[i]));
    s.finish("completed");
  }
  SweepStore s = open(job);
  EXPECT_EQ(s.to_run().size(), grid.size() - 5);
  EXPECT_EQ(s.log().launches.size(), 2u);
  std::set<TrialId> done;
  for (const auto& r : s.log().results) done.insert(r.trial.id);
  for (const auto& t : s.to_run()) EXPECT_EQ(done.count(t.id), 0u);
}

TEST_F(SweepStoreTest, KilledRunLosesNothingAndRerunsInFlightTrialsAsNewAttempts) {
  std::vector<double> losses;
  {
    SweepStore s = open(job);
    for (int i = 0; i < 3; ++i) {
      s.record_dispatch(s.to_run()[i].id, 1);
      s.record_result(run_one(s.to_run()[i]));
      losses.push_back(s.log().results.back().outcome.final_loss);
    }
    s.record_dispatch(s.to_run()[3].id, 2);  // running when the kill comes
    s.checkpoint();
    // No finish(): the destructor only flushes what a kill -9 would have left behind.
  }
  SweepStore s = open(job);
  ASSERT_EQ(s.log().launches.size(), 2u);
  EXPECT_EQ(s.log().launches[0].ended, "killed");
  ASSERT_EQ(s.log().results.size(), 4u);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(s.log().results[i].outcome.final_loss, losses[i]);
  EXPECT_EQ(s.log().results[3].outcome.state, TrialState::Lost);
  EXPECT_EQ(s.to_run().size(), grid.size() - 3);
  TrialRecord rerun = run_one(s.log().results[3].trial);
  s.record_result(rerun);
  EXPECT_EQ(s.log().results.back().attempt, 2);
  s.finish("completed");
  // The HDF5 file was rebuilt from the journal and holds everything.
  EXPECT_EQ(read_store(path("s.h5")).log.results.size(), 5u);
}

TEST_F(SweepStoreTest, DifferentJobIsRefusedWithTheDifferenceAndFileUntouched) {
  { open(job).finish("completed"); }
  const std::string before = read_bytes(path("s.h5")), jbefore = read_bytes(path("s.h5.journal"));
  JobSpec other = parse_job(kJob + "[surrogate]\nnoise = 0.05\n", "other.ini");
  try {
    open(other);
    FAIL() << "a different job must be refused";
  } catch (const StoreRefused& e) {
    EXPECT_NE(std::string(e.what()).find("surrogate.noise: stored 0.001, now 0.05"), std::string::npos) << e.what();
  }
  EXPECT_EQ(read_bytes(path("s.h5")), before);
  EXPECT_EQ(read_bytes(path("s.h5.journal")), jbefore);
}

TEST_F(SweepStoreTest, AddedGridPointsNeedExtendAndTheRefusalLeavesTheFinishedSweepByteIdentical) {
  {
    SweepStore s = open(job);
    for (const auto& t : std::vector<Trial>(s.to_run())) s.record_result(run_one(t));
    s.finish("completed");
  }
  const std::string before = read_bytes(path("s.h5")), jbefore = read_bytes(path("s.h5.journal"));
  std::string text = kJob;
  text.replace(text.find("batch = 32, 64"), 14, "batch = 32, 64, 128");
  const JobSpec bigger = parse_job(text, "bigger.ini");
  try {
    open(bigger);
    FAIL() << "adding points without --extend must be refused";
  } catch (const StoreRefused& e) {
    EXPECT_NE(std::string(e.what()).find("adds 6 grid points"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("--extend"), std::string::npos);
  }
  EXPECT_EQ(read_bytes(path("s.h5")), before) << "a refused --extend must not touch the HDF5 file";
  EXPECT_EQ(read_bytes(path("s.h5.journal")), jbefore) << "a refused --extend must not touch the journal";
  StoreOptions o;
  o.extend = true;
  SweepStore s = open(bigger, o);
  EXPECT_EQ(s.to_run().size(), 6u) << "only the added points run; the 12 finished ones are kept";
  for (const auto& t : s.to_run()) EXPECT_EQ(t.point.batch, 128);
  EXPECT_EQ(s.log().results.size(), 12u);
  for (const auto& r : s.log().results) EXPECT_EQ(r.outcome.final_loss, run_one(r.trial).outcome.final_loss);
  EXPECT_EQ(s.log().job_text, text);
}

TEST_F(SweepStoreTest, RemovedGridPointsAreRefusedAndTheFinishedSweepStaysByteIdentical) {
  {
    SweepStore s = open(job);
    for (const auto& t : std::vector<Trial>(s.to_run())) s.record_result(run_one(t));
    s.finish("completed");
  }
  const std::string before = read_bytes(path("s.h5")), jbefore = read_bytes(path("s.h5.journal"));
  std::string text = kJob;
  text.replace(text.find("batch = 32, 64"), 14, "batch = 32");
  StoreOptions o;
  for (bool extend : {false, true}) {
    o.extend = extend;
    EXPECT_THROW(open(parse_job(text, "smaller.ini"), o), StoreRefused) << "extend " << extend;
    EXPECT_EQ(read_bytes(path("s.h5")), before) << "extend " << extend;
    EXPECT_EQ(read_bytes(path("s.h5.journal")), jbefore) << "extend " << extend;
  }
  EXPECT_EQ(open(job).log().results.size(), 12u);
}

TEST_F(SweepStoreTest, NonHdf5OutputIsRefusedAndNeverOverwritten) {
  write_bytes(path("s.h5"), "my thesis draft, not an HDF5 file");
  EXPECT_THROW(open(job), StoreRefused);
  EXPECT_EQ(read_bytes(path("s.h5")), "my thesis draft, not an HDF5 file");
  EXPECT_FALSE(std::filesystem::exists(path("s.h5.journal")));
}

TEST_F(SweepStoreTest, TruncatedHdf5IsRefusedAndNeverOverwritten) {
  { open(job).finish("completed"); }
  std::filesystem::remove(path("s.h5.journal"));
  const std::string bytes = read_bytes(path("s.h5"));
  write_bytes(path("s.h5"), bytes.substr(0, bytes.size() / 3));
  try {
    open(job);
    FAIL();
  } catch (const StoreRefused& e) {
    EXPECT_NE(std::string(e.what()).find("not modified"), std::string::npos) << e.what();
  }
  EXPECT_EQ(read_bytes(path("s.h5")).size(), bytes.size() / 3);
}

TEST_F(SweepStoreTest, Hdf5FileAloneResumesWithoutItsJournal) {
  {
    SweepStore s = open(job);
    for (int i = 0; i < 4; ++i) s.record_result(run_one(s.to_run()[i]));
    s.finish("completed");
  }
  std::filesystem::remove(path("s.h5.journal"));
  SweepStore s = open(job);
  EXPECT_EQ(s.to_run().size(), grid.size() - 4);
  EXPECT_TRUE(std::filesystem::exists(path("s.h5.journal")));
}

TEST_F(SweepStoreTest, SecondWriterIsRefusedWhileTheFirstRuns) {
  SweepStore first = open(job);
  EXPECT_THROW(open(job), StoreRefused);
}

TEST_F(SweepStoreTest, FailedTrialsRerunOnlyWhenAsked) {
  {
    SweepStore s = open(job);
    TrialRecord r = run_one(s.to_run()[0]);
    r.outcome.state = TrialState::Failed;
    s.record_result(r);
    s.finish("completed");
  }
  EXPECT_EQ(open(job).to_run().size(), grid.size() - 1);
  StoreOptions o;
  o.retry_failed = true;
  EXPECT_EQ(open(job, o).to_run().size(), grid.size());
}

TEST_F(SweepStoreTest, RetryFailedRerunsTimedOutTrialsTooButNotDivergedOrDoneOnes) {
  {
    SweepStore s = open(job);
    const std::vector<Trial> first(s.to_run().begin(), s.to_run().begin() + 4);
    const TrialState states[] = {TrialState::Failed, TrialState::Timeout, TrialState::Diverged, TrialState::Done};
    for (int i = 0; i < 4; ++i) {
      TrialRecord r = run_one(first[i]);
      r.outcome.state = states[i];
      s.record_result(r);
    }
    s.finish("completed");
  }
  std::set<TrialId> plain, retried;
  {
    const SweepStore plain_store = open(job);  // to_run() refers into the store: keep it alive
    for (const auto& t : plain_store.to_run()) plain.insert(t.id);
  }
  StoreOptions o;
  o.retry_failed = true;
  SweepStore again = open(job, o);
  for (const auto& t : again.to_run()) retried.insert(t.id);
  EXPECT_EQ(plain.size(), grid.size() - 4);
  EXPECT_EQ(retried.size(), grid.size() - 2);
  const std::vector<TrialRecord>& results = again.log().results;
  ASSERT_EQ(results.size(), 4u);
  for (const auto& r : results) {
    const bool rerun = r.outcome.state == TrialState::Failed || r.outcome.state == TrialState::Timeout;
    EXPECT_EQ(retried.count(r.trial.id), rerun ? 1u : 0u) << to_string(r.outcome.state);
    EXPECT_EQ(plain.count(r.trial.id), 0u) << to_string(r.outcome.state);
  }
  EXPECT_TRUE(std::any_of(again.notes().begin(), again.notes().end(), [](const std::string& n) {
    return n.find("retrying 2 FAILED/TIMEOUT trials") != std::string::npos;
  }));
}

TEST_F(SweepStoreTest, VariantAndBackendDetailsSurviveJournalAndHdf5) {
  SweepLog log;
  log.schema_version = kSchemaVersion;
  log.job_text = kJob;
  TrialRecord r = run_one(grid[0]);
  r.trial.point.variant = "mup";
  r.outcome.details = R"({"groups":[{"name":"hidden.w1","lr":0.0005}]})";
  r.devices = "gpu-a:0,1 gpu-b:0,1";
  log.add_result(r);
  {
    JournalWriter w = JournalWriter::create(path("j"), log);
    w.append_result(r);
    w.sync();
  }
  const JournalContents j = read_journal(path("j"));
  ASSERT_EQ(j.log.results.size(), 1u);
  EXPECT_EQ(j.log.results[0].trial.point.variant, "mup");
  EXPECT_EQ(j.log.results[0].outcome.details, r.outcome.details);
  EXPECT_EQ(j.log.results[0].devices, r.devices);

  std::vector<Trial> g = grid;
  g[0].point.variant = "mup";
  Hdf5Store::write_snapshot(path("s.h5"), log, g, 1);
  const StoreContents c = read_store(path("s.h5"));
  ASSERT_EQ(c.log.results.size(), 1u);
  EXPECT_EQ(c.log.results[0].trial.point.variant, "mup");
  EXPECT_EQ(c.log.results[0].outcome.details, r.outcome.details);
  EXPECT_EQ(c.log.results[0].devices, r.devices);
}

TEST_F(SweepStoreTest, JournalRecordsWrittenBeforeVariantsExistedStillDecode) {
  // A result record as the first release wrote it: no variant, details and devices at the end.
  const TrialRecord r = run_one(grid[0]);
  ByteWriter w;
  encode(w, r);
  std::string bytes = w.take();
  bytes.resize(bytes.size() - 3 * sizeof(std::uint32_t));  // drop the three empty trailing strings
  ByteReader reader(bytes);
  const TrialRecord back = decode_trial_record(reader);
  EXPECT_EQ(back.trial.id, r.trial.id);
  EXPECT_EQ(back.outcome.final_loss, r.outcome.final_loss);
  EXPECT_EQ(back.trial.point.variant, "");
  EXPECT_EQ(back.outcome.details, "");
  EXPECT_EQ(back.devices, "");
  // As schema 2 and 3 wrote it: variant and details, no devices.
  ByteWriter w3;
  encode(w3, r);
  std::string schema3 = w3.take();
  schema3.resize(schema3.size() - sizeof(std::uint32_t));
  ByteReader reader3(schema3);
  EXPECT_EQ(decode_trial_record(reader3).devices, "");
}

TEST_F(SweepStoreTest, AnotherVariantExtendsTheSweepAndChangingOneIsRefused) {
  const std::string with_one = kJob + "[variants]\nsteep = lr_n_exp=-1\n";
  {
    SweepStore s = open(parse_job(with_one, "v1.ini"));
    for (const auto& t : std::vector<Trial>(s.to_run())) s.record_result(run_one(t));
    s.finish("completed");
  }
  const std::string with_two = with_one + "flat = lr_n_exp=0\n";
  try {
    open(parse_job(with_two, "v2.ini"));
    FAIL() << "a new variant without --extend must be refused";
  } catch (const StoreRefused& e) {
    EXPECT_NE(std::string(e.what()).find("adds 12 grid points"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("variants.flat"), std::string::npos) << e.what();
  }
  StoreOptions o;
  o.extend = true;
  {
    SweepStore s = open(parse_job(with_two, "v2.ini"), o);
    EXPECT_EQ(s.to_run().size(), 12u);  // only the new variant's trials
    for (const auto& t : s.to_run()) EXPECT_EQ(t.point.variant, "flat");
  }
  // Changing a variant's settings would orphan its finished trials: refused like a removed grid
  // point, and the file stays as it was.
  const std::string before = read_bytes(path("s.h5")), jbefore = read_bytes(path("s.h5.journal"));
  std::string changed = with_one;
  changed.replace(changed.find("lr_n_exp=-1"), 11, "lr_n_exp=-2");
  EXPECT_THROW(open(parse_job(changed, "v3.ini"), o), StoreRefused);
  EXPECT_EQ(read_bytes(path("s.h5")), before);
  EXPECT_EQ(read_bytes(path("s.h5.journal")), jbefore);
}

// ---- Issue 16: nothing lost, never silently wrong ----

namespace {
std::size_t count_files_starting_with(const std::string& dir, const std::string& prefix) {
  std::size_t n = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir))
    if (e.path().filename().string().rfind(prefix, 0) == 0) ++n;
  return n;
}
bool any_note_contains(const std::vector<std::string>& notes, const std::string& text) {
  for (const auto& n : notes)
    if (n.find(text) != std::string::npos) return true;
  return false;
}
std::string all_notes(const std::vector<std::string>& notes) {
  std::string s;
  for (const auto& n : notes) s += n + "\n";
  return s;
}
// Rewrites one field of every /trials row through the HDF5 library (checksums stay valid).
template <class T>
void rewrite_trial_field(const std::string& file, const char* field, hid_t mem_type, T value, std::size_t row) {
  h5::Id f = h5::open_file(file, true);
  h5::Id ds = h5::open_dataset(f, "trials", file);
  h5::Id t(H5Tcreate(H5T_COMPOUND, sizeof(T)), H5Tclose);
  H5Tinsert(t, field, 0, mem_type);
  std::vector<T> v(h5::dataset_length(ds, file));
  h5::read_all(ds, t, v.data(), file);
  v.at(row) = value;
  h5::overwrite(ds, t, v.data(), v.size(), file);
}
}  // namespace

class DamagedStoreTest : public SweepStoreTest {
 protected:
  // A finished sweep of 12 results in one completed launch.
  void finish_twelve() {
    SweepStore s = open(job);
    for (const auto& t : std::vector<Trial>(s.to_run())) s.record_result(run_one(t));
    s.finish("completed");
  }
  void expect_nothing_lost(const SweepStore& s) {
    EXPECT_EQ(s.to_run().size(), 0u) << all_notes(s.notes());
    EXPECT_EQ(s.log().results.size(), 12u);
    ASSERT_GE(s.log().launches.size(), 1u);
    EXPECT_EQ(s.log().launches[0].ended, "completed") << "a finished launch must not be relabelled";
    EXPECT_EQ(count_files_starting_with(dir_, "s.h5.journal.damaged-"), 1u) << "the damaged journal is kept aside";
    EXPECT_FALSE(any_note_contains(s.notes(), "nothing finished is lost")) << all_notes(s.notes());
    EXPECT_TRUE(any_note_contains(s.notes(), "damaged")) << all_notes(s.notes());
  }
};

TEST_F(DamagedStoreTest, AByteFlippedInTheMiddleOfTheJournalLosesNoResultTheHdf5Holds) {
  finish_twelve();
  std::string bytes = read_bytes(path("s.h5.journal"));
  bytes[bytes.size() / 3] ^= 0x5a;
  write_bytes(path("s.h5.journal"), bytes);
  SweepStore s = open(job);
  expect_nothing_lost(s);
  s.finish("completed");
  EXPECT_EQ(read_store(path("s.h5")).log.results.size(), 12u);
  EXPECT_FALSE(read_journal(path("s.h5.journal")).damaged);
}

TEST_F(DamagedStoreTest, ARecoveryKilledBeforeItReplacedTheJournalKeepsTheDamageAsideOnce) {
  finish_twelve();
  std::string bytes = read_bytes(path("s.h5.journal"));
  bytes[bytes.size() / 3] ^= 0x5a;
  write_bytes(path("s.h5.journal"), bytes);
  // What a kill -9 between keeping the journal aside (a hard link) and renaming its rebuilt
  // replacement over it leaves: the damaged journal in place, and already linked aside.
  const std::string earlier = path("s.h5.journal.damaged-1000");
  ASSERT_EQ(::link(path("s.h5.journal").c_str(), earlier.c_str()), 0);
  SweepStore s = open(job);
  expect_nothing_lost(s);
  EXPECT_TRUE(any_note_contains(s.notes(), earlier)) << all_notes(s.notes());
}

TEST_F(DamagedStoreTest, AnIngestedCsvJournalsAFewBytesPerRowAndSurvivesADamagedBatch) {
  std::string csv = "params,tokens,lr,batch,loss\n";
  const std::size_t rows = 20000;
  for (std::size_t i = 0; i < rows; ++i)
    csv += std::to_string(1e8 * (1 + i % 4)) + "," + std::to_string(2e10 * (1 + i % 3)) + "," +
           std::to_string(1e-4 * (1 + i % 97)) + "," + std::to_string(32 << (i % 4)) + "," +
           std::to_string(2.5 + 1e-5 * static_cast<double>(i)) + "\n";
  write_bytes(path("big.csv"), csv);
  CsvIngestOptions options;
  options.columns = parse_column_map("params=params,tokens=tokens,lr=lr,batch=batch,loss=loss");
  const IngestSummary first = ingest_csv(path("big.csv"), path("x.h5"), options, "hpsweep ingest big.csv");
  ASSERT_EQ(first.imported, rows);
  const auto journal_bytes = std::filesystem::file_size(path("x.h5.journal"));
  EXPECT_LT(static_cast<double>(journal_bytes) / rows, 40.0)
      << journal_bytes << " bytes of journal for " << rows << " rows (one uncompressed record each took ~200)";
  std::string bytes = read_bytes(path("x.h5.journal"));
  bytes[bytes.size() / 2] ^= 0x01;
  write_bytes(path("x.h5.journal"), bytes);
  const IngestSummary again = ingest_csv(path("big.csv"), path("x.h5"), options, "hpsweep ingest big.csv");
  EXPECT_EQ(again.imported, 0u) << "the .h5 still holds the damaged batch's rows";
  EXPECT_EQ(again.already_present, rows);
  EXPECT_EQ(read_store(path("x.h5")).log.results.size(), rows);
}

TEST_F(DamagedStoreTest, ATruncatedJournalLosesNoResultTheHdf5Holds) {
  finish_twelve();
  const std::string bytes = read_bytes(path("s.h5.journal"));
  write_bytes(path("s.h5.journal"), bytes.substr(0, bytes.size() * 2 / 5));
  SweepStore s = open(job);
  expect_nothing_lost(s);
  s.finish("completed");
  EXPECT_EQ(read_store(path("s.h5")).log.results.size(), 12u);
}

TEST_F(DamagedStoreTest, OnlyADamagedFinalRecordIsATornTail) {
  finish_twelve();
  std::string bytes = read_bytes(path("s.h5.journal"));
  bytes[bytes.size() / 2] ^= 0x01;
  write_bytes(path("j-middle"), bytes);
  const JournalContents middle = read_journal(path("j-middle"));
  EXPECT_TRUE(middle.damaged);
  EXPECT_FALSE(middle.torn_tail);
  std::string tail = read_bytes(path("s.h5.journal"));
  tail[tail.size() - 3] ^= 0x01;
  write_bytes(path("j-tail"), tail);
  const JournalContents torn = read_journal(path("j-tail"));
  EXPECT_FALSE(torn.damaged);
  EXPECT_TRUE(torn.torn_tail);
}

TEST_F(DamagedStoreTest, AJournalWhoseHeaderIsUnreadableIsSetAsideAndTheHdf5KeepsEverything) {
  finish_twelve();
  std::string bytes = read_bytes(path("s.h5.journal"));
  bytes[12] ^= 0x10;  // inside the header record
  write_bytes(path("s.h5.journal"), bytes);
  SweepStore s = open(job);
  expect_nothing_lost(s);
}

TEST_F(DamagedStoreTest, AStaleJournalOfAnotherSweepIsRefusedNamingBothFiles) {
  finish_twelve();
  std::filesystem::remove(path("s.h5"));
  const std::string before = read_bytes(path("s.h5.journal"));
  const JobSpec other = parse_job(kJob + "[surrogate]\nnoise = 0.05\n", "other.ini");
  try {
    open(other);
    FAIL() << "a journal left by another sweep must not be merged";
  } catch (const StoreRefused& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("'" + path("s.h5.journal") + "'"), std::string::npos) << what;
    EXPECT_NE(what.find("'" + path("s.h5") + "' does not exist"), std::string::npos) << what;
  }
  EXPECT_EQ(read_bytes(path("s.h5.journal")), before);
  EXPECT_FALSE(std::filesystem::exists(path("s.h5")));
}

TEST_F(DamagedStoreTest, AStaleJournalOfTheSameSweepIsRecoveredAndSaysWhat) {
  finish_twelve();
  std::filesystem::remove(path("s.h5"));
  SweepStore s = open(job);
  EXPECT_EQ(s.to_run().size(), 0u);
  EXPECT_TRUE(any_note_contains(s.notes(), "recovered 12 results")) << all_notes(s.notes());
}

TEST_F(DamagedStoreTest, AnIngestNeverPoolsResultsWithAStaleJournal) {
  finish_twelve();
  std::filesystem::remove(path("s.h5"));
  try {
    SweepStore::open_for_update(path("s.h5"), LaunchRecord{});
    FAIL() << "ingesting next to a stale journal must be refused";
  } catch (const StoreRefused& e) {
    EXPECT_NE(std::string(e.what()).find("'" + path("s.h5.journal") + "'"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(std::filesystem::exists(path("s.h5")));
}

TEST_F(DamagedStoreTest, AFlippedStoredLossIsCaughtByTheChecksum) {
  SweepLog log;
  log.schema_version = kSchemaVersion;
  log.job_text = kJob;
  TrialRecord r = run_one(grid[0]);
  r.outcome.smooth_loss = 3.14159265358979;
  log.add_result(r);
  Hdf5Store::write_snapshot(path("s.h5"), log, grid, 1);
  // The rows are stored compressed: flip a byte in the middle of the stored chunk of row 0.
  haddr_t chunk_at = 0;
  hsize_t chunk_size = 0;
  {
    const hid_t f = H5Fopen(path("s.h5").c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
    const hid_t d = H5Dopen2(f, "trials", H5P_DEFAULT);
    const hsize_t coord[1] = {0};
    unsigned mask = 0;
    ASSERT_GE(H5Dget_chunk_info_by_coord(d, coord, &mask, &chunk_at, &chunk_size), 0);
    H5Dclose(d);
    H5Fclose(f);
  }
  ASSERT_GT(chunk_size, 16u);
  std::string bytes = read_bytes(path("s.h5"));
  bytes[chunk_at + chunk_size / 2] ^= 0x01;
  write_bytes(path("s.h5"), bytes);
  try {
    read_store(path("s.h5"));
    FAIL() << "a damaged value must not be served";
  } catch (const StoreRefused& e) {
    EXPECT_NE(std::string(e.what()).find("/trials"), std::string::npos) << e.what();
  }
}

TEST_F(DamagedStoreTest, AnHdf5FileThatDisagreesWithItsJournalIsNotServedSilently) {
  finish_twelve();
  rewrite_trial_field(path("s.h5"), "smooth_loss", H5T_NATIVE_DOUBLE, 9.75, 4);
  try {
    load_sweep(path("s.h5"));
    FAIL() << "the journal's copy must not hide a changed .h5";
  } catch (const StoreRefused& e) {
    EXPECT_NE(std::string(e.what()).find("disagree"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("smooth_loss"), std::string::npos) << e.what();
  }
  const SweepLog warned = load_sweep(path("s.h5"), Disagreement::Warn);
  ASSERT_EQ(warned.warnings.size(), 1u);
  EXPECT_NE(warned.warnings[0].find("disagree"), std::string::npos);
}

TEST_F(DamagedStoreTest, AChangedFitCoefficientIsADisagreement) {
  {
    SweepStore s = open(job);
    FitRecord f;
    f.name = "latest";
    f.options = "selection=all";
    f.coefficients.push_back(FitCoefficient{"lr", "a", 1.0, 1.0, 1.0, 0.5, 1.5});
    s.record_fit(f);
    s.finish("completed");
  }
  {
    h5::Id file = h5::open_file(path("s.h5"), true);
    h5::Id g(H5Gopen2(file, "fits/latest", H5P_DEFAULT), H5Gclose);
    h5::Id ds = h5::open_dataset(g, "coefficients", path("s.h5"));
    h5::Id t(H5Tcreate(H5T_COMPOUND, sizeof(double)), H5Tclose);
    H5Tinsert(t, "estimate", 0, H5T_NATIVE_DOUBLE);
    const double changed = 1.01;
    h5::overwrite(ds, t, &changed, 1, path("s.h5"));
  }
  EXPECT_THROW(load_sweep(path("s.h5")), StoreRefused);
}

TEST_F(DamagedStoreTest, AnImplausibleCurveExtentIsRefusedBeforeAllocating) {
  finish_twelve();
  std::filesystem::remove(path("s.h5.journal"));
  {
    h5::Id f = h5::open_file(path("s.h5"), true);
    h5::Id ds = h5::open_dataset(f, "curves/step", path("s.h5"));
    const hsize_t huge[1] = {hsize_t{1} << 40};
    ASSERT_GE(H5Dset_extent(ds, huge), 0);
  }
  EXPECT_THROW(read_store(path("s.h5")), StoreRefused);
}

TEST_F(DamagedStoreTest, AnImplausibleCurveLengthIsRefused) {
  finish_twelve();
  std::filesystem::remove(path("s.h5.journal"));
  rewrite_trial_field(path("s.h5"), "curve_length", H5T_NATIVE_UINT64, ~std::uint64_t{0} - 5, 3);
  EXPECT_THROW(read_store(path("s.h5")), StoreRefused);
}

TEST_F(DamagedStoreTest, ADiskFullDuringAFlushIsReportedAndLeavesNoTemporaryFile) {
  finish_twelve();
  std::filesystem::remove(path("s.h5"));
  const SweepLog log = read_journal(path("s.h5.journal")).log;
  // A child process: RLIMIT_FSIZE stands for a full disk, and the exit must not crash in HDF5.
  const pid_t pid = fork();
  if (pid == 0) {
    signal(SIGXFSZ, SIG_IGN);
    rlimit lim{};
    getrlimit(RLIMIT_FSIZE, &lim);
    lim.rlim_cur = 4096;
    setrlimit(RLIMIT_FSIZE, &lim);
    int code = 10;
    try {
      Hdf5Store::write_snapshot(path("s.h5"), log, grid, 1);
    } catch (const Error& e) {
      const std::string what = e.what();
      code = what.find("File too large") != std::string::npos || what.find("No space") != std::string::npos ? 0 : 11;
      if (code) std::fprintf(stderr, "%s\n", e.what());
    }
    std::exit(code);  // runs HDF5's atexit handlers
  }
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status)) << "the child crashed with signal " << WTERMSIG(status);
  EXPECT_EQ(WEXITSTATUS(status), 0) << "the error does not say the disk is full";
  EXPECT_EQ(count_files_starting_with(dir_, "s.h5.tmp-"), 0u);
  EXPECT_FALSE(std::filesystem::exists(path("s.h5")));
}

TEST_F(SweepStoreTest, AStoredResultKeepsItsKind) {
  FitRecord f;
  f.name = "cc";
  f.kind = ResultKind::CoordCheck;
  f.options = "widths=64";
  {
    SweepStore s = open(job);
    s.record_fit(f);
    s.finish("completed");
  }
  ASSERT_EQ(read_journal(path("s.h5.journal")).log.fits.size(), 1u);
  EXPECT_EQ(read_journal(path("s.h5.journal")).log.fits[0].kind, ResultKind::CoordCheck);
  ASSERT_EQ(read_store(path("s.h5")).log.fits.size(), 1u);
  EXPECT_EQ(read_store(path("s.h5")).log.fits[0].kind, ResultKind::CoordCheck);
  // Files written before kinds existed: the options' old prefix still says what they hold.
  EXPECT_EQ(legacy_result_kind("coordcheck;widths=64"), ResultKind::CoordCheck);
  EXPECT_EQ(legacy_result_kind("selection=all;transfer=1"), ResultKind::Transfer);
  EXPECT_EQ(legacy_result_kind("selection=all"), ResultKind::Fit);
}

TEST(CrashGuardTest, ACrashInsideHdf5EndsWithAMessageNamingTheFileNotASegfault) {
  int err[2];
  ASSERT_EQ(pipe(err), 0);
  const pid_t pid = fork();
  if (pid == 0) {
    dup2(err[1], STDERR_FILENO);
    const h5::CrashGuard guard("/data/s.h5", "reading /trials");
    raise(SIGSEGV);  // what HDF5 does on some damaged heaps
    std::_Exit(0);
  }
  close(err[1]);
  char buf[1024] = {0};
  const ssize_t n = read(err[0], buf, sizeof buf - 1);
  close(err[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status)) << "died of signal " << WTERMSIG(status);
  EXPECT_EQ(WEXITSTATUS(status), 3);
  ASSERT_GT(n, 0);
  EXPECT_NE(std::string(buf).find("'/data/s.h5' is damaged: HDF5 crashed while reading /trials"), std::string::npos)
      << buf;
}
