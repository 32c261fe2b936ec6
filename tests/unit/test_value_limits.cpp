// Job-file number lists and grid size: limits that are stated, never silent.
#include <string>

#include "hpsweep/spec/job.hpp"
#include "hpsweep/trials/trial.hpp"
#include "hpsweep/util/error.hpp"
#include "test_helpers.hpp"

using namespace hpsweep;

namespace {
std::string error_of(const std::string& list) {
  try {
    parse_number_list(list, "jobs/t.ini:9: [grid] lr");
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST(NumberList, ARangeOfOneValueWithADifferentStopIsAnError) {
  const std::string e = error_of("log:1e-4:1e-2:1");
  EXPECT_NE(e.find("[grid] lr"), std::string::npos) << e;
  EXPECT_NE(e.find("stop"), std::string::npos) << e;
  EXPECT_EQ(parse_number_list("log:1e-3:1e-3:1", "x"), (std::vector<double>{1e-3}));
}

TEST(NumberList, ARangeCountAboveTheLimitNamesTheLimit) {
  const std::string e = error_of("lin:1:2:1e8");
  EXPECT_NE(e.find("[grid] lr"), std::string::npos) << e;
  EXPECT_NE(e.find("at most 1000000"), std::string::npos) << e;
  EXPECT_NE(error_of("lin:1:2:2.5").find("whole number"), std::string::npos);
}

TEST(GridLimit, AGridBeyondTheLimitIsRefusedNamingItsFieldsAndTheLimit) {
  const std::string text = R"([sweep]
name = big
[scales]
params = log:1e7:1e9:10
tokens = log:1e9:1e11:10
[grid]
lr = log:1e-4:1e-1:1000
batch = 32, 64
wd = 0, 0.1, 0.3
[backend]
kind = surrogate
)";
  const JobSpec job = parse_job(text, "jobs/big.ini");
  try {
    expand_grid(job);
    FAIL() << "a 600,000-trial grid was accepted";
  } catch (const InputError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("jobs/big.ini"), std::string::npos) << what;
    EXPECT_NE(what.find("600000 trials"), std::string::npos) << what;
    EXPECT_NE(what.find("the limit is 500000"), std::string::npos) << what;
    EXPECT_NE(what.find("[grid] lr 1000"), std::string::npos) << what;
  }
}
