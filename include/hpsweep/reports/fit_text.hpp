#pragma once
// The `hpsweep fit` report as text and JSON, and the record stored under /fits/<name>:
// the reducer computes a FitReport, this formats it.
#include <cstdint>
#include <string>

#include "hpsweep/reducer/fit.hpp"
#include "hpsweep/store/records.hpp"

namespace hpsweep {

std::string format_fit(const FitReport& r);
std::string fit_json(const FitReport& r);
// What is stored in the sweep file under /fits/<name>.
// `results`: how many trial records of the sweep the fit saw (for replay).
FitRecord to_fit_record(const FitReport& r, const std::string& name, std::uint64_t results);

}  // namespace hpsweep
