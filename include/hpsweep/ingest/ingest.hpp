#pragma once
// `hpsweep ingest`: results produced elsewhere into a sweep file (new or existing), through the
// same store, ids and idempotence as a run.
#include <functional>
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
  std::vector<std::string> bad;              // "path:line: reason"
  std::vector<std::string> unfinished_runs;  // "path: reached step S of T" (stored, finished = 0, not fitted)
  std::size_t bytes = 0;
  double seconds = 0;
  int workers = 0;
  std::vector<std::string> notes;
};

// The master's side of `hpsweep ingest DIR`: finds the run directories, hands them out to the
// workers of `comm` in small batches (run_tasks, the engine of `hpsweep run`), and records what
// they parse (the only writer). `layout`: "jsonl", "megatron", or "auto" (each directory by the
// files it holds).
LogIngestSummary ingest_run_logs(Comm& comm, const std::string& root, const std::string& store_path,
                                 const std::string& layout, const LogIngestOptions& options,
                                 const std::string& command_line);
// A worker's side: parse the directories the master sends until it says stop.
void run_ingest_worker(Comm& comm, const std::string& host);
// The whole of `hpsweep ingest DIR` on the workers of run_with_workers (threads, or MPI ranks:
// call from every rank). `report` gets the summary on the master. Returns the exit status.
int ingest_run_logs_on_workers(int& argc, char**& argv, int local_workers, const std::string& root,
                               const std::string& store_path, const std::string& layout,
                               const LogIngestOptions& options, const std::string& command_line,
                               const std::function<void(const LogIngestSummary&)>& report);

IngestSummary ingest_csv(const std::string& csv_path, const std::string& store_path, const CsvIngestOptions& options,
                         const std::string& command_line);

}  // namespace hpsweep
