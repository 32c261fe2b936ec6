#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "hpsweep/backends/backend.hpp"
#include "hpsweep/backends/lookup.hpp"
#include "hpsweep/ingest/lookup_table.hpp"
#include "hpsweep/planner/adaptive_tasks.hpp"
#include "hpsweep/planner/planner.hpp"
#include "hpsweep/scheduler/master.hpp"
#include "hpsweep/scheduler/worker.hpp"
#include "hpsweep/scheduler/worker_pool.hpp"
#include "hpsweep/spec/job.hpp"
#include "hpsweep/store/records.hpp"
#include "hpsweep/util/error.hpp"
#include "hpsweep/util/serialize.hpp"
#include "test_helpers.hpp"

using namespace hpsweep;

namespace {

const std::string kStepLawCsv = std::string(HPSWEEP_SOURCE_DIR) + "/data/steplaw/dense_lr_bs_loss.csv";

std::string lookup_job(const std::string& extra = "") {
  return "[sweep]\nname = lookup\n[backend]\nkind = lookup\n[lookup]\nfile = " + kStepLawCsv +
         "\n[target]\nparams = 7e9\ntokens = 1.4e12\n" + extra;
}

const std::string kSurrogateJob = R"([sweep]
name = adaptive
[scales]
params = 1e7, 3e7, 1e8
tokens_per_param = 20, 80
[grid]
lr = log:1e-4:3e-2:12
batch = 16, 32, 64, 128, 256, 512
[backend]
kind = surrogate
[surrogate]
curve_points = 0
[target]
params = 1e9
tokens = 2e10
[adaptive]
budget = 0.3
)";

class LookupTest : public ::testing::Test {
 protected:
  void SetUp() override { install_lookup_table_reader(); }
};

std::vector<TrialRecord> run_all(const JobSpec& job, const std::vector<Trial>& grid) {
  auto backend = make_backend(job);
  std::vector<TrialRecord> out;
  for (const auto& t : grid) {
    TrialRecord r;
    r.trial = t;
    r.outcome = backend->run(t);
    out.push_back(r);
  }
  return out;
}

// Runs the planner round by round against precomputed answers, feeding each round's results in
// the order `shuffle` gives; returns the planned ids in plan order.
std::vector<TrialId> simulate(Planner& planner, const std::map<TrialId, TrialRecord>& answers, std::uint64_t shuffle) {
  std::mt19937_64 rng(shuffle);
  for (;;) {
    planner.advance();
    std::vector<TrialId> open;
    for (const auto& r : planner.rounds()) {
      for (const auto& t : r.trials)
        if (!planner.has_result(t.id)) open.push_back(t.id);
      if (!open.empty()) break;
    }
    if (open.empty()) break;
    if (shuffle) std::shuffle(open.begin(), open.end(), rng);
    for (TrialId id : open) planner.add_result(answers.at(id));
  }
  std::vector<TrialId> ids;
  for (const auto& t : planner.planned()) ids.push_back(t.id);
  return ids;
}

}  // namespace

TEST_F(LookupTest, AJobWithoutScalesOrGridRunsExactlyTheTablesPointsWithStableIds) {
  const JobSpec job = parse_job(lookup_job(), "lookup.ini");
  const auto grid = expand_grid(job);
  ASSERT_EQ(grid.size(), 1911u);
  std::set<std::pair<double, double>> cells;
  for (const auto& t : grid) cells.emplace(t.point.params, t.point.tokens);
  EXPECT_EQ(cells.size(), 17u);
  // The file's path is not part of any id: the same table elsewhere gives the same ids.
  const std::string copy = "/tmp/hpsweep-lookup-copy.csv";
  std::ofstream(copy) << std::ifstream(kStepLawCsv).rdbuf();
  std::string moved = lookup_job();
  moved.replace(moved.find(kStepLawCsv), kStepLawCsv.size(), copy);
  const auto again = expand_grid(parse_job(moved, "moved.ini"));
  std::remove(copy.c_str());
  ASSERT_EQ(again.size(), grid.size());
  for (std::size_t i = 0; i < grid.size(); ++i) EXPECT_EQ(again[i].id, grid[i].id);
}

TEST_F(LookupTest, TheBackendAnswersEveryPointWithTheTablesLossAndTheIngestDivergenceRule) {
  const JobSpec job = parse_job(lookup_job(), "lookup.ini");
  const auto grid = expand_grid(job);
  std::size_t done = 0, diverged = 0;
  for (const auto& r : run_all(job, grid)) {
    if (r.outcome.state == TrialState::Done) ++done;
    if (r.outcome.state == TrialState::Diverged) ++diverged;
    EXPECT_NE(r.outcome.state, TrialState::Unavailable);
  }
  EXPECT_EQ(done + diverged, 1911u);
  EXPECT_GT(diverged, 0u);  // the released file keeps its diverged runs (smoothed loss ~11)
  // One row checked by hand: the first data row of the CSV.
  LookupBackend backend(LookupSettings::from_options(job.backend_options));
  Trial t;
  t.point = TrialPoint{214663680, 1e11, 0.0003453, 736, 2048, 0.1, 0, ""};
  const TrialOutcome o = backend.run(t);
  EXPECT_EQ(o.state, TrialState::Done);
  EXPECT_DOUBLE_EQ(o.smooth_loss, 2.3976109618296744);
  EXPECT_DOUBLE_EQ(o.final_loss, 2.413517);
}

TEST_F(LookupTest, AGridPointTheTableLacksIsUnavailableNotFailedAndSurvivesTheJournalEncoding) {
  const JobSpec job = parse_job(
      "[sweep]\nname = l\n[scales]\nparams = 214663680\ntokens = 1e11\n[grid]\nlr = 0.0003453, 0.5\nbatch = 736\n"
      "[backend]\nkind = lookup\n[lookup]\nfile = " +
          kStepLawCsv + "\n",
      "l.ini");
  const auto records = run_all(job, expand_grid(job));
  ASSERT_EQ(records.size(), 2u);
  std::map<double, TrialState> by_lr;
  for (const auto& r : records) by_lr[r.trial.point.lr] = r.outcome.state;
  EXPECT_EQ(by_lr[0.0003453], TrialState::Done);
  EXPECT_EQ(by_lr[0.5], TrialState::Unavailable);
  EXPECT_TRUE(is_terminal(TrialState::Unavailable));  // never rerun on resume
  EXPECT_STREQ(to_string(TrialState::Unavailable), "UNAVAILABLE");
  for (const auto& r : records) {
    ByteWriter w;
    encode(w, r);
    ByteReader rd(w.bytes());
    EXPECT_EQ(decode_trial_record(rd).outcome.state, r.outcome.state);
  }
}

TEST_F(LookupTest, AMissingTableIsAnInputErrorNamingTheTableAndTheJobFileLine) {
  std::string text = lookup_job();
  text.replace(text.find(kStepLawCsv), kStepLawCsv.size(), "/nonexistent/table.csv");
  try {
    parse_job(text, "missing.ini");
    FAIL() << "no error";
  } catch (const InputError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("/nonexistent/table.csv"), std::string::npos) << what;
    EXPECT_EQ(what.rfind("missing.ini:", 0), 0u) << what;  // the job file and the line of [lookup] file
  }
}

TEST(AdaptiveJob, BudgetIsAFractionOrFlopsAndChangingItIsNotADifferentJob) {
  const JobSpec job = parse_job(kSurrogateJob, "a.ini");
  EXPECT_TRUE(job.adaptive.enabled);
  EXPECT_DOUBLE_EQ(job.adaptive.budget_fraction, 0.3);
  std::string both = kSurrogateJob + "budget_flops = 1e18\n";
  EXPECT_THROW(parse_job(both, "b.ini"), InputError);
  std::string over = kSurrogateJob;
  over.replace(over.find("budget = 0.3"), 12, "budget = 1.5");
  EXPECT_THROW(parse_job(over, "c.ini"), InputError);
  std::string none = kSurrogateJob;
  none.replace(none.find("budget = 0.3"), 12, "seed = 1");
  EXPECT_THROW(parse_job(none, "d.ini"), InputError);
}

TEST(Planner, StaysWithinTheBudgetAndStartsEveryCellSoEveryTokensPerParameterRatioStays) {
  const JobSpec job = parse_job(kSurrogateJob, "a.ini");
  const auto grid = expand_grid(job);
  std::map<TrialId, TrialRecord> answers;
  for (auto& r : run_all(job, grid)) answers[r.trial.id] = r;
  Planner planner(job, grid);
  const auto ids = simulate(planner, answers, 0);
  EXPECT_TRUE(planner.finished());
  EXPECT_LE(planner.planned_compute(), 0.3 * planner.grid_compute() * (1 + 1e-9));
  EXPECT_GT(planner.planned_compute(), 0.2 * planner.grid_compute());
  std::set<TrialId> unique(ids.begin(), ids.end());
  EXPECT_EQ(unique.size(), ids.size()) << "a trial planned twice";
  std::map<std::pair<double, double>, int> per_cell;
  for (const auto& t : planner.planned())
    ++per_cell[{grid[t.grid_index].point.params, grid[t.grid_index].point.tokens}];
  EXPECT_EQ(per_cell.size(), 6u);  // 3 sizes x 2 ratios
  for (const auto& [cell, n] : per_cell) EXPECT_GE(n, 9) << cell.first << " " << cell.second;
  EXPECT_GE(planner.rounds().size(), 4u);
}

TEST(Planner, TheSameResultsInAnyArrivalOrderGiveTheSamePlan) {
  const JobSpec job = parse_job(kSurrogateJob, "a.ini");
  const auto grid = expand_grid(job);
  std::map<TrialId, TrialRecord> answers;
  for (auto& r : run_all(job, grid)) answers[r.trial.id] = r;
  Planner a(job, grid), b(job, grid);
  const auto first = simulate(a, answers, 0);
  const auto second = simulate(b, answers, 12345);
  EXPECT_EQ(first, second);
  // A planner that starts from a prefix of the stored results (a resume) continues the same plan.
  Planner resumed(job, grid);
  for (std::size_t i = 0; i < first.size() / 2; ++i) resumed.add_result(answers.at(first[i]));
  EXPECT_EQ(simulate(resumed, answers, 7), first);
}

TEST(Planner, ARaisedBudgetContinuesThePlanOfTheSmallerOne) {
  JobSpec job = parse_job(kSurrogateJob, "a.ini");
  const auto grid = expand_grid(job);
  std::map<TrialId, TrialRecord> answers;
  for (auto& r : run_all(job, grid)) answers[r.trial.id] = r;
  job.adaptive.budget_fraction = 0.15;
  Planner small(job, grid);
  const auto before = simulate(small, answers, 0);
  job.adaptive.budget_fraction = 0.3;
  Planner raised(job, grid);
  for (TrialId id : before) raised.add_result(answers.at(id));
  const auto after = simulate(raised, answers, 0);
  const std::set<TrialId> all(after.begin(), after.end());
  for (TrialId id : before) EXPECT_TRUE(all.count(id)) << "a trial of the smaller budget is not in the raised plan";
  EXPECT_GT(after.size(), before.size());
}

TEST(AdaptiveTasks, WorkersGetEachRoundAsSoonAsItIsDecidedAndEveryPlannedTrialRunsOnce) {
  const JobSpec job = parse_job(kSurrogateJob, "a.ini");
  const auto grid = expand_grid(job);
  Planner planner(job, grid);
  LocalWorld world(4);
  std::vector<std::thread> threads;
  // The surrogate, recording the count of unfinished trials each trial arrives with.
  struct HintRecorder : Backend {
    std::unique_ptr<Backend> inner;
    std::mutex* mutex;
    std::vector<std::int64_t>* hints;
    TrialOutcome run(const Trial& t) override { return inner->run(t); }
    void note_trials_left(std::int64_t n) override {
      std::lock_guard lock(*mutex);
      hints->push_back(n);
    }
  };
  std::mutex hints_mutex;
  std::vector<std::int64_t> hints;
  const BackendFactory make = [&](const std::string& path, const std::string& text, const std::string&) {
    auto b = std::make_unique<HintRecorder>();
    b->inner = make_backend(parse_job(text, path));
    b->mutex = &hints_mutex;
    b->hints = &hints;
    return std::unique_ptr<Backend>(std::move(b));
  };
  for (int r = 1; r <= 3; ++r)
    threads.emplace_back([&world, r, &make] { run_worker(world.endpoint(r), "host", make); });
  struct Sink : ResultSink {
    std::multiset<TrialId> dispatched, results;
    void on_dispatch(const Trial& t, int) override { dispatched.insert(t.id); }
    void on_result(TrialRecord r) override { results.insert(r.trial.id); }
    void on_idle() override {}
  } sink;
  const auto started = start_workers(world.endpoint(0), "a.ini", kSurrogateJob, "", [](const std::string&) {});
  AdaptiveTasks tasks(planner, sink);
  run_tasks(world.endpoint(0), started, tasks, MasterOptions{});
  stop_workers(world.endpoint(0), protocol::Tag::Stop);
  for (auto& t : threads) t.join();
  EXPECT_TRUE(planner.finished()) << planner.finish_reason();
  const auto planned = planner.planned();
  EXPECT_EQ(sink.results.size(), planned.size());
  for (const auto& t : planned) EXPECT_EQ(sink.results.count(t.id), 1u);
  // Each trial told its worker how many grid trials had no result yet: all of them at first, then
  // fewer, never fewer than the plan leaves unrun.
  ASSERT_EQ(hints.size(), planned.size());
  EXPECT_EQ(*std::max_element(hints.begin(), hints.end()), static_cast<std::int64_t>(grid.size()));
  EXPECT_LT(*std::min_element(hints.begin(), hints.end()), static_cast<std::int64_t>(grid.size()));
  EXPECT_GE(*std::min_element(hints.begin(), hints.end()), static_cast<std::int64_t>(grid.size() - planned.size()));
  // The same plan as in virtual time: decisions depend on the results, not on their timing.
  std::map<TrialId, TrialRecord> answers;
  for (auto& r : run_all(job, grid)) answers[r.trial.id] = r;
  Planner offline(job, grid);
  std::vector<TrialId> ids;
  for (const auto& t : planned) ids.push_back(t.id);
  EXPECT_EQ(simulate(offline, answers, 3), ids);
}

namespace {

// The planner keeps per-cell optima between rounds and fits the laws itself: every round's
// estimate must equal fit_sweep's (estimate()) on the same results, in the same order.
void expect_rounds_saw_the_default_fit(const JobSpec& job) {
  const auto grid = expand_grid(job);
  std::map<TrialId, TrialRecord> answers;
  for (auto& r : run_all(job, grid)) answers[r.trial.id] = r;
  Planner planner(job, grid);
  simulate(planner, answers, 0);
  std::size_t compared = 0;
  std::vector<TrialId> seen;
  const auto& rounds = planner.rounds();
  for (std::size_t k = 2; k < rounds.size(); ++k) {
    for (const auto& t : rounds[k - 2].trials) seen.push_back(t.id);
    const PlanEstimate& decided = rounds[k].estimate;
    const PlanEstimate reference = planner.estimate(seen);
    ASSERT_EQ(decided.ok, reference.ok) << "round " << k << ": " << decided.note << " / " << reference.note;
    EXPECT_EQ(decided.results, reference.results);
    if (!decided.ok) continue;
    ++compared;
    EXPECT_DOUBLE_EQ(decided.lr.estimate, reference.lr.estimate) << "round " << k;
    EXPECT_DOUBLE_EQ(decided.lr.lo, reference.lr.lo) << "round " << k;
    EXPECT_DOUBLE_EQ(decided.lr.hi, reference.lr.hi) << "round " << k;
    EXPECT_DOUBLE_EQ(decided.batch_tokens.estimate, reference.batch_tokens.estimate) << "round " << k;
    EXPECT_DOUBLE_EQ(decided.batch_tokens.lo, reference.batch_tokens.lo) << "round " << k;
    EXPECT_DOUBLE_EQ(decided.batch_tokens.hi, reference.batch_tokens.hi) << "round " << k;
  }
  EXPECT_GE(compared, 2u);
  std::set<std::pair<double, double>> cells;
  for (const auto& t : grid) cells.emplace(t.point.params, t.point.tokens);
  EXPECT_GT(planner.cell_fits_reused(), 0u) << "every cell was refitted every round";
  EXPECT_LT(planner.cell_fits(), (rounds.size() - 2) * cells.size()) << "every cell was refitted every round";
}

}  // namespace

TEST(Planner, EachRoundSawTheDefaultFitOfItsResultsThoughOnlyChangedCellsWereRefitted) {
  expect_rounds_saw_the_default_fit(parse_job(kSurrogateJob, "a.ini"));
}

TEST_F(LookupTest, EachStepLawRoundSawTheDefaultFitOfItsResults) {
  expect_rounds_saw_the_default_fit(parse_job(lookup_job("[adaptive]\nbudget = 0.2\n"), "lookup.ini"));
}
