#pragma once
// A trial: one point of the grid, identified by a stable hash of everything that changes its
// result. Resume = expand the grid again and subtract the ids already finished.
#include <cstdint>
#include <string>
#include <vector>

namespace hpsweep {

struct JobSpec;

using TrialId = std::uint64_t;

struct TrialPoint {
  double params = 0;         // N, non-embedding parameters
  double tokens = 0;         // D, training tokens
  double lr = 0;             // peak learning rate
  std::int64_t batch = 0;    // sequences per step
  std::int64_t seq_len = 0;  // tokens per sequence
  double wd = 0;             // AdamW weight decay
  std::int32_t repeat = 0;   // 0..repeats-1, the seed index
  std::string variant;       // name in the job's [variants], "" when it has none

  double batch_tokens() const { return static_cast<double>(batch) * static_cast<double>(seq_len); }
  double compute() const { return 6.0 * params * tokens; }  // FLOPs, ~6ND
  std::int64_t steps() const;                               // ceil(D / batch_tokens)
};

struct Trial {
  TrialId id = 0;
  TrialPoint point;
};

enum class TrialState : std::uint8_t {
  Pending = 0,
  Running = 1,
  Done = 2,
  Diverged = 3,
  Failed = 4,
  Lost = 5,
  Timeout = 6,
  // Not run and not a failure: the backend cannot answer this point (kind = lookup: the table
  // lacks it). Never rerun, never fitted.
  Unavailable = 7
};
// The highest state value; stored files hold nothing above it.
inline constexpr TrialState kLastTrialState = TrialState::Unavailable;
const char* to_string(TrialState s);
bool is_terminal(TrialState s);  // DONE, DIVERGED, FAILED, TIMEOUT, UNAVAILABLE: never rerun unless asked

// Canonical text of a point's coordinates: round-trip exact numbers, fixed key order.
std::string canonical_coordinates(const TrialPoint& p);
// FNV-1a-64 of result_settings + canonical coordinates.
TrialId trial_id(const TrialPoint& p, const std::string& result_settings);

// Every trial of the job, most expensive first (ties by id), ids unique.
// Throws InputError if the grid is empty or too large.
std::vector<Trial> expand_grid(const JobSpec& job);

}  // namespace hpsweep
