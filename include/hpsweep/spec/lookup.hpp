#pragma once
// kind = lookup: trials answered from a finished sweep's table, a results CSV read the way
// `hpsweep ingest` reads it, or a sweep .h5. spec/ knows the table's rows; the readers live in
// ingest/ (lookup_table.hpp) and the program installs them with set_lookup_table_reader(), so
// the job parser and the backend read tables without including the modules that parse them.
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace hpsweep {

struct LookupSettings {
  std::string file;              // results CSV or sweep .h5
  std::string map;               // CSV column map, as `hpsweep ingest --map`
  bool batch_in_tokens = false;  // batch_unit = tokens
  std::int64_t seq_len = 2048;   // when the table has no seq_len column
  double diverged_ratio = 1.5;   // as `hpsweep ingest --diverged-ratio`
  double tolerance = 1e-3;       // relative distance at which a grid point matches a row
  static LookupSettings from_options(const std::map<std::string, std::string>& options);
};

// One answered trial of the table.
struct LookupRow {
  double params = 0, tokens = 0, lr = 0, wd = 0;
  std::int64_t batch = 0, seq_len = 0;  // batch in sequences
  bool diverged = false;
  double final_loss = std::numeric_limits<double>::quiet_NaN();
  double smooth_loss = std::numeric_limits<double>::quiet_NaN();
  std::int64_t steps = 0;
  std::string error;   // why it is DIVERGED
  std::string source;  // "FILE:LINE" or "FILE:trial ID"
};

using LookupTableReader = std::function<std::vector<LookupRow>(const LookupSettings&)>;
void set_lookup_table_reader(LookupTableReader reader);
// The table of `settings` (read once per process and setting; thread-safe). InputError naming
// the file when it cannot be read, or when no reader was installed.
std::shared_ptr<const std::vector<LookupRow>> lookup_table(const LookupSettings& settings);

}  // namespace hpsweep
