#include "hpsweep/store/stored_job.hpp"

namespace hpsweep {

std::string stored_job_source(const std::string& sweep_path) {
  return sweep_path.empty() ? "<job stored in the sweep file>" : sweep_path + " (stored job)";
}

std::optional<JobSpec> stored_job(const SweepLog& log, const std::string& sweep_path) {
  if (log.job_text.empty()) return std::nullopt;
  return parse_job(log.job_text, stored_job_source(sweep_path));
}

}  // namespace hpsweep
