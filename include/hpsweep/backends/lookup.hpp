#pragma once
// kind = lookup: answers a trial from a finished sweep's table (spec/lookup.hpp), so a completed
// sweep becomes an oracle for comparing sweep strategies offline and for tests. A point the table
// lacks is UNAVAILABLE: not run and not a failure.
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "hpsweep/backends/backend.hpp"
#include "hpsweep/spec/lookup.hpp"

namespace hpsweep {

class LookupBackend : public Backend {
 public:
  explicit LookupBackend(const LookupSettings& settings);
  TrialOutcome run(const Trial& trial) override;
  // The row answering `point` (within the relative tolerance in every coordinate), or nullptr.
  const LookupRow* find(const TrialPoint& point) const;

 private:
  LookupSettings settings_;
  std::shared_ptr<const std::vector<LookupRow>> table_;
  // Rows per (N, D) cell, matched by relative distance: tables print coordinates with uneven rounding.
  std::map<std::pair<double, double>, std::vector<const LookupRow*>> cells_;
};

}  // namespace hpsweep
