#pragma once
// Importing results that cluster runs produced elsewhere, from a CSV file with a header row.
// Each row becomes a trial record (DONE, or DIVERGED by the rule below) whose id is a content
// hash of its coordinates and loss: importing the same file twice adds nothing.
#include <cstdint>
#include <istream>
#include <map>
#include <string>
#include <vector>

#include "hpsweep/store/records.hpp"

namespace hpsweep {

struct CsvIngestOptions {
  // Trial field -> CSV column. Required: lr, batch, loss, params, tokens.
  // Optional: final_loss (else = loss), wd, seq_len, steps.
  std::map<std::string, std::string> columns;
  bool batch_in_tokens = false;  // else sequences of seq_len tokens
  std::int64_t seq_len = 2048;   // when no seq_len column is mapped
  double wd = 0.1;               // when no wd column is mapped
  // A run is DIVERGED when its loss is non-finite, above `diverged_above` (0: off), or above
  // `diverged_ratio` times the best loss of its (N, D) cell (0: off).
  double diverged_above = 0;
  double diverged_ratio = 1.5;
  bool strict = false;  // refuse the whole file on the first bad row
};

// "lr=lr,batch=bs,loss=smooth loss" -> {lr: lr, batch: bs, loss: "smooth loss"}. Throws InputError.
std::map<std::string, std::string> parse_column_map(const std::string& text);

struct CsvIngestResult {
  std::vector<TrialRecord> records;  // in file order, duplicates within the file removed
  std::vector<std::string> skipped;  // "file:line: reason", the line where the record starts
  std::size_t rows = 0;              // data rows read
  std::size_t duplicates = 0;        // rows identical to an earlier row of the file
};

// Throws InputError for an unreadable file, a missing mapped column, or (strict) a bad row.
CsvIngestResult read_results_csv(const std::string& path, const CsvIngestOptions& options);
// The same from a stream; `path` names it in messages.
CsvIngestResult read_results_csv(std::istream& in, const std::string& path, const CsvIngestOptions& options);

// Splits one CSV record (RFC 4180 quoting; a quoted field may hold newlines).
std::vector<std::string> split_csv_line(const std::string& line);

TrialId ingested_trial_id(const TrialPoint& p, double loss);

}  // namespace hpsweep
