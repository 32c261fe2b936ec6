#pragma once
// Analysis results kept in the sweep file under /fits/NAME (fit, fit --transfer, coordcheck).
#include <optional>
#include <string>

#include "hpsweep/store/records.hpp"

namespace hpsweep {

// NAME may use letters, digits, '_', '.' and '-' only; throws InputError otherwise.
void check_result_name(const std::string& name);

// Stores `record` as /fits/<record.name> in the sweep file at `path`. A sweep that another run
// holds is not an error for a read-only analysis: returns why it was not stored instead.
std::optional<std::string> store_fit_result(const std::string& path, FitRecord record);

}  // namespace hpsweep
