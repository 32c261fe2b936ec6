#pragma once
// Messages between master and workers. Master: JOB, then TRIAL* and finally STOP (or ABORT).
// Worker: READY (or WORKER_ERROR) after JOB, then one RESULT per TRIAL.
#include <string>

#include "hpsweep/store/records.hpp"

namespace hpsweep::protocol {

enum Tag : int {
  kJob = 1,          // job path + job text
  kAbort = 2,        // nothing will run: exit quietly
  kTrial = 3,        // one Trial
  kStop = 4,         // no more trials
  kReady = 5,        // worker's host name
  kResult = 6,       // TrialRecord (attempt and launch are set by the master)
  kWorkerError = 7,  // worker could not start: message
};

std::string encode_job(const std::string& path, const std::string& text, const std::string& trial_root);
void decode_job(const std::string& payload, std::string& path, std::string& text, std::string& trial_root);
std::string encode_trial(const Trial& t);
Trial decode_trial(const std::string& payload);
std::string encode_result(const TrialRecord& r);
TrialRecord decode_result(const std::string& payload);

}  // namespace hpsweep::protocol
