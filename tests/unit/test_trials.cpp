#include <gtest/gtest.h>

#include <set>

#include "hpsweep/spec/job.hpp"
#include "hpsweep/trials/trial.hpp"
#include "hpsweep/util/text.hpp"

using namespace hpsweep;

namespace {
const std::string kJob = R"([sweep]
name = ids
seed = 3
repeats = 2
[scales]
params = 1e7, 4e7
tokens = 1e9, 4e9
[grid]
lr = 1e-3, 2e-3, 4e-3
batch = 32, 64
wd = 0.1
[backend]
kind = surrogate
[target]
params = 7e9
)";

std::set<TrialId> ids_of(const std::string& text, const std::string& path = "a.ini") {
  std::set<TrialId> out;
  for (const auto& t : expand_grid(parse_job(text, path))) out.insert(t.id);
  return out;
}

std::string replaced(std::string s, const std::string& from, const std::string& to) {
  return s.replace(s.find(from), from.size(), to);
}
}  // namespace

TEST(TrialGrid, ExpandsEveryCombinationOnce) {
  const auto grid = expand_grid(parse_job(kJob, "a.ini"));
  EXPECT_EQ(grid.size(), 2u * 2 * 3 * 2 * 1 * 2);
  EXPECT_EQ(ids_of(kJob).size(), grid.size());
}

TEST(TrialGrid, MostExpensiveTrialsComeFirst) {
  const auto grid = expand_grid(parse_job(kJob, "a.ini"));
  for (std::size_t i = 1; i < grid.size(); ++i) EXPECT_GE(grid[i - 1].point.compute(), grid[i].point.compute());
  EXPECT_DOUBLE_EQ(grid.front().point.compute(), 6 * 4e7 * 4e9);
}

TEST(TrialIds, SameJobAlwaysYieldsSameIds) { EXPECT_EQ(ids_of(kJob), ids_of(kJob)); }

TEST(TrialIds, DoNotDependOnPathNameTargetOrListOrder) {
  const auto base = ids_of(kJob);
  EXPECT_EQ(ids_of(kJob, "elsewhere/b.ini"), base);
  EXPECT_EQ(ids_of(replaced(kJob, "name = ids", "name = renamed")), base);
  EXPECT_EQ(ids_of(replaced(kJob, "params = 7e9", "params = 1e10")), base);
  EXPECT_EQ(ids_of(replaced(kJob, "lr = 1e-3, 2e-3, 4e-3", "lr = 4e-3, 0.001, 2e-3")), base);
  EXPECT_EQ(ids_of(replaced(kJob, "[backend]", "[backend]\n# a comment\n")), base);
}

TEST(TrialIds, ChangeWithEverySettingThatChangesResults) {
  const auto base = ids_of(kJob);
  for (const auto& [from, to] : std::vector<std::pair<std::string, std::string>>{
           {"seed = 3", "seed = 4"},
           {"kind = surrogate", "kind = surrogate\n[surrogate]\nnoise = 0.01"},
           {"[scales]", "[scales]\nseq_len = 4096"}}) {
    const auto changed = ids_of(replaced(kJob, from, to));
    for (TrialId id : changed) EXPECT_EQ(base.count(id), 0u) << to;
  }
  // Sleeping longer does not change a surrogate result, so it does not change ids.
  EXPECT_EQ(ids_of(replaced(kJob, "kind = surrogate", "kind = surrogate\n[surrogate]\nsleep_per_pflop = 1")), base);
}

TEST(TrialIds, AreStableAcrossVersions) {
  // Resuming a sweep written by an earlier hpsweep relies on this exact value; changing the hash
  // or the canonical form needs a schema version bump and a migration.
  const TrialPoint p{1e8, 2e9, 1e-3, 64, 2048, 0.1, 0};
  EXPECT_EQ(canonical_coordinates(p), "N=1e+08;D=2e+09;lr=0.001;batch=64;seq_len=2048;wd=0.1;repeat=0");
  EXPECT_EQ(hex64(trial_id(p, "backend=surrogate;seed=0")),
            hex64(fnv1a64("backend=surrogate;seed=0|" + canonical_coordinates(p))));
  // Reference value computed independently (Python FNV-1a-64).
  EXPECT_EQ(hex64(fnv1a64("hpsweep")), "27bcc93ce96e2e03");
}

TEST(TrialState, TerminalStatesAreNeverRerunByDefault) {
  EXPECT_TRUE(is_terminal(TrialState::Done));
  EXPECT_TRUE(is_terminal(TrialState::Diverged));
  EXPECT_TRUE(is_terminal(TrialState::Failed));
  EXPECT_FALSE(is_terminal(TrialState::Lost));
  EXPECT_FALSE(is_terminal(TrialState::Running));
  EXPECT_FALSE(is_terminal(TrialState::Pending));
}

TEST(TrialIds, IdsOfAJobWithoutVariantsAreThoseTheFirstReleaseWrote) {
  // jobs/example.ini as the first release ran it; the ids below were read back from the sweep file
  // that release wrote. Adding variants (or any later feature) must not change them, or resuming
  // an existing sweep would run everything again.
  const JobSpec job = parse_job(R"([sweep]
name = example
seed = 1234
[scales]
params = 2e7, 5e7, 1.2e8, 3e8
tokens_per_param = 10, 30, 90
seq_len = 2048
[grid]
lr = log:2.5e-4:4e-2:15
batch = 8, 16, 32, 64, 128, 256, 512, 1024
wd = 0.1
[backend]
kind = surrogate
[surrogate]
noise = 0.001
wd_curvature = 0
curve_points = 64
sleep_per_pflop = 3e-6
)",
                                "example.ini");
  std::set<std::string> ids;
  for (const auto& t : expand_grid(job)) ids.insert(hex64(t.id));
  EXPECT_EQ(ids.size(), 1440u);
  for (const char* id : {"05ff332310a31c09", "01877e551ca7e5d7", "02ceabf2b24b1ff3"})
    EXPECT_EQ(ids.count(id), 1u) << id;
}
