#pragma once
// The sweep's HDF5 file: the product users read with h5py or h5dump. Layout in docs/schema.md.
#include <cstdint>
#include <string>
#include <vector>

#include "hpsweep/store/hdf5_file.hpp"
#include "hpsweep/store/records.hpp"

namespace hpsweep {

struct StoreContents {
  SweepLog log;
  std::uint64_t journal_records = 0;  // how many journal records the file reflects
};

class Hdf5Store {
 public:
  // Writes a complete file from `log` under a temporary name, then renames it over `path`,
  // so `path` is never half-written.
  static void write_snapshot(const std::string& path, const SweepLog& log, const std::vector<Trial>& grid,
                             std::uint64_t journal_records);
  static Hdf5Store open(const std::string& path);

  // Appends log.results[from, end) to /trials and their curves to /curves.
  void append_results(const SweepLog& log, std::size_t from);
  void write_launches(const std::vector<LaunchRecord>& launches);
  void write_grid(const std::vector<Trial>& grid);
  void write_job(const std::string& job_path, const std::string& job_text);
  // Writes /fits/<name> for every fit (replacing groups of the same name).
  void write_fits(const std::vector<FitRecord>& fits);
  void set_journal_records(std::uint64_t n);
  void flush();
  // Closes the file now, reporting a failed final write (a full disk) instead of losing it.
  void close();

 private:
  Hdf5Store(std::string path, h5::Id file) : path_(std::move(path)), file_(std::move(file)) {}
  static void create_layout(hid_t file, const std::string& path);
  std::string path_;
  h5::Id file_;
};

// Reads a whole store. Throws StoreRefused if it is not an hpsweep file.
StoreContents read_store(const std::string& path);

}  // namespace hpsweep
