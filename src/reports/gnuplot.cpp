#include "reports/gnuplot.hpp"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "hpsweep/util/text.hpp"

extern char** environ;

namespace hpsweep::gnuplot {

const char* const kLossPalette =
    "set palette defined (0 '#440154', 1 '#414487', 2 '#2a788e', 3 '#22a884', 4 '#7ad151', 5 '#fde725')";

void DataBlocks::begin(const std::string& name, const std::string& columns) {
  blocks_.push_back(Block{name, "# [" + name + "] " + columns + "\n", "", 0});
}

void DataBlocks::row(std::initializer_list<double> values) {
  Block& b = blocks_.back();
  bool first = true;
  for (double v : values) {
    if (!first) b.rows += ' ';
    b.rows += num(v);
    first = false;
  }
  b.rows += "\n";
  ++b.count;
}

void DataBlocks::comment(const std::string& text) { blocks_.back().header += "# " + text + "\n"; }

bool DataBlocks::has_rows(const std::string& name) const {
  for (const auto& b : blocks_)
    if (b.name == name) return b.count > 0;
  return false;
}

std::string DataBlocks::text() const {
  std::string out;
  for (const auto& b : blocks_) {
    if (b.count == 0) continue;
    if (!out.empty()) out += "\n\n";
    out += b.header + b.rows;
  }
  return out;
}

std::string DataBlocks::source(const std::string& name) { return "DATA_FILE index \"[" + name + "]\""; }

std::string plot_command(const std::vector<std::string>& elements) {
  std::string s;
  for (const auto& e : elements) {
    if (e.empty()) continue;
    s += (s.empty() ? "plot " : ", \\\n     ") + e;
  }
  return s.empty() ? s : s + "\n";
}

std::string series_colour(std::size_t i) {
  static const char* const colours[] = {"#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#000000"};
  return colours[i % (sizeof colours / sizeof *colours)];
}

std::string num(double v) {
  if (!std::isfinite(v)) return "NaN";  // gnuplot skips NaN points
  return format_double(v);
}

std::string quote(const std::string& text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

std::string log_axis(const std::string& axis, double lo, double hi, const std::string& label, double pad) {
  if (!(lo > 0) || !(hi > 0)) lo = hi = 1;
  if (hi < lo) std::swap(lo, hi);
  lo /= pad;
  hi *= pad;
  std::string s = "set logscale " + axis + "\nset " + axis + "range [" + num(lo) + ":" + num(hi) + "]\n";
  // Label the decades when two or more fall in the range; otherwise also 3x (or 2x and 5x) them.
  const double first_decade = std::pow(10, std::floor(std::log10(lo)));
  int decades = 0;
  for (double d = first_decade; d <= hi; d *= 10) decades += d >= lo;
  if (decades >= 2) {
    s += "set format " + axis + " \"10^{%L}\"\nset m" + axis + "tics 10\n";
  } else {
    const std::vector<double> mantissas =
        hi / lo < std::pow(10.0, 1.2) ? std::vector<double>{1, 2, 5} : std::vector<double>{1, 3};
    const bool plain = lo >= 1e-3 && hi < 1e5;
    s += "set " + axis + "tics (";
    bool first = true;
    for (double decade = first_decade; decade <= hi; decade *= 10)
      for (double m : mantissas) {
        const double t = m * decade;
        if (t < lo || t > hi) continue;
        const int k = static_cast<int>(std::lround(std::log10(decade)));
        const std::string text =
            plain ? num(t) : (m == 1 ? "" : format_short(m) + "×") + "10^{" + std::to_string(k) + "}";
        s += (first ? "" : ", ") + quote(text) + " " + num(t);
        first = false;
      }
    s += ")\nset m" + axis + "tics default\n";
  }
  return s + "set " + axis + "label " + quote(label) + "\n";
}

std::string script(const ReportFigure& f, bool png) {
  std::string s;
  s += "# " + f.name + ".gp, written by `hpsweep report`: " + f.title + "\n";
  s += "# Edit and rerun in this folder:  gnuplot " + f.name + ".gp\n";
  s += "# It reads " + f.name + ".dat and writes " + f.name + ".svg" + (png ? " and " + f.name + ".png" : "") + ".\n";
  s += "DATA_FILE = " + quote(f.name + ".dat") + "\n";
  s += std::string("formats = ") + (png ? "\"svg png\"" : "\"svg\"") + "\n";
  s += "do for [fmt in formats] {\n";
  s += "reset\n";
  s += "if (fmt eq \"svg\") {\n";
  s += "  set terminal svg size " + std::to_string(f.width) + "," + std::to_string(f.height) +
       " dynamic enhanced font \"Helvetica,13\" fontscale 1.2 background \"white\"\n";
  s += "  PS = 0.6  # point size factor: the svg terminal draws points larger than pngcairo\n";
  s += "} else {\n";
  s += "  set terminal pngcairo size " + std::to_string(2 * f.width) + "," + std::to_string(2 * f.height) +
       " enhanced font \"Helvetica,13\" fontscale 2 linewidth 2 pointscale 2 background \"white\"\n";
  s += "  PS = 1\n";
  s += "}\n";
  s += "set output " + quote(f.name) + ".\".\".fmt\n";
  s += "set encoding utf8\n";
  s += "set border lc rgb \"#404040\"\n";
  s += "set tics nomirror out\n";
  s += "set grid xtics ytics lc rgb \"#e4e4e4\" lw 1 dt 1\n";
  s += "set key opaque box lc rgb \"#c0c0c0\" samplen 2 spacing 1.1\n";
  s += f.plot;
  if (!f.plot.empty() && f.plot.back() != '\n') s += "\n";
  s += "unset output\n";
  s += "}\n";
  return s;
}

RunResult run(const std::string& program, const std::string& dir, const std::string& script_name) {
  RunResult result;
  int err_pipe[2];
  if (pipe(err_pipe) != 0) {
    result.status = RunResult::Failed;
    result.message = std::string("cannot create a pipe: ") + std::strerror(errno);
    return result;
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addchdir_np(&actions, dir.c_str());
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, err_pipe[1], 2);
  posix_spawn_file_actions_addclose(&actions, err_pipe[0]);
  std::vector<char*> argv = {const_cast<char*>(program.c_str()), const_cast<char*>(script_name.c_str()), nullptr};
  pid_t pid = 0;
  const int spawn_error = posix_spawnp(&pid, program.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(err_pipe[1]);
  if (spawn_error != 0) {
    close(err_pipe[0]);
    result.status = spawn_error == ENOENT || spawn_error == EACCES ? RunResult::NotFound : RunResult::Failed;
    result.message = "cannot run '" + program + "': " + std::strerror(spawn_error);
    return result;
  }
  // Read standard error to the end before waiting, so a chatty gnuplot cannot block on the pipe.
  std::string err;
  char buf[4096];
  for (ssize_t n; (n = read(err_pipe[0], buf, sizeof buf)) != 0;) {
    if (n < 0) {
      if (errno == EINTR) continue;
      break;
    }
    err.append(buf, static_cast<std::size_t>(n));
  }
  close(err_pipe[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return result;
  result.status = RunResult::Failed;
  // posix_spawnp reports a missing program as exit status 127 on some C libraries.
  if (WIFEXITED(status) && WEXITSTATUS(status) == 127 && err.empty()) {
    result.status = RunResult::NotFound;
    result.message = "cannot run '" + program + "'";
    return result;
  }
  if (err.size() > 1500) err = "..." + err.substr(err.size() - 1500);
  result.message = program + " " + script_name + " " +
                   (WIFEXITED(status) ? "exited with status " + std::to_string(WEXITSTATUS(status))
                                      : "was killed by signal " + std::to_string(WTERMSIG(status))) +
                   (err.empty() ? "" : ": " + trim(err));
  return result;
}

}  // namespace hpsweep::gnuplot
