#pragma once
// `hpsweep export`: every trial record as JSON lines or CSV, for pandas and friends.
#include <ostream>

#include "hpsweep/store/records.hpp"

namespace hpsweep {

enum class ExportFormat { JsonLines, Csv };

// One row per recorded attempt, in recorded order. Curves (JSON lines only) on request.
void export_trials(const SweepLog& log, ExportFormat format, bool with_curves, std::ostream& out);

}  // namespace hpsweep
