#pragma once
// The job a sweep file stores (SweepLog::job_text), parsed the same way by every reader of a
// sweep: fit, transfer, replay, status, report, the CLI and the store itself.
#include <optional>
#include <string>

#include "hpsweep/spec/job.hpp"
#include "hpsweep/store/records.hpp"

namespace hpsweep {

// The stored job, or nullopt when the sweep stores none (results that were ingested, not run).
// A stored text that does not parse throws InputError whose file part is
// stored_job_source(sweep_path), so every message points at the same place.
std::optional<JobSpec> stored_job(const SweepLog& log, const std::string& sweep_path = "");

// For readers that cannot go on without a job (replay of a coordinate check, coordcheck on a sweep
// file): the stored job, or InputError saying the sweep stores none.
JobSpec required_stored_job(const SweepLog& log, const std::string& sweep_path = "");

// "SWEEP (stored job)", or "<job stored in the sweep file>" when the sweep's path is not known.
std::string stored_job_source(const std::string& sweep_path = "");

}  // namespace hpsweep
