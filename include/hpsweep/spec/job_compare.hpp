#pragma once
// Whether a sweep stored under one job can continue under another: the one rule that decides
// which job changes keep every stored trial valid.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "hpsweep/spec/job.hpp"

namespace hpsweep {

// The trial ids of a job's grid. Passed in by the caller: ids are the trials stage's rule, which
// spec (the stage before it) does not include.
using GridIds = std::function<std::vector<std::uint64_t>(const JobSpec&)>;

// Why a stored sweep cannot continue with `job` (empty when it can). `extend` allows new grid
// points; `needs_extend` tells the caller that the job adds points.
std::string explain_incompatibility(const std::string& stored_job_text, const JobSpec& job, const GridIds& grid_ids,
                                    bool extend, bool* needs_extend = nullptr);

}  // namespace hpsweep
