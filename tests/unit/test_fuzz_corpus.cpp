// Replays every input kept in tests/fuzz/ (the crashers the fuzzer found, in regressions/FAMILY/,
// and the hand-written seeds, in seeds/FAMILY/) through the same fuzz target the fuzzer ran
// (tests/fuzz/fuzz_targets.hpp). In this build there are no sanitizers, so this checks that each
// input ends in a kept promise, without throwing; tests/run.sh --sanitize runs it under ASan/UBSan.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <string>

#include "fuzz_targets.hpp"

namespace fs = std::filesystem;

namespace {

fs::path fuzz_dir() { return fs::path(__FILE__).parent_path().parent_path() / "fuzz"; }

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Replays regressions/FAMILY and seeds/FAMILY; returns how many inputs it read.
std::size_t replay(const std::string& family, const std::function<std::string(std::string_view)>& target) {
  std::size_t n = 0;
  for (const char* kind : {"regressions", "seeds"}) {
    const fs::path dir = fuzz_dir() / kind / family;
    if (!fs::is_directory(dir)) continue;
    for (const auto& e : fs::directory_iterator(dir)) {
      if (!e.is_regular_file() || e.path().filename().string().front() == '.') continue;
      std::string broken;
      EXPECT_NO_THROW(broken = target(slurp(e.path()))) << e.path();
      EXPECT_EQ(broken, "") << e.path();
      ++n;
    }
  }
  return n;
}

}  // namespace

TEST(FuzzCorpus, KeptRunLogInputsReplayWithoutBrokenPromises) {
  EXPECT_GE(replay("log", hpsweep::fuzz::fuzz_log_parsers), 8u);
}

TEST(FuzzCorpus, KeptCsvInputsReplayWithoutBrokenPromises) {
  EXPECT_GE(replay("csv", hpsweep::fuzz::fuzz_csv_ingest), 2u);
}

TEST(FuzzCorpus, KeptJobFileInputsReplayWithoutBrokenPromises) {
  EXPECT_GE(replay("job", hpsweep::fuzz::fuzz_job_file), 2u);
}

TEST(FuzzCorpus, KeptCommandResultInputsReplayWithoutBrokenPromises) {
  EXPECT_GE(replay("command", hpsweep::fuzz::fuzz_command_result), 2u);
}

TEST(FuzzCorpus, TargetsReportBrokenPromisesInsteadOfPassingEverything) {
  // A target that cannot fail would make the replays above meaningless: each one must refuse a
  // result that breaks its promise. The csv target must accept a good file and a bad row alike.
  EXPECT_EQ(hpsweep::fuzz::fuzz_csv_ingest(std::string(1, '\0') +
                                           "lr,batch,loss,params,tokens\n1e-3,32,3.1,1e8,2e9\nx,1,1,1,1\n"),
            "");
  EXPECT_TRUE(hpsweep::fuzz::names_file_and_line("fuzz/results.csv:3: 'lr' is not a number", "fuzz/results.csv"));
  EXPECT_FALSE(hpsweep::fuzz::names_file_and_line("fuzz/results.csv: no line", "fuzz/results.csv"));
  EXPECT_FALSE(hpsweep::fuzz::names_file_and_line("other.csv:3: reason", "fuzz/results.csv"));
  EXPECT_EQ(hpsweep::fuzz::fuzz_job_file("[sweep]\nname = x\n"), "");  // refused with the file named: kept promise
  EXPECT_EQ(hpsweep::fuzz::fuzz_command_result(std::string(1, '\0') + "{\"loss\": 2.5}\n"), "");
  EXPECT_NE(hpsweep::check_parsed_run(hpsweep::ParsedRun{}), "");  // a bad run without an error
}
