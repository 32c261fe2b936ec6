#pragma once
// The adaptive sweep planner ([adaptive] in the job file): from the results stored so far it
// decides which grid points to run next, so the laws at the target come from a fraction of the
// grid's compute.
//
// Rounds. Round 0 is a coarse cross of learning rates and batch sizes spread over each cell's
// grid, round 1 the rest of the coarse start (neither needs a result). Round k >= 2 is decided
// from the results of rounds 0..k-2 only, and from which points rounds 0..k-1 already hold, so
// it is computed while round k-1 runs (workers never wait for a decision that could have been
// made) and depends on nothing but stored results: the same stored results give the same plan,
// whatever the order in which they arrived, after kill -9 and resume, with --extend or a raised
// budget (a raised budget plans the same rounds, then more).
//
// Within a cell, points go where they pin down the cell's optimum: on a lattice around the current
// vertex of the default fit (`asym`) that spans its fit window in ln lr on both sides, on the
// vertex's batch row and one width of its near-optimal region above and below, walking toward the
// grid's edge when the optimum lies there. Across cells,
// each point goes to the cell where it most reduces the variance of the laws' prediction at the
// target per FLOP: the cell's leverage on the weighted law fit at the target (Sherman-Morrison
// on the law's weights 1/(se^2 + tau^2)), for the lr and the batch law together. Every cell keeps
// its coarse start, so every tokens-per-parameter ratio of the grid stays in the design.
#include <cstddef>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "hpsweep/reducer/fit.hpp"
#include "hpsweep/spec/job.hpp"
#include "hpsweep/store/records.hpp"
#include "hpsweep/trials/trial.hpp"

namespace hpsweep {

struct PlannedTrial {
  std::size_t grid_index = 0;  // into the grid the planner was built with
  TrialId id = 0;
  std::string why;  // "coarse start", "optimum: lr below", "edge: lr above", ...
};

// The fit a round's decisions rested on (its inputs: the results of rounds 0..index-2).
struct PlanEstimate {
  bool ok = false;
  std::size_t results = 0;    // trial results the fit saw
  double compute = 0;         // FLOPs of those trials
  Interval lr, batch_tokens;  // prediction intervals at the target
  std::string note;           // why there is no fit
  // Relative width of the 95% prediction interval: (hi - lo) / estimate.
  double lr_rel_width() const;
  double batch_rel_width() const;
};

struct PlanRound {
  int index = 0;
  std::vector<PlannedTrial> trials;
  PlanEstimate estimate;       // what the decisions saw (round >= 2)
  double planned_compute = 0;  // FLOPs planned in rounds 0..index
  // The round stopped at a point the budget cannot pay, and the plan ends with it. A round is
  // chosen as if the budget were unlimited and then cut, so the plan of a smaller budget is a
  // prefix of the plan of a larger one: a raised budget continues the plan exactly.
  bool budget_stop = false;
};

class Planner {
 public:
  // `grid`: expand_grid(job), the candidate points. `job.adaptive` must be enabled; the target
  // comes from the job's [target]. Throws InputError when the job cannot be planned.
  Planner(const JobSpec& job, std::vector<Trial> grid);

  double grid_compute() const { return grid_compute_; }
  double budget() const { return budget_; }
  const std::vector<Trial>& grid() const { return grid_; }

  // A terminal result (DONE, DIVERGED, FAILED, TIMEOUT, UNAVAILABLE) of a grid trial; the latest
  // one of an id counts (a round already decided keeps what it saw). Records of ids outside the
  // grid are ignored. Returns true when the result completes its round (a decision may be ready).
  bool add_result(const TrialRecord& record);
  bool has_result(TrialId id) const { return results_.count(id) > 0; }
  std::size_t result_count() const { return results_.size(); }
  // Plans every round whose inputs are complete. Returns how many rounds were added.
  int advance();

  // advance() in three steps, for a planning thread of its own (AdaptiveTasks): prepare() and
  // conclude() under the lock that also guards add_result() and the readers, decide() without
  // it. decide() reads only what prepare() handed over and state that only conclude() changes,
  // so results keep being recorded while a round is decided, and the decision is the same.
  struct Pending {
    int index = 0;
    std::vector<TrialRecord> newly_seen;  // round >= 2: the results of round index - 2
  };
  // The next round whose inputs are complete; nullopt while they are not, or when finished.
  std::optional<Pending> prepare() const;
  PlanRound decide(Pending pending);
  // Adds the decided round, or finishes the plan. Returns true when a round was added.
  bool conclude(PlanRound round);
  // No round will be added: the budget is spent, the target's intervals are narrow enough, or
  // no candidate is left.
  bool finished() const { return finished_; }
  std::string finish_reason() const { return finish_reason_; }
  const std::vector<PlanRound>& rounds() const { return rounds_; }
  // Every planned trial, round by round.
  std::vector<PlannedTrial> planned() const;
  double planned_compute() const { return planned_compute_; }
  // Wall seconds spent deciding rounds (fits included), for the overhead figures.
  double planning_seconds() const { return planning_seconds_; }
  // Cells whose optimum decide() fitted, and those it took unchanged from an earlier round.
  std::size_t cell_fits() const { return cell_fits_; }
  std::size_t cell_fits_reused() const { return cell_fits_reused_; }
  // The default fit on the results of `ids` (in that order) at the job's target.
  PlanEstimate estimate(const std::vector<TrialId>& ids) const;

 private:
  struct CellInfo {
    double params = 0, tokens = 0;
    std::vector<std::size_t> candidates;  // grid indices
    double x_step = 1, y_step = 1;        // grid spacing in ln lr, ln B
    double x_lo = 0, x_hi = 0, y_lo = 0, y_hi = 0;
  };
  // The default fit's per-cell optima and lr and batch laws on the results seen (seen_), each
  // cell refitted only when its results changed since the round before.
  struct SeenFit {
    std::vector<CellOptimum> optima;
    std::optional<PowerLaw> lr_law, batch_law;
  };
  // A cell's optimum, refitted only when the cell's results (or the lr shape it borrows) change.
  struct CachedCell {
    std::vector<CellPoint> points;
    std::size_t diverged = 0;
    std::optional<LrShape> borrowed;
    bool usable = false;  // select_optimum succeeded
    CellOptimum optimum;
    std::string why;
  };
  SeenFit fit_seen(std::string& note);
  PlanRound coarse_round(bool cross) const;
  PlanRound adaptive_round(int index);
  bool planned_in(std::size_t grid_index) const { return planned_[grid_index] != 0; }
  void commit(PlanRound round);

  JobSpec job_;
  std::vector<Trial> grid_;
  std::unordered_map<TrialId, std::size_t> index_of_;
  std::vector<double> x_, y_;  // per grid index: ln lr, ln B (tokens)
  std::vector<CellInfo> cells_;
  double grid_compute_ = 0, budget_ = 0, planned_compute_ = 0;
  std::unordered_map<TrialId, TrialRecord> results_;
  std::vector<PlanRound> rounds_;
  std::vector<char> planned_;                          // per grid index: in some round
  std::unordered_map<TrialId, std::size_t> round_of_;  // planned trial -> its round
  std::vector<std::size_t> missing_;                   // per round: trials without a result
  bool finished_ = false;
  std::string finish_reason_;
  double planning_seconds_ = 0;
  // decide()'s own state: the results the decisions saw, in plan order, and the per-cell fits.
  SweepLog seen_;
  std::unordered_map<TrialId, std::size_t> seen_at_;                   // id -> index in seen_.results
  std::map<std::tuple<double, double, bool>, CachedCell> cell_cache_;  // (N, D, borrows a shape)
  std::size_t cell_fits_ = 0, cell_fits_reused_ = 0;
};

}  // namespace hpsweep
