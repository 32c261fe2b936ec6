#include "hpsweep/backends/lookup.hpp"

#include <cmath>

#include "hpsweep/util/json.hpp"
#include "hpsweep/util/text.hpp"

namespace hpsweep {

namespace {
bool close(double a, double b, double tolerance) {
  return std::fabs(a - b) <= tolerance * std::max(std::fabs(a), std::fabs(b));
}
}  // namespace

LookupBackend::LookupBackend(const LookupSettings& settings) : settings_(settings), table_(lookup_table(settings)) {
  for (const auto& row : *table_) cells_[{row.params, row.tokens}].push_back(&row);
}

const LookupRow* LookupBackend::find(const TrialPoint& p) const {
  const double tol = settings_.tolerance;
  for (const auto& [cell, rows] : cells_) {
    if (!close(cell.first, p.params, tol) || !close(cell.second, p.tokens, tol)) continue;
    const LookupRow* best = nullptr;
    double best_distance = 0;
    for (const LookupRow* r : rows) {
      if (r->batch != p.batch || !close(r->lr, p.lr, tol) || !close(r->wd, p.wd, tol)) continue;
      const double distance = std::fabs(std::log(r->lr / p.lr));
      if (!best || distance < best_distance) best = r, best_distance = distance;
    }
    if (best) return best;
  }
  return nullptr;
}

TrialOutcome LookupBackend::run(const Trial& trial) {
  TrialOutcome out;
  const LookupRow* row = find(trial.point);
  if (!row) {
    out.state = TrialState::Unavailable;
    out.error = "not in the lookup table " + settings_.file;
    return out;
  }
  out.state = row->diverged ? TrialState::Diverged : TrialState::Done;
  out.final_loss = row->final_loss;
  out.smooth_loss = row->smooth_loss;
  out.steps = row->steps > 0 ? row->steps : trial.point.steps();
  out.error = row->error;
  out.details = "{\"lookup\":\"" + json_escape(row->source) + "\"}";
  return out;
}

}  // namespace hpsweep
