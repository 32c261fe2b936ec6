#pragma once
// `hpsweep ingest`: results produced elsewhere into a sweep file (new or existing), through the
// same store, ids and idempotence as a run.
#include <string>
#include <vector>

#include "hpsweep/ingest/csv_ingest.hpp"
#include "hpsweep/ingest/log_ingest.hpp"

namespace hpsweep {

struct IngestSummary {
  std::size_t rows = 0, imported = 0, already_present = 0, duplicates = 0, diverged = 0;
  std::vector<std::string> skipped;
  std::vector<std::string> notes;
};

class Comm;

struct LogIngestSummary {
  std::size_t runs = 0, imported = 0, already_present = 0, unfinished = 0, diverged = 0;
  std::vector<std::string> bad;  // "path:line: reason"
  std::size_t bytes = 0;
  double seconds = 0;
  int workers = 0;
  std::vector<std::string> notes;
};

// The master's side of `hpsweep ingest DIR`: finds the run directories, hands them out to the
// workers of `comm` in small batches, and records what they parse (the only writer).
// `layout`: "jsonl", "megatron", or "auto" (each directory by the files it holds).
LogIngestSummary ingest_run_logs(Comm& comm, const std::string& root, const std::string& store_path,
                                 const std::string& layout, const LogIngestOptions& options,
                                 const std::string& command_line);
// A worker's side: parse the directories the master sends until it says stop.
void run_ingest_worker(Comm& comm);
void stop_workers_for_ingest(Comm& comm);

IngestSummary ingest_csv(const std::string& csv_path, const std::string& store_path, const CsvIngestOptions& options,
                         const std::string& command_line);

}  // namespace hpsweep
