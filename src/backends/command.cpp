#include "hpsweep/backends/command.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <boost/property_tree/json_parser.hpp>
#include <boost/property_tree/ptree.hpp>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <thread>

#include "hpsweep/trials/smoothing.hpp"
#include "hpsweep/util/error.hpp"
#include "hpsweep/util/text.hpp"

namespace hpsweep {

namespace pt = boost::property_tree;

CommandSettings CommandSettings::from_options(const std::map<std::string, std::string>& o, const std::string& root) {
  CommandSettings s;
  s.argv = split_command_line(o.at("argv"));
  if (s.argv.empty()) throw InputError("[command] argv is empty");
  s.timeout_s = std::stod(o.at("timeout"));
  const std::string result = to_lower(o.at("result"));
  if (result != "stdout" && result != "file")
    throw InputError("[command] result must be 'stdout' or 'file', got '" + o.at("result") + "'");
  s.result_from_file = result == "file";
  s.trial_root = root;
  return s;
}

std::vector<std::string> split_command_line(const std::string& text) {
  std::vector<std::string> out;
  std::string cur;
  bool in_word = false;
  char quote = 0;
  for (char c : text) {
    if (quote) {
      if (c == quote)
        quote = 0;
      else
        cur += c;
    } else if (c == '\'' || c == '"') {
      quote = c;
      in_word = true;
    } else if (std::isspace(static_cast<unsigned char>(c))) {
      if (in_word) out.push_back(cur), cur.clear(), in_word = false;
    } else {
      cur += c;
      in_word = true;
    }
  }
  if (quote) throw InputError("[command] argv has an unclosed " + std::string(1, quote) + " quote");
  if (in_word) out.push_back(cur);
  return out;
}

std::vector<std::string> expand_argv(const std::vector<std::string>& templ, const Trial& t, std::uint64_t seed,
                                     const std::string& trial_dir) {
  const TrialPoint& p = t.point;
  const std::map<std::string, std::string> values = {
      {"lr", format_double(p.lr)},
      {"batch", std::to_string(p.batch)},
      {"batch_tokens", format_double(p.batch_tokens())},
      {"wd", format_double(p.wd)},
      {"params", format_double(p.params)},
      {"tokens", format_double(p.tokens)},
      {"seq_len", std::to_string(p.seq_len)},
      {"steps", std::to_string(p.steps())},
      {"seed", std::to_string(seed + static_cast<std::uint64_t>(p.repeat))},
      {"repeat", std::to_string(p.repeat)},
      {"id", hex64(t.id)},
      {"trial_dir", trial_dir}};
  std::vector<std::string> out;
  for (const auto& arg : templ) {
    std::string r;
    for (std::size_t i = 0; i < arg.size(); ++i) {
      if (arg[i] != '{') {
        r += arg[i];
        continue;
      }
      const auto close = arg.find('}', i);
      if (close == std::string::npos) throw InputError("[command] argv: unclosed '{' in '" + arg + "'");
      const std::string name = arg.substr(i + 1, close - i - 1);
      auto it = values.find(name);
      if (it == values.end()) {
        std::vector<std::string> names;
        for (const auto& [k, v] : values) names.push_back(k);
        const std::string guess = closest_match(name, names);
        throw InputError("[command] argv: unknown placeholder {" + name + "}" +
                         (guess.empty() ? "" : "; did you mean {" + guess + "}?"));
      }
      r += it->second;
      i = close;
    }
    out.push_back(std::move(r));
  }
  return out;
}

bool parse_command_result(const std::string& text, bool whole_text_is_json, TrialOutcome& out, std::string& why) {
  std::vector<std::string> candidates;
  if (whole_text_is_json) {
    candidates.push_back(text);
  } else {
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line))
      if (trim(line).rfind('{', 0) == 0) candidates.push_back(line);
    std::reverse(candidates.begin(), candidates.end());  // the last JSON line wins
  }
  for (const auto& c : candidates) {
    pt::ptree tree;
    try {
      std::istringstream in(c);
      pt::read_json(in, tree);
    } catch (const pt::json_parser_error&) {
      continue;
    }
    const auto loss = tree.get_optional<std::string>("loss");
    if (!loss) continue;
    try {
      auto num = [](const std::string& s) {
        const std::string l = to_lower(trim(s));
        if (l == "nan" || l == "null") return std::numeric_limits<double>::quiet_NaN();
        if (l == "inf" || l == "infinity") return std::numeric_limits<double>::infinity();
        return std::stod(s);
      };
      out.final_loss = num(*loss);
      if (auto curve = tree.get_child_optional("curve")) {
        for (const auto& s : curve->get_child("step")) out.curve.step.push_back(std::stoll(s.second.data()));
        for (const auto& l : curve->get_child("loss")) out.curve.loss.push_back(num(l.second.data()));
        if (out.curve.step.size() != out.curve.loss.size()) {
          why = "result 'curve' has " + std::to_string(out.curve.step.size()) + " steps but " +
                std::to_string(out.curve.loss.size()) + " losses";
          return false;
        }
      }
      if (auto s = tree.get_optional<std::string>("smooth_loss"))
        out.smooth_loss = num(*s);
      else if (!out.curve.loss.empty() && std::isfinite(out.final_loss))
        out.smooth_loss = smoothed_final_loss(out.curve.step, out.curve.loss);
      else
        out.smooth_loss = out.final_loss;
      if (auto s = tree.get_optional<long long>("steps"))
        out.steps = *s;
      else if (!out.curve.step.empty())
        out.steps = out.curve.step.back();
      const bool diverged = tree.get<bool>("diverged", false);
      out.state = diverged || !std::isfinite(out.final_loss) ? TrialState::Diverged : TrialState::Done;
      if (out.state == TrialState::Diverged) out.error = "the training program reported a diverged run";
      return true;
    } catch (const std::exception& e) {
      why = std::string("malformed result line: ") + e.what();
      return false;
    }
  }
  why = whole_text_is_json ? "the metrics file is not a JSON object with a \"loss\""
                           : "no JSON line with a \"loss\" on standard output";
  return false;
}

namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string tail(const std::string& s, std::size_t n) { return s.size() <= n ? s : "..." + s.substr(s.size() - n); }

}  // namespace

TrialOutcome CommandBackend::run(const Trial& trial) {
  namespace fs = std::filesystem;
  const std::string dir = s_.trial_root + "/" + hex64(trial.id);
  fs::create_directories(dir);
  const std::vector<std::string> args = expand_argv(s_.argv, trial, sweep_seed_, dir);
  const std::string out_path = dir + "/stdout.txt", err_path = dir + "/stderr.txt";
  const std::string metrics_path = dir + "/metrics.json";
  fs::remove(metrics_path);

  std::vector<char*> cargv;
  for (const auto& a : args) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  const TrialPoint& p = trial.point;
  const std::vector<std::pair<std::string, std::string>> env = {
      {"HPSWEEP_TRIAL_ID", hex64(trial.id)},
      {"HPSWEEP_TRIAL_DIR", dir},
      {"HPSWEEP_LR", format_double(p.lr)},
      {"HPSWEEP_BATCH", std::to_string(p.batch)},
      {"HPSWEEP_WD", format_double(p.wd)},
      {"HPSWEEP_PARAMS", format_double(p.params)},
      {"HPSWEEP_TOKENS", format_double(p.tokens)},
      {"HPSWEEP_SEQ_LEN", std::to_string(p.seq_len)},
      {"HPSWEEP_SEED", std::to_string(sweep_seed_ + static_cast<std::uint64_t>(p.repeat))}};

  const pid_t pid = fork();
  if (pid < 0) throw_system_error("cannot fork for trial", hex64(trial.id));
  if (pid == 0) {
    // Child: its own process group (so a timeout kills everything it started), output to files.
    setpgid(0, 0);
    const int o = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const int e = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const int in = ::open("/dev/null", O_RDONLY);
    if (o < 0 || e < 0 || in < 0) _exit(126);
    dup2(in, 0), dup2(o, 1), dup2(e, 2);
    for (const auto& [k, v] : env) setenv(k.c_str(), v.c_str(), 1);
    signal(SIGINT, SIG_DFL), signal(SIGTERM, SIG_DFL), signal(SIGUSR1, SIG_DFL);
    execvp(cargv[0], cargv.data());
    const std::string msg = "hpsweep: cannot execute '" + args[0] + "': " + std::strerror(errno) + "\n";
    (void)!::write(2, msg.data(), msg.size());
    _exit(127);
  }
  setpgid(pid, pid);
  const auto start = std::chrono::steady_clock::now();
  int status = 0;
  bool timed_out = false;
  auto pause = std::chrono::milliseconds(1);
  while (true) {
    const pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) break;
    if (r < 0 && errno != EINTR) throw_system_error("waitpid failed for trial", hex64(trial.id));
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (!timed_out && s_.timeout_s > 0 && elapsed > s_.timeout_s) {
      timed_out = true;
      kill(-pid, SIGTERM);
      std::thread([pid] {  // escalate if the program ignores SIGTERM
        std::this_thread::sleep_for(std::chrono::seconds(3));
        kill(-pid, SIGKILL);
      })
          .detach();
    }
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::milliseconds(50));
  }

  TrialOutcome out;
  const std::string err = read_file(err_path);
  if (timed_out) {
    out.state = TrialState::Timeout;
    out.error = "timed out after " + format_short(s_.timeout_s) + " s (limit [command] timeout)";
    return out;
  }
  if (WIFSIGNALED(status)) {
    // Killed from outside (preemption, the OOM killer): not the trial's fault, run it again.
    out.state = TrialState::Lost;
    out.error = "killed by signal " + std::to_string(WTERMSIG(status)) + "; stderr: " + tail(err, 2000);
    return out;
  }
  if (WEXITSTATUS(status) != 0) {
    out.state = TrialState::Failed;
    out.error = "exit status " + std::to_string(WEXITSTATUS(status)) + "; stderr: " + tail(err, 2000);
    return out;
  }
  std::string why;
  const std::string text = s_.result_from_file ? read_file(metrics_path) : read_file(out_path);
  if (!parse_command_result(text, s_.result_from_file, out, why)) {
    out = TrialOutcome{};
    out.state = TrialState::Failed;
    out.error = why + " (see " + (s_.result_from_file ? metrics_path : out_path) + ")";
  }
  return out;
}

}  // namespace hpsweep
