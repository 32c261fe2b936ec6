#pragma once
// The job file: what to sweep, with which backend, aiming at which target scale.
// See jobs/example.ini for an annotated example and README "Job file" for every key.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "hpsweep/spec/ini.hpp"

namespace hpsweep {

struct ModelShape {
  std::int64_t hidden = 0, layers = 0, ffn = 0;
  // Non-embedding parameters of a SwiGLU transformer block stack: L * (4h^2 + 3hF).
  double params() const;
  std::string label() const;  // "512x8x1365"
};

// One row of [variants]: a named set of backend-option overrides. Every grid point is run once
// per variant (e.g. the same learning-rate sweep under SP and under muP).
struct Variant {
  std::string name;
  std::map<std::string, std::string> overrides;        // option -> canonical value, as given
  std::map<std::string, std::string> backend_options;  // the job's options with the overrides applied
  std::string result_settings;                         // as JobSpec::result_settings, for this variant
  std::string where;                                   // "file:line: [variants] name", for messages
};

// One explicit grid point (kind = lookup without [scales]/[grid]: the table's own points).
struct GridPoint {
  double params = 0, tokens = 0, lr = 0, wd = 0;
  std::int64_t batch = 0;  // sequences
};

// [adaptive]: run only the trials the planner (planner/) chooses, within a compute budget.
struct AdaptiveSpec {
  bool enabled = false;
  double budget_fraction = 0;           // of the full grid's compute (sum of 6ND), or
  double budget_flops = 0;              // an absolute budget
  double target_rel_width = 0;          // stop when the target's 95% intervals of lr and B are narrower (0: off)
  int coarse_lr = 3, coarse_batch = 3;  // the coarse start per cell
  int round_trials = 0;                 // trials per planner round (0: 2 per cell)
  bool extend_edges = true;             // follow an optimum on the grid's edge to the grid's end
  std::uint64_t seed = 0;               // the uniform random baseline of `hpsweep plan`
};

// [resources]: what one trial needs, as a number or a rule over the trial's N and D, e.g.
//   gpus = 1 if params < 3e8, 8 if params < 3e9, 16 otherwise
// Clauses are tried left to right; the first whose condition holds gives the value. A clause is
// `VALUE`, `VALUE otherwise` (both: always) or `VALUE if VAR OP NUMBER` with VAR params|tokens
// and OP one of < <= > >=. Every trial of the grid must match a clause (checked when parsing).
struct ResourceRule {
  struct Clause {
    int value = 0;
    std::string variable;  // "" = always, else "params" or "tokens"
    std::string op;        // <, <=, >, >=
    double bound = 0;
  };
  std::vector<Clause> clauses;  // empty: not given
  std::string where;            // "file:line: [resources] gpus", for messages
  bool given() const { return !clauses.empty(); }
  // The value for a trial of size N=params, D=tokens; throws InputError when no clause matches.
  int value_for(double params, double tokens) const;
};

struct Resources {
  ResourceRule gpus;   // GPUs per trial (all its nodes together)
  ResourceRule cpus;   // CPU cores per trial on each of its nodes
  ResourceRule nodes;  // nodes per trial; derived from gpus and the nodes' GPU count when absent
  bool given() const { return gpus.given() || cpus.given() || nodes.given(); }
};

// What one trial asks of the allocation (0 = not given).
struct TrialResources {
  int gpus = 0, cpus = 0, nodes = 0;
};

struct JobSpec {
  std::string path;  // where it was read from (messages only; never part of any id)
  std::string text;  // verbatim job text, stored in the sweep file

  // [sweep]
  std::string name;
  std::uint64_t seed = 0;
  int repeats = 1;

  // [scales]: model sizes N (given or computed from shapes) and token budgets D.
  std::vector<double> params;
  std::vector<ModelShape> shapes;        // empty unless given
  std::vector<double> tokens;            // absolute budgets, or
  std::vector<double> tokens_per_param;  // D = ratio * N per model size
  std::int64_t seq_len = 2048;

  // [grid]
  std::vector<double> lr;
  std::vector<std::int64_t> batch;  // sequences of seq_len tokens
  std::vector<double> wd;
  // kind = lookup without [scales]/[grid]: exactly the table's points (then the lists above are empty).
  std::vector<GridPoint> points;

  // [adaptive]
  AdaptiveSpec adaptive;

  // [backend] and the backend's own section [<kind>], validated against spec/backend_options.hpp.
  std::string backend_kind;
  std::map<std::string, std::string> backend_options;  // every option, defaults filled, canonical text

  // [variants]: empty for an ordinary sweep (one unnamed variant).
  std::vector<Variant> variants;
  const Variant* find_variant(const std::string& name) const;
  // The backend options a trial of `variant` ("" = none) runs with.
  const std::map<std::string, std::string>& options_for(const std::string& variant) const;

  // [resources]: not part of any trial id (the same trial on other hardware is the same trial).
  Resources resources;
  TrialResources resources_for(double params, double tokens) const;

  // [target]
  double target_params = 0;
  double target_tokens = 0;

  // Canonical "key=value;..." of every non-grid setting that changes a trial's result
  // (backend kind and options, sweep seed). Part of every trial id.
  std::string result_settings;
  // Every setting in canonical form, for explaining what differs between two jobs.
  std::map<std::string, std::string> canonical;

  std::vector<double> token_budgets_for(double n) const;
};

// Throws InputError naming the file, line and key for any invalid input. The checks that need a
// backend's own code run in validate_backend_options() (backends/backend.hpp); load_valid_job()
// there does both.
JobSpec parse_job(const std::string& text, const std::string& path);
// How errors name a job that was read back from a sweep file rather than from a job file.
inline constexpr const char* kStoredJobName = "<job stored in the sweep file>";
JobSpec load_job(const std::string& path);

// Parsers for the value syntaxes of the job file, public for tests and for other sections.
// "1e-3, 2e-3" or "log:1e-4:1e-1:13" or "lin:0:0.2:5".
std::vector<double> parse_number_list(const std::string& text, const std::string& where);
double parse_number(const std::string& text, const std::string& where);
// "8" or "1 if params < 3e8, 8 otherwise"; `where` prefixes every error.
ResourceRule parse_resource_rule(const std::string& text, const std::string& where);

}  // namespace hpsweep
