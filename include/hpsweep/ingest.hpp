#pragma once
// `hpsweep ingest`: results produced elsewhere into a sweep file (new or existing), through the
// same store, ids and idempotence as a run.
#include <string>
#include <vector>

#include "hpsweep/backends/csv_ingest.hpp"

namespace hpsweep {

struct IngestSummary {
  std::size_t rows = 0, imported = 0, already_present = 0, duplicates = 0, diverged = 0;
  std::vector<std::string> skipped;
  std::vector<std::string> notes;
};

IngestSummary ingest_csv(const std::string& csv_path, const std::string& store_path, const CsvIngestOptions& options,
                         const std::string& command_line);

}  // namespace hpsweep
