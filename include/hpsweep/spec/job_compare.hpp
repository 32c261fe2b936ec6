#pragma once
// Whether a sweep stored under one job can continue under another: the one rule that decides
// which job changes keep every stored trial valid.
#include <string>

#include "hpsweep/spec/job.hpp"

namespace hpsweep {

// Why a stored sweep cannot continue with `job` (empty when it can). `extend` allows new grid
// points; `needs_extend` tells the caller that the job adds points.
std::string explain_incompatibility(const std::string& stored_job_text, const JobSpec& job, bool extend,
                                    bool* needs_extend = nullptr);

}  // namespace hpsweep
