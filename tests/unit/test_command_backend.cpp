// The command backend against real child processes (/bin/sh scripts) and its result protocol.
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <map>
#include <thread>

#include "hpsweep/backends/command.hpp"
#include "hpsweep/util/error.hpp"
#include "hpsweep/util/json_value.hpp"
#include "hpsweep/util/stop_signals.hpp"
#include "test_helpers.hpp"

using namespace hpsweep;

namespace {

TrialOutcome parse_ok(const std::string& text, bool whole = false) {
  TrialOutcome out;
  std::string why;
  EXPECT_TRUE(parse_command_result(text, whole, out, why)) << text << " -> " << why;
  return out;
}

std::string parse_error(const std::string& text, bool whole = false) {
  TrialOutcome out;
  std::string why;
  EXPECT_FALSE(parse_command_result(text, whole, out, why)) << text << " was accepted";
  return why;
}

// True while `pid` exists and is not a zombie.
bool process_alive(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat;
  if (!std::getline(in, stat)) return false;
  const auto close = stat.rfind(')');
  return close != std::string::npos && close + 2 < stat.size() && stat[close + 2] != 'Z';
}

pid_t read_pid(const std::string& path) {
  for (int i = 0; i < 100; ++i) {
    std::ifstream in(path);
    long pid = 0;
    if (in >> pid && pid > 0) return static_cast<pid_t>(pid);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return 0;
}

class CommandBackendRun : public TempDirTest {
 protected:
  TrialOutcome run_script(const std::string& script, double timeout_s = 0, bool result_file = false) {
    // The script goes to a file: braces in argv are placeholders.
    write_bytes(path("trial.sh"), script + "\n");
    CommandSettings s;
    s.argv = {"/bin/sh", path("trial.sh")};
    s.timeout_s = timeout_s;
    s.result_from_file = result_file;
    s.trial_root = dir_ + "/trials";
    CommandBackend backend(s, 7);
    Trial t;
    t.id = 0x1234abcdULL;
    t.point = TrialPoint{1e6, 2e6, 0.01, 8, 128, 0.1, 0, ""};
    return backend.run(t);
  }
  std::string trial_dir() const { return dir_ + "/trials/" + std::string("000000001234abcd"); }
};

}  // namespace

TEST(CommandResult, LastJsonLineWithALossIsTheResultAndItsCurveIsSmoothed) {
  const auto out = parse_ok(
      "step 1\n{\"loss\": 9}\n{\"loss\": 2.5, \"steps\": 30, \"curve\": {\"step\": [10, 20, 30], \"loss\": [3, 2.7, "
      "2.5]}}\nbye\n");
  EXPECT_EQ(out.state, TrialState::Done);
  EXPECT_DOUBLE_EQ(out.final_loss, 2.5);
  EXPECT_EQ(out.steps, 30);
  EXPECT_EQ(out.curve.step.size(), 3u);
  EXPECT_TRUE(std::isfinite(out.smooth_loss));
}

TEST(CommandResult, PythonNanAndInfinityLossesAreDiverged) {
  for (const char* line : {"{\"loss\": NaN}", "{\"loss\": Infinity}", "{\"loss\": -Infinity}", "{\"loss\": null}"}) {
    const auto out = parse_ok(line);
    EXPECT_EQ(out.state, TrialState::Diverged) << line;
  }
}

TEST(CommandResult, AnOverflowingLossIsAnInfiniteLossAndDiverged) {
  const auto out = parse_ok("{\"loss\": 1e400}");
  EXPECT_EQ(out.state, TrialState::Diverged);
  EXPECT_TRUE(std::isinf(out.final_loss));
}

TEST(CommandResult, NegativeAndZeroLossesAreBadValues) {
  for (const char* line : {"{\"loss\": -1.5}", "{\"loss\": 0}", "{\"loss\": 2.5, \"smooth_loss\": -1}",
                           "{\"loss\": 2.5, \"curve\": {\"step\": [1, 2], \"loss\": [3, -0.5]}}"}) {
    const std::string why = parse_error(line);
    EXPECT_NE(why.find("must be a positive number"), std::string::npos) << line << " -> " << why;
  }
}

TEST(CommandResult, DivergedAcceptsOnlyJsonBooleans) {
  EXPECT_EQ(parse_ok("{\"loss\": 2.5, \"diverged\": true}").state, TrialState::Diverged);
  EXPECT_EQ(parse_ok("{\"loss\": 2.5, \"diverged\": false}").state, TrialState::Done);
  for (const char* line : {"{\"loss\": 2.5, \"diverged\": \"yes\"}", "{\"loss\": 2.5, \"diverged\": 1}",
                           "{\"loss\": 2.5, \"diverged\": \"true\"}"}) {
    const std::string why = parse_error(line);
    EXPECT_NE(why.find("\"diverged\" must be true or false"), std::string::npos) << line << " -> " << why;
  }
}

TEST(CommandResult, ALossThatIsNotANumberIsABadValue) {
  EXPECT_NE(parse_error("{\"loss\": \"low\"}").find("\"loss\""), std::string::npos);
  EXPECT_NE(parse_error("{\"loss\": 2.5, \"steps\": 1.5}").find("\"steps\""), std::string::npos);
}

TEST(CommandResult, CurveWithMoreStepsThanLossesIsRefused) {
  const std::string why = parse_error("{\"loss\": 2.5, \"curve\": {\"step\": [1, 2, 3], \"loss\": [3, 2]}}");
  EXPECT_NE(why.find("3 steps but 2 losses"), std::string::npos) << why;
}

TEST(CommandResult, WithoutALossLineTheReasonSaysSo) {
  EXPECT_NE(parse_error("hello\n{\"acc\": 1}\n").find("no JSON line with a \"loss\""), std::string::npos);
  EXPECT_NE(parse_error("[1,2]", true).find("not a JSON object with a \"loss\""), std::string::npos);
}

TEST(CommandResult, MetricsFileIsReadAsOneJsonObject) {
  const auto out = parse_ok("{\n  \"loss\": 3.25,\n  \"diverged\": false\n}\n", true);
  EXPECT_EQ(out.state, TrialState::Done);
  EXPECT_DOUBLE_EQ(out.final_loss, 3.25);
}

TEST_F(CommandBackendRun, AResultLineMakesTheTrialDone) {
  const auto out = run_script("echo '{\"loss\": 2.75}'");
  EXPECT_EQ(out.state, TrialState::Done) << out.error;
  EXPECT_DOUBLE_EQ(out.final_loss, 2.75);
}

TEST_F(CommandBackendRun, ResultFileIsReadFromTheTrialDirectory) {
  const auto out = run_script("echo '{\"loss\": 3.5}' > \"$HPSWEEP_TRIAL_DIR/metrics.json\"", 0, true);
  EXPECT_EQ(out.state, TrialState::Done) << out.error;
  EXPECT_DOUBLE_EQ(out.final_loss, 3.5);
}

TEST_F(CommandBackendRun, DivergedFromTheProgramIsRecordedDiverged) {
  const auto out = run_script("echo '{\"loss\": 2.5, \"diverged\": true}'");
  EXPECT_EQ(out.state, TrialState::Diverged);
}

TEST_F(CommandBackendRun, ABadLossIsFailedAndNamesTheTrial) {
  const auto out = run_script("echo '{\"loss\": -1.5}'");
  EXPECT_EQ(out.state, TrialState::Failed);
  EXPECT_NE(out.error.find("000000001234abcd"), std::string::npos) << out.error;
  EXPECT_NE(out.error.find("-1.5"), std::string::npos) << out.error;
}

TEST_F(CommandBackendRun, TheProgramSeesTheTrialsVariablesOverTheWorkersEnvironment) {
  // The environment is built before the fork (the child of a threaded worker must not allocate).
  // /usr/bin/env prints the environment exactly as the program got it (a shell would rebuild it):
  // a variable the trial sets must appear once, with the trial's value.
  setenv("HPSWEEP_TEST_KEEP", "kept", 1);
  setenv("HPSWEEP_LR", "stale", 1);
  CommandSettings s;
  s.argv = {"/usr/bin/env"};
  s.trial_root = dir_ + "/trials";
  CommandBackend backend(s, 7);
  Trial t;
  t.id = 0x1234abcdULL;
  t.point = TrialPoint{1e6, 2e6, 0.01, 8, 128, 0.1, 0, ""};
  (void)backend.run(t);  // FAILED: env prints no result line
  unsetenv("HPSWEEP_TEST_KEEP");
  unsetenv("HPSWEEP_LR");
  std::ifstream in(trial_dir() + "/stdout.txt");
  std::map<std::string, std::vector<std::string>> seen;
  for (std::string line; std::getline(in, line);)
    seen[line.substr(0, line.find('='))].push_back(line.substr(line.find('=') + 1));
  EXPECT_EQ(seen["HPSWEEP_LR"], std::vector<std::string>{"0.01"});
  EXPECT_EQ(seen["HPSWEEP_TEST_KEEP"], std::vector<std::string>{"kept"});
  EXPECT_EQ(seen["HPSWEEP_TRIAL_ID"], std::vector<std::string>{"000000001234abcd"});
  EXPECT_EQ(seen["PATH"].size(), 1u);
}

TEST_F(CommandBackendRun, AProgramThatCannotBeExecutedIsFailedWithTheReason) {
  CommandSettings s;
  s.argv = {path("no-such-program")};
  s.trial_root = dir_ + "/trials";
  CommandBackend backend(s, 7);
  Trial t;
  t.id = 0x1234abcdULL;
  t.point = TrialPoint{1e6, 2e6, 0.01, 8, 128, 0.1, 0, ""};
  const TrialOutcome out = backend.run(t);
  EXPECT_EQ(out.state, TrialState::Failed);
  EXPECT_NE(out.error.find("cannot execute '" + path("no-such-program") + "': No such file or directory"),
            std::string::npos)
      << out.error;
}

TEST_F(CommandBackendRun, AProgramThatKillsItselfIsFailedWithItsSignalNamed) {
  for (const auto& [sig, name] : std::vector<std::pair<std::string, std::string>>{
           {"SEGV", "SIGSEGV"}, {"KILL", "SIGKILL"}, {"TERM", "SIGTERM"}}) {
    const auto out = run_script("echo started >&2; kill -" + sig + " $$");
    EXPECT_EQ(out.state, TrialState::Failed) << name << ": " << out.error;
    EXPECT_NE(out.error.find("killed by " + name), std::string::npos) << out.error;
    EXPECT_NE(out.error.find("started"), std::string::npos) << "stderr tail missing: " << out.error;
  }
}

TEST_F(CommandBackendRun, ATrialKilledWhileItsWorkerIsSignalledTooIsLostSoItRerunsOnResume) {
  // Slurm's preemption signals every process of the step: the worker (here, this process) and
  // the trial. Such a trial was lost with the job, not failed.
  count_stop_signals();
  const auto out = run_script("kill -TERM $PPID; sleep 0.1; kill -TERM $$");
  for (int s : {SIGINT, SIGTERM, SIGUSR1, SIGHUP}) std::signal(s, SIG_DFL);
  EXPECT_EQ(out.state, TrialState::Lost) << out.error;
  EXPECT_NE(out.error.find("while the job itself was being stopped"), std::string::npos) << out.error;
}

TEST_F(CommandBackendRun, AProgramIgnoringSigtermGetsSigkillAfterTheTimeout) {
  const auto t0 = std::chrono::steady_clock::now();
  const auto out = run_script("trap '' TERM; sleep 60", 0.3);
  const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(out.state, TrialState::Timeout);
  EXPECT_NE(out.error.find("timed out after 0.3 s"), std::string::npos) << out.error;
  EXPECT_LT(took, 10.0);
}

TEST_F(CommandBackendRun, ASetsidGrandchildDoesNotSurviveATimeout) {
  const std::string pidfile = path("grandchild.pid");
  const auto out = run_script("setsid sleep 300 & echo $! > " + pidfile + "; sleep 60", 0.5);
  EXPECT_EQ(out.state, TrialState::Timeout);
  const pid_t grandchild = read_pid(pidfile);
  ASSERT_GT(grandchild, 0);
  bool alive = process_alive(grandchild);
  for (int i = 0; i < 50 && alive; ++i, alive = process_alive(grandchild))
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  if (alive) kill(grandchild, SIGKILL);
  EXPECT_FALSE(alive) << "the setsid grandchild " << grandchild << " outlived the timed-out trial";
}

TEST_F(CommandBackendRun, ASetsidGrandchildDoesNotOutliveAFinishedTrial) {
  const std::string pidfile = path("daemon.pid");
  const auto out = run_script("setsid sleep 300 & echo $! > " + pidfile + "; echo '{\"loss\": 2.5}'");
  EXPECT_EQ(out.state, TrialState::Done) << out.error;
  const pid_t grandchild = read_pid(pidfile);
  ASSERT_GT(grandchild, 0);
  bool alive = process_alive(grandchild);
  for (int i = 0; i < 50 && alive; ++i, alive = process_alive(grandchild))
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  if (alive) kill(grandchild, SIGKILL);
  EXPECT_FALSE(alive) << "the setsid grandchild " << grandchild << " outlived the finished trial";
}

TEST_F(CommandBackendRun, HugeOutputIsKeptAsHeadAndTailAndSaysSo) {
  // 3 MB of output, then the result line: the result is still found, the kept file is small.
  const auto out = run_script(
      "i=0; while [ $i -lt 3000 ]; do printf '%01000d\\n' $i; i=$((i+1)); done; echo '{\"loss\": 2.25}'; "
      "i=0; while [ $i -lt 3000 ]; do printf '%01000d\\n' $i >&2; i=$((i+1)); done");
  EXPECT_EQ(out.state, TrialState::Done) << out.error;
  EXPECT_DOUBLE_EQ(out.final_loss, 2.25);
  for (const char* name : {"/stdout.txt", "/stderr.txt"}) {
    const std::string kept = read_bytes(trial_dir() + name);
    EXPECT_LT(kept.size(), 200000u) << name;
    EXPECT_NE(kept.find("bytes of output omitted"), std::string::npos) << name;
    EXPECT_EQ(kept.rfind("0000", 0), 0u) << name << ": the head was not kept";
  }
  EXPECT_NE(read_bytes(trial_dir() + "/stdout.txt").find("{\"loss\": 2.25}"), std::string::npos);
}

// The typed tree the command backend reads result lines into (parse_json_value, on the same
// simdjson reader as the run-log parsers).
TEST(JsonValue, KeepsTypesSoAStringTrueIsNotTheBooleanAndARepeatedKeyKeepsItsLastValue) {
  JsonValue v;
  std::string why;
  ASSERT_TRUE(
      parse_json_value(R"( {"a": "true", "b": true, "c": null, "d": [1, 2.5e-3, -0], "e": {"f": "\u00e9\ud83d\ude00"},
                                     "loss": 1, "loss": 2} )",
                       v, why))
      << why;
  EXPECT_EQ(v.find("a")->kind, JsonValue::Kind::String);
  EXPECT_EQ(v.find("a")->text, "true");
  EXPECT_EQ(v.find("b")->kind, JsonValue::Kind::Bool);
  EXPECT_TRUE(v.find("b")->boolean);
  EXPECT_EQ(v.find("c")->kind, JsonValue::Kind::Null);
  ASSERT_EQ(v.find("d")->items.size(), 3u);
  EXPECT_DOUBLE_EQ(v.find("d")->items[1].number, 2.5e-3);
  EXPECT_EQ(v.find("d")->items[1].text, "2.5e-3");                      // the literal as written
  EXPECT_EQ(v.find("e")->find("f")->text, "\xC3\xA9\xF0\x9F\x98\x80");  // a surrogate pair is one code point
  EXPECT_DOUBLE_EQ(v.find("loss")->number, 2);
  EXPECT_EQ(v.find("nope"), nullptr);
}

TEST(JsonValue, RefusesBrokenOrTooDeepTextWithAReasonAndItsLine) {
  JsonValue v;
  std::string why;
  EXPECT_FALSE(parse_json_value("{\"a\": 1,\n \"b\": }", v, why));
  EXPECT_NE(why.find("line 2"), std::string::npos) << why;
  EXPECT_FALSE(parse_json_value("{\"a\": 1} trailing", v, why));
  EXPECT_FALSE(parse_json_value("[1, 2]", v, why));  // a result is an object
  EXPECT_NE(why.find("not a JSON object"), std::string::npos) << why;
  std::string deep = "{\"a\": ";
  for (int i = 0; i < 70; ++i) deep += "[";
  for (int i = 0; i < 70; ++i) deep += "]";
  EXPECT_FALSE(parse_json_value(deep + "}", v, why));
  EXPECT_NE(why.find("deeper than 64"), std::string::npos) << why;
}
