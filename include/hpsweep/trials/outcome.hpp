#pragma once
// What one trial produced: its terminal state, losses and loss curve. Backends and ingest
// parsers produce it, the scheduler carries it, the store records it.
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "hpsweep/trials/trial.hpp"

namespace hpsweep {

struct LossCurve {
  std::vector<std::int64_t> step;
  std::vector<double> loss;
};

// What a backend reports for one trial.
struct TrialOutcome {
  TrialState state = TrialState::Done;
  double final_loss = std::numeric_limits<double>::quiet_NaN();
  double smooth_loss = std::numeric_limits<double>::quiet_NaN();
  std::int64_t steps = 0;
  LossCurve curve;
  std::string error;    // FAILED/DIVERGED: what happened
  std::string details;  // backend-specific JSON object, e.g. the mlp's applied per-group hyperparameters
};

}  // namespace hpsweep
