#pragma once
// Per-cell optimum: one (N, D) cell = all finished trials of one model size and token budget.
#include <limits>
#include <string>
#include <vector>

#include "hpsweep/store/records.hpp"

namespace hpsweep {

struct CellPoint {
  TrialId id = 0;
  double lr = 0, batch_tokens = 0, wd = 0, loss = 0;
  std::int64_t batch = 0;
};

struct Cell {
  std::string variant;  // [variants] name: cells of different variants are never mixed
  double params = 0, tokens = 0;
  std::vector<CellPoint> points;  // DONE trials with a finite smoothed loss (latest attempt)
  std::size_t diverged = 0;       // DIVERGED/FAILED trials, never fitted
  double compute() const { return 6.0 * params * tokens; }
  const CellPoint& best() const;
};

std::vector<Cell> collect_cells(const SweepLog& log);

enum class SelectKind { Within, Argmin, Bowl };
struct Selection {
  SelectKind kind = SelectKind::Within;
  double eps = 0.0025;  // within: relative loss band; bowl: plateau band
  std::string text() const;
};
// "within:0.25%", "within:0.0025", "argmin", "bowl", "bowl:0.5%". Throws InputError.
Selection parse_selection(const std::string& text);

struct Quadratic;  // fitted bowl, see cells.cpp

struct CellOptimum {
  double params = 0, tokens = 0;
  std::vector<CellPoint> selected;                    // points entering the law fits (bowl: the interpolated optimum)
  double lr = 0, batch_tokens = 0, wd = 0, loss = 0;  // the cell's optimum estimate
  double lr_sd_log = std::numeric_limits<double>::quiet_NaN();     // bowl: std. error of ln lr*
  double batch_sd_log = std::numeric_limits<double>::quiet_NaN();  // bowl: std. error of ln B*
  // Near-optimal plateau: ranges of lr and B (tokens) whose loss is within eps of the minimum.
  double plateau_lr_lo = 0, plateau_lr_hi = 0, plateau_b_lo = 0, plateau_b_hi = 0;
  std::vector<std::string> edges;  // e.g. "lr at the highest swept value: extend the grid upwards"
  std::string note;                // e.g. why a bowl fit fell back to argmin
};

// Needs at least `min_points` (3) points; returns false (with reason) otherwise.
bool select_optimum(const Cell& cell, const Selection& sel, CellOptimum& out, std::string& reason);

// Loss of a cell's measured landscape at (lr, batch_tokens): a local quadratic fit in
// (ln lr, ln B) around the minimum (at the best weight decay), or inverse-distance weighting of
// the nearest points when the quadratic is not convex. `method` says which.
double interpolate_loss(const Cell& cell, double lr, double batch_tokens, std::string& method, bool& in_plateau,
                        double eps);

}  // namespace hpsweep
