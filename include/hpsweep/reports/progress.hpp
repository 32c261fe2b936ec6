#pragma once
// Progress on the master: done/total, rate, ETA, best loss so far. In place on a terminal; one
// line per update otherwise (Slurm logs), at most every `line_interval_s` seconds.
#include <chrono>
#include <cstdio>
#include <string>

#include "hpsweep/store/records.hpp"

namespace hpsweep {

class Progress {
 public:
  enum class Mode { InPlace, Lines, Off };
  // option: auto | tty | lines | none
  static Mode mode_from(const std::string& option, std::FILE* out, bool under_mpi);

  Progress(std::size_t total, std::size_t already_done, std::FILE* out, Mode mode, double line_interval_s = 10.0);
  void on_result(const TrialRecord& r);
  void maybe_print();
  void finish();

  std::size_t done() const { return done_; }
  std::size_t diverged() const { return diverged_; }
  std::size_t failed() const { return failed_; }
  double elapsed_s() const;

 private:
  std::string line() const;
  std::size_t total_, done_, done_this_run_ = 0, diverged_ = 0, failed_ = 0;
  double best_ = 0;
  TrialPoint best_point_{};
  bool have_best_ = false;
  std::FILE* out_;
  Mode mode_;
  double line_interval_s_;
  std::chrono::steady_clock::time_point start_, last_print_;
  std::size_t last_printed_done_ = 0;
};

}  // namespace hpsweep
