// CSV ingest (README "Ingest"): bad rows with file:line, --strict, the divergence rules,
// --batch-unit tokens, quoted fields, provenance, and values that are not results.
#include <cmath>

#include "hpsweep/ingest/csv_ingest.hpp"
#include "hpsweep/util/error.hpp"
#include "test_helpers.hpp"

using namespace hpsweep;

namespace {

class CsvIngest : public TempDirTest {
 protected:
  CsvIngestOptions options() const {
    CsvIngestOptions o;
    o.columns = parse_column_map("lr=lr,batch=bs,loss=loss,params=N,tokens=D");
    return o;
  }
  CsvIngestResult read(const std::string& text, const CsvIngestOptions& o) {
    write_bytes(path("r.csv"), text);
    return read_results_csv(path("r.csv"), o);
  }
  CsvIngestResult read(const std::string& text) { return read(text, options()); }
  std::string at(int line) const { return path("r.csv") + ":" + std::to_string(line) + ": "; }
  static bool has(const std::vector<std::string>& v, const std::string& needle) {
    for (const auto& s : v)
      if (s.find(needle) != std::string::npos) return true;
    return false;
  }
};

const std::string kHeader = "lr,bs,loss,N,D\n";

}  // namespace

TEST_F(CsvIngest, BadRowsAreSkippedAndReportedWithFileAndLine) {
  const auto r = read(kHeader + "0.001,32,2.5,1e7,1e9\n0.002,32,oops,1e7,1e9\n0.003,32\n0.004,-32,2.4,1e7,1e9\n");
  EXPECT_EQ(r.rows, 4u);
  ASSERT_EQ(r.records.size(), 1u);
  ASSERT_EQ(r.skipped.size(), 3u);
  EXPECT_EQ(r.skipped[0].rfind(at(3) + "'loss' is not a number: 'oops'", 0), 0u) << r.skipped[0];
  EXPECT_EQ(r.skipped[1].rfind(at(4) + "missing field", 0), 0u) << r.skipped[1];
  EXPECT_EQ(r.skipped[2].rfind(at(5) + "'bs' must be positive", 0), 0u) << r.skipped[2];
}

TEST_F(CsvIngest, StrictRefusesTheWholeFileAtTheFirstBadRow) {
  auto o = options();
  o.strict = true;
  try {
    read(kHeader + "0.001,32,2.5,1e7,1e9\n0.002,32,oops,1e7,1e9\n", o);
    FAIL() << "--strict accepted a bad row";
  } catch (const InputError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find(at(3)), std::string::npos) << what;
    EXPECT_NE(what.find("--strict: nothing imported"), std::string::npos) << what;
  }
}

TEST_F(CsvIngest, NegativeAndZeroLossesAreBadRowsNotResults) {
  const auto r =
      read(kHeader + "0.001,32,2.5,1e7,1e9\n0.002,32,-3.1,1e7,1e9\n0.003,32,0,1e7,1e9\n0.004,32,2.6,1e7,1e9\n");
  ASSERT_EQ(r.records.size(), 2u);
  for (const auto& rec : r.records) EXPECT_EQ(rec.outcome.state, TrialState::Done) << rec.outcome.error;
  ASSERT_EQ(r.skipped.size(), 2u);
  EXPECT_EQ(r.skipped[0].rfind(at(3) + "'loss' must be a positive number, got -3.1", 0), 0u) << r.skipped[0];
  EXPECT_EQ(r.skipped[1].rfind(at(4) + "'loss' must be a positive number, got 0", 0), 0u) << r.skipped[1];
}

TEST_F(CsvIngest, AFractionalBatchIsABadRowNotRounded) {
  const auto r = read(kHeader + "0.001,32.5,2.5,1e7,1e9\n0.001,32,2.5,1e7,1e9\n");
  ASSERT_EQ(r.records.size(), 1u);
  EXPECT_EQ(r.records[0].trial.point.batch, 32);
  ASSERT_EQ(r.skipped.size(), 1u);
  EXPECT_EQ(r.skipped[0].rfind(at(2) + "'bs' must be a whole number of sequences, got 32.5", 0), 0u) << r.skipped[0];
}

TEST_F(CsvIngest, BatchUnitTokensDividesBySequenceLength) {
  auto o = options();
  o.batch_in_tokens = true;
  o.seq_len = 2048;
  const auto r = read(kHeader + "0.001,262144,2.5,1e7,1e9\n0.001,1000,2.5,1e7,1e9\n", o);
  ASSERT_EQ(r.records.size(), 1u);
  EXPECT_EQ(r.records[0].trial.point.batch, 128);
  ASSERT_EQ(r.skipped.size(), 1u);
  EXPECT_NE(r.skipped[0].find("below one sequence"), std::string::npos) << r.skipped[0];
}

TEST_F(CsvIngest, DivergenceRulesNonFiniteAboveAndRatioToTheCellBest) {
  auto o = options();
  o.diverged_above = 4;
  o.diverged_ratio = 1.5;
  const auto r = read(kHeader +
                          "0.001,32,2.0,1e7,1e9\n"  // cell best
                          "0.002,32,2.9,1e7,1e9\n"  // within 1.5x
                          "0.003,32,3.1,1e7,1e9\n"  // above 1.5x the cell best
                          "0.004,32,nan,1e7,1e9\n"  // non-finite
                          "0.001,32,4.2,2e7,1e9\n"  // above --diverged-above, alone in its cell
                          "0.002,32,3.9,2e7,1e9\n",
                      o);
  ASSERT_EQ(r.records.size(), 6u);
  const TrialState expected[] = {TrialState::Done,     TrialState::Done,     TrialState::Diverged,
                                 TrialState::Diverged, TrialState::Diverged, TrialState::Done};
  for (std::size_t i = 0; i < 6; ++i) EXPECT_EQ(r.records[i].outcome.state, expected[i]) << "row " << i;
  EXPECT_NE(r.records[2].outcome.error.find("cell best 2"), std::string::npos) << r.records[2].outcome.error;
}

TEST_F(CsvIngest, QuotedHeadersAndFieldsAreRead) {
  auto o = options();
  o.columns = parse_column_map("lr=lr,batch=bs,loss=\"smooth loss\",params=N,tokens=D");
  const auto r = read("lr,bs,\"smooth loss\",N,D,note\n0.001,\"32\",\"2.5\",1e7,1e9,\"a \"\"quoted\"\", note\"\n", o);
  ASSERT_EQ(r.records.size(), 1u) << (r.skipped.empty() ? "" : r.skipped[0]);
  EXPECT_DOUBLE_EQ(r.records[0].outcome.smooth_loss, 2.5);
  EXPECT_EQ(r.records[0].trial.point.batch, 32);
}

TEST_F(CsvIngest, AMultiLineQuotedFieldKeepsLineNumbersRight) {
  const auto r = read(
      "lr,bs,loss,N,D,note\n"
      "0.001,32,2.5,1e7,1e9,\"first\nsecond\nthird\"\n"  // lines 2-4
      "0.002,32,oops,1e7,1e9,x\n"                        // line 5
      "0.003,32,bad,1e7,1e9,\"a\nb\"\n");                // lines 6-7
  ASSERT_EQ(r.records.size(), 1u);
  EXPECT_EQ(r.records[0].source, "ingest:" + path("r.csv") + ":2");
  ASSERT_EQ(r.skipped.size(), 2u);
  EXPECT_EQ(r.skipped[0].rfind(at(5), 0), 0u) << r.skipped[0];
  EXPECT_EQ(r.skipped[1].rfind(at(6), 0), 0u) << r.skipped[1];
}

TEST_F(CsvIngest, AUtf8ByteOrderMarkIsIgnored) {
  const auto r = read("\xEF\xBB\xBF" + kHeader + "0.001,32,2.5,1e7,1e9\n");
  ASSERT_EQ(r.records.size(), 1u);
}

TEST_F(CsvIngest, EveryRowKeepsItsFileAndLineAsSource) {
  const auto r = read(kHeader + "0.001,32,2.5,1e7,1e9\n\n0.002,32,2.6,1e7,1e9\n");
  ASSERT_EQ(r.records.size(), 2u);
  EXPECT_EQ(r.records[0].source, "ingest:" + path("r.csv") + ":2");
  EXPECT_EQ(r.records[1].source, "ingest:" + path("r.csv") + ":4");
}

TEST_F(CsvIngest, ARepeatedRowIsCountedOnceAsADuplicate) {
  const auto r = read(kHeader + "0.001,32,2.5,1e7,1e9\n0.001,32,2.5,1e7,1e9\n");
  EXPECT_EQ(r.records.size(), 1u);
  EXPECT_EQ(r.duplicates, 1u);
}

// Found by fuzzing (tests/fuzz/regressions/csv/): a step count beyond the range of int64 was cast
// to int64 (undefined behaviour); whole numbers are now bounded by 2^53 like the run-log ingest.
TEST_F(CsvIngest, WholeNumbersBeyondTwoToThe53AreBadRowsNotOverflows) {
  auto o = options();
  o.columns["steps"] = "steps";
  const auto r = read(
      "lr,bs,loss,N,D,steps\n0.001,32,2.5,1e7,1e9,690071992547409935536\n0.001,1e17,2.5,1e7,1e9,10\n"
      "0.001,32,2.5,1e7,1e9,100\n",
      o);
  ASSERT_EQ(r.records.size(), 1u);
  EXPECT_EQ(r.records[0].outcome.steps, 100);
  ASSERT_EQ(r.skipped.size(), 2u);
  EXPECT_EQ(r.skipped[0], at(2) + "'steps' must be at most 2^53, got 690071992547409935536");
  EXPECT_EQ(r.skipped[1], at(3) + "'bs' must be at most 2^53, got 1e17");
  // Without a steps column, D / (batch tokens) must be a representable step count.
  const auto d = read(kHeader + "0.001,1,2.5,1e7,1e300\n");
  ASSERT_EQ(d.skipped.size(), 1u);
  EXPECT_EQ(d.skipped[0].rfind(at(2) + "tokens / (batch * seq_len) = ", 0), 0u) << d.skipped[0];
}
