#include "hpsweep/store/stored_job.hpp"

#include <utility>

#include "hpsweep/util/error.hpp"

namespace hpsweep {

std::string stored_job_source(const std::string& sweep_path) {
  return sweep_path.empty() ? std::string(kStoredJobName) : sweep_path + " (stored job)";
}

std::optional<JobSpec> stored_job(const SweepLog& log, const std::string& sweep_path) {
  if (log.job_text.empty()) return std::nullopt;
  return parse_job(log.job_text, stored_job_source(sweep_path));
}

JobSpec required_stored_job(const SweepLog& log, const std::string& sweep_path) {
  if (std::optional<JobSpec> job = stored_job(log, sweep_path)) return std::move(*job);
  throw InputError(stored_job_source(sweep_path) + ": the sweep stores no job (its results were ingested, not run)");
}

}  // namespace hpsweep
