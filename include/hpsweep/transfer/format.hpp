#pragma once
// What `hpsweep transfer` and `hpsweep transfer-fit` print for a TransferTable.
#include <string>

#include "hpsweep/parametrization/rules.hpp"

namespace hpsweep {

// Aligned table for humans: "base -> target" per group and column, then the notes.
std::string format_transfer(const TransferTable& t);
// For training frameworks: options, shapes, ratios, and one object per group (target values at
// the top level, base values under "base"), plus the notes.
std::string transfer_json(const TransferTable& t);

}  // namespace hpsweep
