#include "hpsweep/reports/progress.hpp"

#include <unistd.h>

#include <cmath>

#include "hpsweep/util/text.hpp"

namespace hpsweep {

Progress::Mode Progress::mode_from(const std::string& option, std::FILE* out, bool under_mpi) {
  if (option == "none") return Mode::Off;
  if (option == "lines") return Mode::Lines;
  if (option == "tty") return Mode::InPlace;
  // mpirun gives ranks a pseudo-terminal even when its own output goes to a file, so under MPI
  // isatty() cannot tell a log from a terminal: write lines there.
  return !under_mpi && isatty(fileno(out)) ? Mode::InPlace : Mode::Lines;
}

Progress::Progress(std::size_t total, std::size_t already_done, std::FILE* out, Mode mode, double line_interval_s)
    : total_(total),
      done_(already_done),
      out_(out),
      mode_(mode),
      line_interval_s_(line_interval_s),
      start_(std::chrono::steady_clock::now()),
      last_print_(start_) {}

double Progress::elapsed_s() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

void Progress::on_result(const TrialRecord& r) {
  ++done_;
  ++done_this_run_;
  if (r.outcome.state == TrialState::Diverged) ++diverged_;
  if (r.outcome.state == TrialState::Failed) ++failed_;
  const double loss = r.outcome.smooth_loss;
  if (r.outcome.state == TrialState::Done && std::isfinite(loss) && (!have_best_ || loss < best_)) {
    best_ = loss;
    best_point_ = r.trial.point;
    have_best_ = true;
  }
}

std::string Progress::line() const {
  const double t = elapsed_s();
  const double rate = t > 0 ? static_cast<double>(done_this_run_) / t : 0;
  const double eta = rate > 0 ? static_cast<double>(total_ - std::min(done_, total_)) / rate : NAN;
  char buf[512];
  std::snprintf(buf, sizeof buf, "%zu/%zu (%.1f%%)  %s trials/s  elapsed %s  ETA %s", done_, total_,
                total_ ? 100.0 * static_cast<double>(done_) / static_cast<double>(total_) : 100.0,
                format_short(rate).c_str(), format_duration(t).c_str(), format_duration(eta).c_str());
  std::string s = buf;
  if (diverged_ || failed_) s += "  diverged " + std::to_string(diverged_) + " failed " + std::to_string(failed_);
  if (have_best_)
    s += "  best " + format_short(best_, 5) + " (N=" + format_short(best_point_.params) +
         " D=" + format_short(best_point_.tokens) + " lr=" + format_short(best_point_.lr) +
         " bs=" + std::to_string(best_point_.batch) + " wd=" + format_short(best_point_.wd) + ")";
  return s;
}

void Progress::maybe_print() {
  if (mode_ == Mode::Off) return;
  const auto now = std::chrono::steady_clock::now();
  const double since = std::chrono::duration<double>(now - last_print_).count();
  if (mode_ == Mode::InPlace) {
    if (since < 0.2) return;
    std::fprintf(out_, "\r\033[K%s", line().c_str());
  } else {
    const bool tenth = total_ > 0 && (done_ - last_printed_done_) * 10 >= total_;
    if (since < line_interval_s_ && !tenth) return;
    if (done_ == last_printed_done_ && since < 6 * line_interval_s_) return;
    std::fprintf(out_, "[progress] %s\n", line().c_str());
    last_printed_done_ = done_;
  }
  std::fflush(out_);
  last_print_ = now;
}

void Progress::finish() {
  if (mode_ == Mode::Off) return;
  if (mode_ == Mode::InPlace)
    std::fprintf(out_, "\r\033[K%s\n", line().c_str());
  else
    std::fprintf(out_, "[progress] %s\n", line().c_str());
  std::fflush(out_);
}

}  // namespace hpsweep
