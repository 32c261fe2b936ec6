#include "hpsweep/trials/trial.hpp"

#include <cmath>

#include "hpsweep/util/text.hpp"

namespace hpsweep {

std::int64_t TrialPoint::steps() const {
  const double bt = batch_tokens();
  return bt > 0 ? static_cast<std::int64_t>(std::ceil(tokens / bt)) : 0;
}

const char* to_string(TrialState s) {
  switch (s) {
    case TrialState::Pending:
      return "PENDING";
    case TrialState::Running:
      return "RUNNING";
    case TrialState::Done:
      return "DONE";
    case TrialState::Diverged:
      return "DIVERGED";
    case TrialState::Failed:
      return "FAILED";
    case TrialState::Lost:
      return "LOST";
    case TrialState::Timeout:
      return "TIMEOUT";
    case TrialState::Unavailable:
      return "UNAVAILABLE";
  }
  return "UNKNOWN";
}

bool is_terminal(TrialState s) {
  return s == TrialState::Done || s == TrialState::Diverged || s == TrialState::Failed || s == TrialState::Timeout ||
         s == TrialState::Unavailable;
}

std::string canonical_coordinates(const TrialPoint& p) {
  return "N=" + format_double(p.params) + ";D=" + format_double(p.tokens) + ";lr=" + format_double(p.lr) +
         ";batch=" + std::to_string(p.batch) + ";seq_len=" + std::to_string(p.seq_len) + ";wd=" + format_double(p.wd) +
         ";repeat=" + std::to_string(p.repeat) + (p.variant.empty() ? "" : ";variant=" + p.variant);
}

TrialId trial_id(const TrialPoint& p, const std::string& result_settings) {
  return fnv1a64(result_settings + "|" + canonical_coordinates(p));
}

}  // namespace hpsweep
