#pragma once
// The `hpsweep calibrate` coverage study as text and JSON.
#include <string>

#include "hpsweep/calibrate/calibrate.hpp"

namespace hpsweep {

std::string format_calibration(const CalibrationReport& r);
std::string calibration_json(const CalibrationReport& r);

}  // namespace hpsweep
