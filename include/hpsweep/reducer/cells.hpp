#pragma once
// Per-cell optimum: one (N, D) cell = all finished trials of one model size and token budget.
#include <functional>
#include <limits>
#include <optional>
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

// Asym (the default): the vertex of an asymmetric bowl (AsymmetricBowl below) with its standard
// error; Bowl: the symmetric quadratic of earlier versions; Within: every run within eps of the
// cell minimum (the Step Law procedure); Argmin: the best run.
enum class SelectKind { Within, Argmin, Bowl, Asym };
// The shape of the loss along ln lr above the optimum, relative to the curvature below it:
// q_hi = upper_ratio * q_lo and k_hi = upper_cubic * q_lo.
struct LrShape {
  double upper_ratio = 1, upper_cubic = 0;
};

struct Selection {
  SelectKind kind = SelectKind::Asym;
  double eps = 0.0025;  // within: relative loss band; bowl, asym: plateau band
  // asym: the shape a cell sampled on one side of its optimum borrows from the cells that sample
  // both sides (select_optima sets it; without it such a cell fits one curvature).
  std::optional<LrShape> borrowed_lr_shape;
  std::string text() const;
};
// "asym", "asym:0.5%", "within:0.25%", "within:0.0025", "argmin", "bowl", "bowl:0.5%".
// Throws InputError.
Selection parse_selection(const std::string& text);

// A cell's loss landscape in (x, y) = (ln lr, ln B) at one weight decay:
//   L = c + (q_x(side) + k_x(side) u) u^2 + q_y(side) v^2 + r u v,   (u, v) = (x - x0, y - y0),
// with its own curvature below and above the optimum along each axis, so a learning rate that
// costs more above the optimum than below does not pull the vertex. Fitted by Levenberg-
// Marquardt over a window around the minimum whose extent is set per axis and side by the
// fitted curvature (a fixed rise of the loss), never by the noisy losses themselves. Along ln lr
// three models (two curvatures; two and a cubic term above; one and a cubic term above) are
// fitted on that window and x0 is their vertices averaged with Akaike weights; se_x0 includes
// the spread between them. The other parameters are those of the model with the most weight.
// One of the lr models fitted to a cell, by family: 0 two curvatures, 1 two curvatures and a
// cubic term above the optimum, 2 one curvature and a cubic term above.
struct LrModelFit {
  int family = 0;
  double x0 = 0, y0 = 0, se_x0 = 0, se_y0 = 0, aicc = 0;
  LrShape shape;
};
constexpr int kLrModelFamilies = 3;
// The vertex averaged over a cell's lr models and its standard error, which includes the spread
// between them (Buckland, Burnham & Augustine 1997). Weights: the cell's own Akaike weights, or,
// given `family_weight`, those of the families (renormalized over the models the cell has).
struct LrModelAverage {
  double x0 = 0, y0 = 0, se_x0 = 0, se_y0 = 0;
  LrShape shape;
  double cubic_weight = 0;  // of the models with a cubic term
};
LrModelAverage average_lr_models(const std::vector<LrModelFit>& fits, const double* family_weight = nullptr);

struct AsymmetricBowl {
  double x0 = 0, y0 = 0, c = 0, qx_lo = 0, qx_hi = 0, qy_lo = 0, qy_hi = 0, r = 0;
  double kx_lo = 0, kx_hi = 0;  // cubic term k u^3 in ln lr (above the optimum, when the data need it)
  double se_x0 = std::numeric_limits<double>::quiet_NaN(), se_y0 = std::numeric_limits<double>::quiet_NaN();
  std::size_t points = 0;
  // false: the window has too few values on one side of the optimum; one curvature on that axis
  // (x_asymmetric true with qx_lo == qx_hi: the one-curvature-and-cubic model had the most weight).
  bool x_asymmetric = false, y_asymmetric = false, x_cubic = false;
  // The lr shape measured here (both sides sampled: the models' Akaike-weighted shape), or the
  // borrowed one the fit used.
  std::optional<LrShape> lr_shape;
  bool lr_shape_borrowed = false;
  std::vector<LrModelFit> lr_models;                              // both sides sampled: the models x0 was averaged over
  double residual_sd = std::numeric_limits<double>::quiet_NaN();  // of the losses about the bowl
  double value(double x, double y) const;
};
// Needs 3+ distinct lr and B values around the minimum; false, with the reason, otherwise. With
// a single batch size the bowl is a curve in ln lr alone (no batch terms; se_y0 is NaN).
// `borrowed`: the shape to fit when the lr axis is sampled on one side of the optimum only.
bool fit_asymmetric_bowl(const std::vector<CellPoint>& pts, AsymmetricBowl& out, std::string& reason,
                         const LrShape* borrowed = nullptr);

// The `asym` rule for one set of points (one weight decay): the bowl's vertex with its standard
// errors or, when no bowl can be fitted (the reason in `why`), the argmin with the grid spacing
// around it as its error. The scaling-law fit (per cell) and the transfer fit (per width, on a
// loss-vs-lr curve) both locate their optima with it.
struct BowlOptimum {
  bool fitted = false;
  AsymmetricBowl bowl;              // when fitted
  double x0 = 0, y0 = 0, loss = 0;  // ln lr*, ln B*, loss at the optimum
  double se_x0 = std::numeric_limits<double>::quiet_NaN(), se_y0 = std::numeric_limits<double>::quiet_NaN();
  std::string why;
};
BowlOptimum asym_optimum(const std::vector<CellPoint>& pts, const LrShape* borrowed = nullptr);

struct Quadratic;  // fitted bowl, see cells.cpp

struct CellOptimum {
  double params = 0, tokens = 0;
  std::vector<CellPoint> selected;                    // points entering the law fits (bowl: the interpolated optimum)
  std::size_t fitted_points = 0;                      // asym: the runs its bowl was fitted to (the fit window)
  double lr = 0, batch_tokens = 0, wd = 0, loss = 0;  // the cell's optimum estimate
  double lr_sd_log = std::numeric_limits<double>::quiet_NaN();     // bowl: std. error of ln lr*
  double batch_sd_log = std::numeric_limits<double>::quiet_NaN();  // bowl: std. error of ln B*
  // Near-optimal plateau: ranges of lr and B (tokens) whose loss is within eps of the minimum.
  double plateau_lr_lo = 0, plateau_lr_hi = 0, plateau_b_lo = 0, plateau_b_hi = 0;
  std::vector<std::string> edges;  // e.g. "lr at the highest swept value: extend the grid upwards"
  std::string note;                // e.g. why a bowl fit fell back to argmin
  // asym: curvature above / below the optimum in ln lr (1: symmetric; NaN: not estimated).
  double lr_asymmetry = std::numeric_limits<double>::quiet_NaN();
  std::vector<std::string> flags;     // asym: asymmetric or poorly identified optimum
  std::optional<LrShape> lr_shape;    // asym: the lr shape measured in this cell (both sides sampled)
  std::vector<LrModelFit> lr_models;  // asym: the lr models its optimum is averaged over
  // asym: curvature below the optimum in ln lr and (mean of both sides) in ln B, and the residual
  // sd of the losses about the bowl, each relative to the loss at the optimum.
  double lr_curvature = std::numeric_limits<double>::quiet_NaN();
  double batch_curvature = std::numeric_limits<double>::quiet_NaN();
  double noise = std::numeric_limits<double>::quiet_NaN();
};

// Needs at least `min_points` (3) points; returns false (with reason) otherwise.
bool select_optimum(const Cell& cell, const Selection& sel, CellOptimum& out, std::string& reason);

// The optimum of every cell that has one (the others, with the reason, in `skipped`). With asym,
// the landscape's shape is taken as common to the cells, as the scaling laws take it:
//  - the lr models are weighted by their Akaike criterion summed over the cells (2 or more cells
//    with every model), not cell by cell: in a noisy cell a model that misdescribes the
//    landscape can win by chance, and its vertex is biased;
//  - cells that sample their lr optimum on one side only are fitted again with the shape of the
//    cells that sample both sides (median over at least 3 cells): with one side unsampled, one
//    curvature would put the vertex toward the flatter side of an asymmetric landscape.
// How one cell's optimum is chosen: select_optimum, or a cache in front of it (the planner's).
using CellSelector = std::function<bool(const Cell&, const Selection&, CellOptimum&, std::string&)>;
std::vector<CellOptimum> select_optima(const std::vector<Cell>& cells, const Selection& sel,
                                       std::vector<std::string>* skipped = nullptr, const CellSelector& select = {});
// The shape select_optima borrows: the median of the cells' measured shapes (3 or more), or none.
std::optional<LrShape> pooled_lr_shape(const std::vector<CellOptimum>& optima);

// Loss of a cell's measured landscape at (lr, batch_tokens): a local quadratic fit in
// (ln lr, ln B) around the minimum (at the best weight decay), or inverse-distance weighting of
// the nearest points when the quadratic is not convex. `method` says which. `asymmetric`: the
// AsymmetricBowl instead of the symmetric quadratic.
double interpolate_loss(const Cell& cell, double lr, double batch_tokens, std::string& method, bool& in_plateau,
                        double eps, bool asymmetric = false);

}  // namespace hpsweep
