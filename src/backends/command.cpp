#include "hpsweep/backends/command.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
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
#include "hpsweep/util/json_value.hpp"
#include "hpsweep/util/stop_signals.hpp"
#include "hpsweep/util/text.hpp"

namespace hpsweep {

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

namespace {
std::string join_commas(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ",") + x;
  return s;
}
}  // namespace

std::vector<std::string> expand_argv(const std::vector<std::string>& templ, const Trial& t, std::uint64_t seed,
                                     const std::string& trial_dir, const Placement& placement) {
  const TrialPoint& p = t.point;
  const std::vector<std::string> hosts = placement.placed() ? placement.hosts : std::vector<std::string>{host_name()};
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
      {"trial_dir", trial_dir},
      {"gpus", std::to_string(placement.gpus)},
      {"gpus_per_node", std::to_string(placement.devices.size())},
      {"devices", join_commas(placement.devices)},
      {"cpus", std::to_string(placement.cpus)},
      {"nnodes", std::to_string(hosts.size())},
      {"hosts", join_commas(hosts)},
      {"master_addr", hosts.front()}};
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

namespace {

// A result number: JSON numbers (NaN, Infinity and overflow included) and null (a NaN).
bool result_number(const JsonValue& v, const std::string& name, double& out, std::string& why) {
  if (v.kind == JsonValue::Kind::Null) {
    out = std::numeric_limits<double>::quiet_NaN();
    return true;
  }
  if (v.kind != JsonValue::Kind::Number) {
    why = "\"" + name + "\" must be a number, got " + JsonValue::kind_name(v.kind) +
          (v.kind == JsonValue::Kind::String ? " (\"" + v.text + "\")" : "");
    return false;
  }
  out = v.number;
  return true;
}

// Losses are cross-entropies: a finite one is positive. Non-finite means diverged.
bool result_loss(const JsonValue& v, const std::string& name, double& out, std::string& why) {
  if (!result_number(v, name, out, why)) return false;
  if (std::isfinite(out) && out <= 0) {
    why = "\"" + name + "\" must be a positive number (or NaN, Infinity or null for a diverged run), got " + v.text;
    return false;
  }
  return true;
}

bool result_whole(const JsonValue& v, const std::string& name, std::int64_t& out, std::string& why) {
  double x = 0;
  if (!result_number(v, name, x, why)) return false;
  if (!std::isfinite(x) || x < 0 || x != std::floor(x) || x > 9.0e15) {
    why = "\"" + name + "\" must be a whole number >= 0, got " + (v.text.empty() ? "null" : v.text);
    return false;
  }
  out = static_cast<std::int64_t>(x);
  return true;
}

bool read_result_object(const JsonValue& tree, TrialOutcome& out, std::string& why) {
  if (!result_loss(*tree.find("loss"), "loss", out.final_loss, why)) return false;
  if (const JsonValue* curve = tree.find("curve")) {
    const JsonValue* steps = curve->find("step");
    const JsonValue* losses = curve->find("loss");
    if (!steps || !losses || steps->kind != JsonValue::Kind::Array || losses->kind != JsonValue::Kind::Array) {
      why = "\"curve\" must be an object with \"step\" and \"loss\" arrays";
      return false;
    }
    if (steps->items.size() != losses->items.size()) {
      why = "result 'curve' has " + std::to_string(steps->items.size()) + " steps but " +
            std::to_string(losses->items.size()) + " losses";
      return false;
    }
    for (std::size_t i = 0; i < steps->items.size(); ++i) {
      std::int64_t step = 0;
      double loss = 0;
      if (!result_whole(steps->items[i], "curve.step[" + std::to_string(i) + "]", step, why) ||
          !result_loss(losses->items[i], "curve.loss[" + std::to_string(i) + "]", loss, why))
        return false;
      out.curve.step.push_back(step);
      out.curve.loss.push_back(loss);
    }
  }
  if (const JsonValue* s = tree.find("smooth_loss")) {
    if (!result_loss(*s, "smooth_loss", out.smooth_loss, why)) return false;
  } else if (!out.curve.loss.empty() && std::isfinite(out.final_loss)) {
    out.smooth_loss = smoothed_final_loss(out.curve.step, out.curve.loss);
  } else {
    out.smooth_loss = out.final_loss;
  }
  if (const JsonValue* s = tree.find("steps")) {
    if (!result_whole(*s, "steps", out.steps, why)) return false;
  } else if (!out.curve.step.empty()) {
    out.steps = out.curve.step.back();
  }
  bool diverged = false;
  if (const JsonValue* d = tree.find("diverged")) {
    if (d->kind != JsonValue::Kind::Bool) {
      const std::string shown = d->kind == JsonValue::Kind::String ? "\"" + d->text + "\"" : d->text;
      why = std::string("\"diverged\" must be true or false, got ") + JsonValue::kind_name(d->kind) +
            (shown.empty() ? "" : " (" + shown + ")");
      return false;
    }
    diverged = d->boolean;
  }
  out.state = diverged || !std::isfinite(out.final_loss) ? TrialState::Diverged : TrialState::Done;
  if (out.state == TrialState::Diverged)
    out.error = diverged ? "the training program reported a diverged run"
                         : "the training program reported a non-finite loss (" + format_double(out.final_loss) + ")";
  return true;
}

}  // namespace

bool parse_command_result(const std::string& text, bool whole_text_is_json, TrialOutcome& out, std::string& why) {
  std::vector<std::string_view> candidates;
  if (whole_text_is_json) {
    candidates.push_back(text);
  } else {
    // The last JSON line with a "loss" wins; scanning from the end reads no more than needed.
    std::size_t end = text.size();
    while (end > 0) {
      const std::size_t nl = end == 0 ? std::string::npos : text.rfind('\n', end - 1);
      const std::size_t begin = nl == std::string::npos ? 0 : nl + 1;
      const std::string_view line(text.data() + begin, end - begin);
      const std::string t = trim(std::string(line.substr(0, std::min<std::size_t>(line.size(), 64))));
      if (!t.empty() && t.front() == '{') candidates.push_back(line);
      if (nl == std::string::npos) break;
      end = nl;
    }
  }
  for (const auto& c : candidates) {
    JsonValue tree;
    std::string parse_why;
    if (!parse_json_value(c, tree, parse_why) || !tree.find("loss")) continue;
    out = TrialOutcome{};
    if (read_result_object(tree, out, why)) return true;
    why = "bad result: " + why;
    return false;
  }
  why = whole_text_is_json ? "the metrics file is not a JSON object with a \"loss\""
                           : "no JSON line with a \"loss\" on standard output";
  return false;
}

namespace {

constexpr std::size_t kKeptOutputBytes = 64 * 1024;          // head and tail of stdout/stderr kept per trial
constexpr std::size_t kResultWindowBytes = 8 * 1024 * 1024;  // the result line must be in the last 8 MB
constexpr double kKillGraceSeconds = 3;                      // SIGTERM, then SIGKILL this much later

std::uint64_t file_size(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? static_cast<std::uint64_t>(st.st_size) : 0;
}

// Up to `n` bytes of `path` from `offset`.
std::string read_range(const std::string& path, std::uint64_t offset, std::size_t n) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  in.seekg(static_cast<std::streamoff>(offset));
  std::string out(n, '\0');
  in.read(out.data(), static_cast<std::streamsize>(n));
  out.resize(static_cast<std::size_t>(in.gcount()));
  return out;
}

// The last `n` bytes of a file, starting at a line boundary unless the file is shorter.
std::string read_tail(const std::string& path, std::size_t n, bool whole_lines) {
  const std::uint64_t size = file_size(path);
  if (size <= n) return read_range(path, 0, static_cast<std::size_t>(size));
  std::string t = read_range(path, size - n, n);
  if (whole_lines) {
    const auto nl = t.find('\n');
    t = nl == std::string::npos ? std::string() : t.substr(nl + 1);
  }
  return "..." + t;
}

// Keeps the first and last kKeptOutputBytes of a long output file, and says what was cut.
void cap_output_file(const std::string& path) {
  const std::uint64_t size = file_size(path);
  if (size <= 2 * kKeptOutputBytes + 4096) return;
  const std::string head = read_range(path, 0, kKeptOutputBytes);
  const std::string tail = read_range(path, size - kKeptOutputBytes, kKeptOutputBytes);
  const std::string tmp = path + ".capped";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << head << "\n[hpsweep: " << (size - head.size() - tail.size())
        << " bytes of output omitted here; the first and last " << kKeptOutputBytes << " bytes of " << size
        << " are kept]\n"
        << tail;
  }
  std::error_code ec;
  if (file_size(tmp) < 2 * kKeptOutputBytes)  // disk full: keep the uncapped file rather than lose it
    std::filesystem::remove(tmp, ec);
  else
    std::filesystem::rename(tmp, path, ec);
}

std::string signal_name(int sig) {
  const char* abbrev = sigabbrev_np(sig);
  const char* text = strsignal(sig);
  return (abbrev ? "SIG" + std::string(abbrev) : "signal " + std::to_string(sig)) + " (signal " + std::to_string(sig) +
         (text ? std::string(", ") + text : "") + ")";
}

// Every process the trial started carries HPSWEEP_TRIAL_DIR=<its folder> in its environment,
// also after `setsid` or a double fork took it out of the trial's process group.
std::vector<pid_t> processes_with_env(const std::string& entry) {
  std::vector<pid_t> out;
  std::error_code ec;
  std::filesystem::directory_iterator it("/proc", ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    const auto& d = *it;
    const std::string name = d.path().filename().string();
    if (name.empty() ||
        !std::all_of(name.begin(), name.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); }))
      continue;
    const pid_t pid = static_cast<pid_t>(std::stol(name));
    if (pid == getpid()) continue;
    std::ifstream in(d.path() / "environ", std::ios::binary);
    std::string var;
    while (std::getline(in, var, '\0'))
      if (var == entry) {
        out.push_back(pid);
        break;
      }
  }
  return out;
}

// Signals the trial's process group and every process that carries its environment marker.
// Returns how many processes of the trial were still found.
std::size_t signal_trial_processes(pid_t group, const std::string& marker, int sig) {
  kill(-group, sig);
  const auto found = processes_with_env(marker);
  for (pid_t p : found) kill(p, sig);
  return found.size();
}

// After the trial's main process ended: nothing it started may outlive it.
void end_leftover_processes(pid_t group, const std::string& marker) {
  if (signal_trial_processes(group, marker, SIGTERM) == 0 && kill(-group, 0) != 0) return;
  const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(kKillGraceSeconds);
  while (std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    if (processes_with_env(marker).empty() && kill(-group, 0) != 0) return;
  }
  signal_trial_processes(group, marker, SIGKILL);
}

// True when a stop signal reached this worker during the trial. Signals sent to a whole step
// arrive at the trial and the worker within moments of each other: wait briefly for ours.
bool stopped_with_worker(std::uint64_t signals_before) {
  for (int i = 0; i < 20 && stop_signals_seen() == signals_before; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  return stop_signals_seen() != signals_before;
}
}  // namespace

TrialOutcome CommandBackend::run_placed(const Trial& trial, const Placement& placement) {
  namespace fs = std::filesystem;
  const std::string id = hex64(trial.id);
  const std::string dir = s_.trial_root + "/" + id;
  fs::create_directories(dir);
  const std::vector<std::string> args = expand_argv(s_.argv, trial, sweep_seed_, dir, placement);
  const std::string out_path = dir + "/stdout.txt", err_path = dir + "/stderr.txt";
  const std::string metrics_path = dir + "/metrics.json";
  fs::remove(metrics_path);

  std::vector<char*> cargv;
  for (const auto& a : args) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  const TrialPoint& p = trial.point;
  std::vector<std::pair<std::string, std::string>> env = {
      {"HPSWEEP_TRIAL_ID", id},
      {"HPSWEEP_TRIAL_DIR", dir},
      {"HPSWEEP_LR", format_double(p.lr)},
      {"HPSWEEP_BATCH", std::to_string(p.batch)},
      {"HPSWEEP_WD", format_double(p.wd)},
      {"HPSWEEP_PARAMS", format_double(p.params)},
      {"HPSWEEP_TOKENS", format_double(p.tokens)},
      {"HPSWEEP_SEQ_LEN", std::to_string(p.seq_len)},
      {"HPSWEEP_SEED", std::to_string(sweep_seed_ + static_cast<std::uint64_t>(p.repeat))}};
  if (placement.placed()) {
    const std::string devices = join_commas(placement.devices);
    for (const char* k : {"CUDA_VISIBLE_DEVICES", "ROCR_VISIBLE_DEVICES", "HIP_VISIBLE_DEVICES"})
      env.emplace_back(k, devices);
    env.emplace_back("HPSWEEP_GPUS", std::to_string(placement.gpus));
    env.emplace_back("HPSWEEP_NNODES", std::to_string(placement.hosts.size()));
    env.emplace_back("HPSWEEP_HOSTS", join_commas(placement.hosts));
    env.emplace_back("HPSWEEP_MASTER_ADDR", placement.hosts.front());
    if (placement.cpus > 0) env.emplace_back("OMP_NUM_THREADS", std::to_string(placement.cpus));
  }
  const std::string marker = "HPSWEEP_TRIAL_DIR=" + dir;
  // The child's whole environment, built here: between fork and exec a threaded worker's child
  // may only make async-signal-safe calls (setenv allocates, and another thread may have held the
  // allocator's lock at the fork: the child then waits forever).
  std::vector<std::string> env_strings;
  for (char** e = environ; e && *e; ++e) {
    const std::string_view entry(*e);
    const std::string_view key = entry.substr(0, entry.find('='));
    if (std::none_of(env.begin(), env.end(), [&](const auto& kv) { return kv.first == key; }))
      env_strings.emplace_back(entry);
  }
  for (const auto& [k, v] : env) env_strings.push_back(k + "=" + v);
  std::vector<char*> envp;
  for (auto& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);
  const std::string exec_failed = "hpsweep: cannot execute '" + args[0] + "': ";

  const pid_t worker = getpid();
  // Counted before the fork: a trial may signal the worker before the parent runs again.
  const std::uint64_t stop_signals_before = stop_signals_seen();
  const pid_t pid = fork();
  if (pid < 0) throw_system_error("cannot fork for trial", id);
  if (pid == 0) {
    // Child: its own process group (so a timeout kills everything it started), output to files.
    setpgid(0, 0);
    // A worker killed with SIGKILL cannot end its trials: the kernel ends the program instead
    // (the thread that forked waits for it, so it is alive exactly as long as the trial is).
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != worker) _exit(126);
    const int o = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const int e = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const int in = ::open("/dev/null", O_RDONLY);
    if (o < 0 || e < 0 || in < 0) _exit(126);
    dup2(in, 0), dup2(o, 1), dup2(e, 2);
    signal(SIGINT, SIG_DFL), signal(SIGTERM, SIG_DFL), signal(SIGUSR1, SIG_DFL);
    execvpe(cargv[0], cargv.data(), envp.data());
    const char* why = strerrordesc_np(errno);  // a static string: no locale, no allocation
    (void)!::write(2, exec_failed.data(), exec_failed.size());
    if (why) (void)!::write(2, why, std::strlen(why));
    (void)!::write(2, "\n", 1);
    _exit(127);
  }
  setpgid(pid, pid);
  const auto start = std::chrono::steady_clock::now();
  int status = 0;
  bool timed_out = false, escalated = false;
  double terminated_at = 0;
  auto pause = std::chrono::milliseconds(1);
  while (true) {
    const pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) break;
    if (r < 0 && errno != EINTR) throw_system_error("waitpid failed for trial", id);
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (cancelled_ && !timed_out) {
      // The sweep is stopping: end the trial like a timeout (TERM, then KILL after the grace).
      timed_out = true;
      terminated_at = elapsed;
      signal_trial_processes(pid, marker, SIGTERM);
    } else if (!timed_out && s_.timeout_s > 0 && elapsed > s_.timeout_s) {
      timed_out = true;
      terminated_at = elapsed;
      signal_trial_processes(pid, marker, SIGTERM);
    } else if (timed_out && !escalated && elapsed > terminated_at + kKillGraceSeconds) {
      escalated = true;  // the program ignores SIGTERM
      signal_trial_processes(pid, marker, SIGKILL);
    }
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::milliseconds(50));
  }
  end_leftover_processes(pid, marker);

  TrialOutcome out;
  std::string why;
  bool parsed = false;
  if (!timed_out && WIFEXITED(status) && WEXITSTATUS(status) == 0) {
    // Read only the end of stdout: a program that prints 200 MB must not cost 200 MB here.
    const std::string text = s_.result_from_file ? read_range(metrics_path, 0, kResultWindowBytes)
                                                 : read_tail(out_path, kResultWindowBytes, true);
    parsed = parse_command_result(text, s_.result_from_file, out, why);
  }
  cap_output_file(out_path);
  cap_output_file(err_path);
  auto stderr_tail = [&] { return "; stderr: " + read_tail(err_path, 2000, false); };
  if (cancelled_.exchange(false)) {
    out = TrialOutcome{};
    out.state = TrialState::Lost;
    out.error = "ended because the sweep was stopping; reruns on resume";
    return out;
  }
  if (timed_out) {
    out = TrialOutcome{};
    out.state = TrialState::Timeout;
    out.error = "timed out after " + format_short(s_.timeout_s) + " s (limit [command] timeout)";
    return out;
  }
  if (WIFSIGNALED(status) && stopped_with_worker(stop_signals_before)) {
    // Slurm signals every process of the step on preemption: the trial was lost with the job.
    out = TrialOutcome{};
    out.state = TrialState::Lost;
    out.error =
        "killed by " + signal_name(WTERMSIG(status)) + " while the job itself was being stopped; reruns on resume";
    return out;
  }
  if (WIFSIGNALED(status)) {
    // The program died of a signal hpsweep did not send (its own crash, kill from inside, the
    // OOM killer): its result, not a lost trial, so resuming does not run it forever.
    out.state = TrialState::Failed;
    out.error = "killed by " + signal_name(WTERMSIG(status)) + stderr_tail();
    return out;
  }
  if (WEXITSTATUS(status) != 0) {
    out.state = TrialState::Failed;
    out.error = "exit status " + std::to_string(WEXITSTATUS(status)) + stderr_tail();
    return out;
  }
  if (!parsed) {
    out = TrialOutcome{};
    out.state = TrialState::Failed;
    out.error = "trial " + id + ": " + why + " (see " + (s_.result_from_file ? metrics_path : out_path) + ")";
  }
  return out;
}

}  // namespace hpsweep
