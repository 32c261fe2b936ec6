#include <gtest/gtest.h>

#include <set>

#include "hpsweep/backends/surrogate.hpp"
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
  header.job_text = kJob;
  const TrialRecord r = run_one(grid[0]);
  {
    JournalWriter w = JournalWriter::create(path("j"), header);
    w.append_dispatch(DispatchRecord{grid[1].id, 0, 2, 1.0});
    w.append_result(r);
    w.sync();
  }
  const JournalContents c = read_journal(path("j"));
  EXPECT_EQ(c.records, 3u);
  EXPECT_FALSE(c.torn_tail);
  ASSERT_EQ(c.log.results.size(), 1u);
  const TrialRecord& back = c.log.results[0];
  EXPECT_EQ(back.trial.id, r.trial.id);
  EXPECT_EQ(back.outcome.final_loss, r.outcome.final_loss);
  EXPECT_EQ(back.outcome.curve.loss, r.outcome.curve.loss);
  EXPECT_EQ(back.host, "node-a");
  EXPECT_EQ(c.log.in_flight.count(grid[1].id), 1u);
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

TEST_F(SweepStoreTest, AddedGridPointsNeedExtend) {
  { open(job).finish("completed"); }
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
  StoreOptions o;
  o.extend = true;
  SweepStore s = open(bigger, o);
  EXPECT_EQ(s.to_run().size(), 18u);
  EXPECT_EQ(s.log().job_text, text);
}

TEST_F(SweepStoreTest, RemovedGridPointsAreRefused) {
  { open(job).finish("completed"); }
  std::string text = kJob;
  text.replace(text.find("batch = 32, 64"), 14, "batch = 32");
  EXPECT_THROW(open(parse_job(text, "smaller.ini")), StoreRefused);
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

TEST_F(SweepStoreTest, VariantAndBackendDetailsSurviveJournalAndHdf5) {
  SweepLog log;
  log.schema_version = kSchemaVersion;
  log.job_text = kJob;
  TrialRecord r = run_one(grid[0]);
  r.trial.point.variant = "mup";
  r.outcome.details = R"({"groups":[{"name":"hidden.w1","lr":0.0005}]})";
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

  std::vector<Trial> g = grid;
  g[0].point.variant = "mup";
  Hdf5Store::write_snapshot(path("s.h5"), log, g, 1);
  const StoreContents c = read_store(path("s.h5"));
  ASSERT_EQ(c.log.results.size(), 1u);
  EXPECT_EQ(c.log.results[0].trial.point.variant, "mup");
  EXPECT_EQ(c.log.results[0].outcome.details, r.outcome.details);
}

TEST_F(SweepStoreTest, JournalRecordsWrittenBeforeVariantsExistedStillDecode) {
  // A result record as the first release wrote it: no variant and details at the end.
  const TrialRecord r = run_one(grid[0]);
  ByteWriter w;
  encode(w, r);
  std::string bytes = w.take();
  bytes.resize(bytes.size() - 2 * sizeof(std::uint32_t));  // drop the two empty trailing strings
  ByteReader reader(bytes);
  const TrialRecord back = decode_trial_record(reader);
  EXPECT_EQ(back.trial.id, r.trial.id);
  EXPECT_EQ(back.outcome.final_loss, r.outcome.final_loss);
  EXPECT_EQ(back.trial.point.variant, "");
  EXPECT_EQ(back.outcome.details, "");
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
  // Changing a variant's settings would orphan its finished trials: refused like a removed grid point.
  std::string changed = with_one;
  changed.replace(changed.find("lr_n_exp=-1"), 11, "lr_n_exp=-2");
  EXPECT_THROW(open(parse_job(changed, "v3.ini"), o), StoreRefused);
}
