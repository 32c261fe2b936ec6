#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <regex>
#include <set>

#include "hpsweep/reports/report.hpp"
#include "hpsweep/reports/status.hpp"
#include "hpsweep/store/stored_job.hpp"
#include "hpsweep/util/error.hpp"
#include "test_helpers.hpp"

using namespace hpsweep;
namespace fs = std::filesystem;

namespace {

// A sweep as `hpsweep run` would record it: an exact bowl per (N, D) cell with its minimum at
// lr = 2e-3 * (1e8/N)^0.5 and B = 2^18 tokens, and the highest learning rates diverged.
SweepLog bowl_sweep(const std::vector<std::pair<double, double>>& cells) {
  SweepLog log;
  LaunchRecord launch;
  launch.start_time = 1.7e9;
  launch.end_time = 1.7e9 + 100;
  launch.ranks = 3;
  launch.ended = "completed";
  launch.command = "hpsweep run job.ini --out s.h5";
  log.launches.push_back(launch);
  double clock = launch.start_time;
  int n = 0;
  for (const auto& [N, D] : cells) {
    const double lr0 = 2e-3 * std::sqrt(1e8 / N), b0 = 262144;
    for (double lr : {5e-4, 1e-3, 2e-3, 4e-3, 8e-3, 3.2e-2})
      for (std::int64_t batch : {32, 64, 128, 256, 512}) {
        TrialRecord r;
        r.trial.point = TrialPoint{N, D, lr, batch, 2048, 0.1, 0};
        r.trial.id = trial_id(r.trial.point, "");
        r.rank = 1 + n++ % 2;
        r.start_time = clock;
        r.wall_time = 0.5;
        clock += 0.25;
        if (lr > 1e-2) {
          r.outcome.state = TrialState::Diverged;
        } else {
          const double x = std::log(lr / lr0), y = std::log(r.trial.point.batch_tokens() / b0);
          r.outcome.state = TrialState::Done;
          r.outcome.smooth_loss = r.outcome.final_loss =
              1.8 + 400 / std::pow(N, 0.34) + 410 / std::pow(D, 0.28) + 0.02 * x * x + 0.01 * y * y;
        }
        log.add_result(std::move(r));
      }
  }
  return log;
}

std::string block(const std::string& data, const std::string& name) {
  const auto start = data.find("# [" + name + "]");
  if (start == std::string::npos) return "";
  const auto end = data.find("\n\n\n", start);
  return data.substr(start, end == std::string::npos ? std::string::npos : end - start);
}

std::size_t rows(const std::string& block_text) {
  std::size_t n = 0;
  std::istringstream in(block_text);
  for (std::string line; std::getline(in, line);) n += !line.empty() && line[0] != '#';
  return n;
}

class Report : public TempDirTest {
 protected:
  ReportOptions options(const std::string& gnuplot) {
    ReportOptions o;
    o.out_dir = path("report");
    o.gnuplot = gnuplot;
    o.fit.bootstrap.resamples = 50;
    o.fit.target_params = 7e9;
    o.fit.target_tokens = 1.4e12;
    return o;
  }
};

}  // namespace

TEST_F(Report, CellMapsHoldEveryRunTheDivergedOnesAndTheOptimum) {
  const SweepLog log = bowl_sweep({{1e8, 2e9}, {3e8, 6e9}});
  ReportOptions o = options("gnuplot");
  o.fit.selection = parse_selection("within:0.25%");  // the optimum is then exactly a grid point
  ReportInput in{log, "s.h5", o, collect_cells(log)};
  const ReportSection s = cells_section(in);
  ASSERT_EQ(s.figures.size(), 2u);
  EXPECT_TRUE(s.missing.empty());
  const ReportFigure& f = s.figures[0];
  EXPECT_EQ(f.name, "cell_01_n1e8_d2e9");
  EXPECT_EQ(rows(block(f.data, "loss 0")), 25u);     // 5 learning rates x 5 batch sizes finished
  EXPECT_EQ(rows(block(f.data, "unusable 0")), 5u);  // lr 3.2e-2 diverged at every batch size
  // The optimum is the bowl's minimum, a grid point here: lr 2e-3, B = 128 x 2048 tokens.
  EXPECT_NE(block(f.data, "optimum").find("\n0.002 262144 "), std::string::npos) << f.data;
  EXPECT_EQ(rows(block(f.data, "plateau")), 5u);  // a closed outline
  // Every block the script plots is in the data file.
  const std::regex used("index \"\\[([a-z0-9 ]+)\\]\"");
  for (std::sregex_iterator it(f.plot.begin(), f.plot.end(), used), end; it != end; ++it)
    EXPECT_FALSE(block(f.data, (*it)[1]).empty()) << (*it)[1];
  EXPECT_NE(f.caption.find("diverged or failed"), std::string::npos);
}

TEST_F(Report, WithoutGnuplotEveryScriptAndDataFileIsWrittenAndThePageSaysSo) {
  const SweepLog log = bowl_sweep({{1e8, 2e9}, {1e8, 6e9}, {1e8, 2e10}, {3e8, 6e9}, {3e8, 2e10}, {3e8, 6e10}});
  const ReportResult r = write_report(log, "s.h5", options(path("no-such-gnuplot")));
  EXPECT_FALSE(r.gnuplot_found);
  EXPECT_EQ(r.rendered, 0u);
  // 6 cells, 3 law figures, the loss law, states and timeline.
  EXPECT_EQ(r.figures, 12u);
  std::set<std::string> scripts;
  for (const auto& e : fs::directory_iterator(path("report/figures"))) {
    const std::string name = e.path().filename().string();
    EXPECT_TRUE(e.path().extension() == ".gp" || e.path().extension() == ".dat") << name;
    if (e.path().extension() == ".gp") {
      scripts.insert(e.path().stem().string());
      EXPECT_TRUE(fs::exists(e.path().parent_path() / (e.path().stem().string() + ".dat"))) << name;
      const std::string gp = read_bytes(e.path().string());
      EXPECT_NE(gp.find("gnuplot " + name), std::string::npos) << "the header says how to rerun it";
      EXPECT_NE(gp.find("set terminal svg"), std::string::npos);
      EXPECT_NE(gp.find("set terminal pngcairo"), std::string::npos);
    }
  }
  EXPECT_EQ(scripts.size(), 12u);
  EXPECT_TRUE(scripts.count("laws_lr") && scripts.count("laws_batch") && scripts.count("loss_law") &&
              scripts.count("health_timeline"));
  const std::string html = read_bytes(r.index_path);
  EXPECT_NE(html.find("Figures were not rendered"), std::string::npos);
  EXPECT_EQ(html.find(".svg"), std::string::npos) << "no link to a figure that does not exist";
  EXPECT_NE(html.find("figures/laws_lr.gp"), std::string::npos);
  EXPECT_NE(html.find("Prediction for N = 7e9"), std::string::npos);
  EXPECT_TRUE(fs::exists(path("report/fit.json")));
}

TEST_F(Report, OneCellCannotBeFittedButItsMapAndTheHealthAreStillReported) {
  const SweepLog log = bowl_sweep({{1e8, 2e9}});
  ReportOptions o = options(path("no-such-gnuplot"));
  o.png = false;
  const ReportResult r = write_report(log, "s.h5", o);
  EXPECT_EQ(r.figures, 3u);  // the cell, states, timeline
  const std::string html = read_bytes(r.index_path);
  EXPECT_NE(html.find("Not shown: no fit: cannot fit: 1 usable (N, D) cells"), std::string::npos) << html;
  EXPECT_NE(html.find("cell_01_n1e8_d2e9.gp"), std::string::npos);
  EXPECT_NE(read_bytes(path("report/figures/cell_01_n1e8_d2e9.gp")).find("formats = \"svg\"\n"), std::string::npos)
      << "--no-png: the script renders SVG only";
}

TEST_F(Report, ASectionThatFailsIsReportedAndTheOthersAreWritten) {
  const SweepLog log = bowl_sweep({{1e8, 2e9}, {3e8, 6e9}});
  const std::vector<SectionBuilder> sections = {
      summary_section, [](const ReportInput&) -> ReportSection { throw Error("broken on purpose"); }, health_section};
  const ReportResult r = write_report(log, "s.h5", options(path("no-such-gnuplot")), sections);
  ASSERT_EQ(r.problems.size(), 1u);
  EXPECT_NE(r.problems[0].find("broken on purpose"), std::string::npos);
  EXPECT_NE(read_bytes(r.index_path).find("Trials per rank over time"), std::string::npos);
}

TEST(ReportHtml, EscapesMarkup) {
  EXPECT_EQ(html_escape("<a href=\"x\">&'"), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
}

namespace {

const char* kStoredJob = R"([sweep]
name = stored
[scales]
params = 1e8, 3e8
tokens_per_param = 20
[grid]
lr = 1e-3, 2e-3
batch = 32, 64
[backend]
kind = surrogate
)";

std::string thrown_by(const SweepLog& log, const std::string& sweep_path) {
  try {
    stored_job(log, sweep_path);
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(StoredJob, IsAbsentForIngestedResultsAndParsedOtherwise) {
  SweepLog log;
  EXPECT_FALSE(stored_job(log).has_value());
  log.job_text = kStoredJob;
  const auto job = stored_job(log);
  ASSERT_TRUE(job.has_value());
  EXPECT_EQ(job->name, "stored");
  EXPECT_EQ(expand_grid(*job).size(), 8u);
}

TEST(StoredJob, RequiredStoredJobSaysWhenTheSweepStoresNone) {
  SweepLog log;
  try {
    required_stored_job(log, "in.h5");
    ADD_FAILURE() << "no error for a sweep without a job";
  } catch (const InputError& e) {
    EXPECT_STREQ(e.what(), "in.h5 (stored job): the sweep stores no job (its results were ingested, not run)");
  }
  log.job_text = kStoredJob;
  EXPECT_EQ(required_stored_job(log, "in.h5").name, "stored");
}

TEST(StoredJob, AJobThatNoLongerParsesIsAnInputErrorNamingTheSweepFile) {
  SweepLog log;
  log.job_text = std::string(kStoredJob) + "[grid]\nlr = -1\n";
  EXPECT_NE(thrown_by(log, "").find("<job stored in the sweep file>"), std::string::npos) << thrown_by(log, "");
  EXPECT_NE(thrown_by(log, "runs/s.h5").find("runs/s.h5 (stored job)"), std::string::npos)
      << thrown_by(log, "runs/s.h5");
}

TEST_F(Report, AStoredJobThatDoesNotParseCostsOnlyTheStateCounts) {
  SweepLog log = bowl_sweep({{1e8, 2e9}, {3e8, 6e9}});
  log.job_text = "[sweep]\nname = broken\n[nonsense\n";
  const ReportResult r = write_report(log, "s.h5", options(path("no-such-gnuplot")));
  const std::string html = read_bytes(r.index_path);
  EXPECT_NE(html.find("No per-state counts: &lt;job stored in the sweep file&gt;:3: invalid line"), std::string::npos)
      << html;
  EXPECT_NE(html.find("not a width sweep"), std::string::npos);
  EXPECT_NE(html.find("Prediction for N = 7e9"), std::string::npos) << "the fit does not need the job";
  EXPECT_NE(html.find("<title>hpsweep report: s.h5</title>"), std::string::npos);
}
