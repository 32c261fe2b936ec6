#pragma once
// The write-ahead journal beside the HDF5 file ("<file>.journal"). Every launch, dispatch and
// result is appended here first, framed with a length and a CRC-32, so that a kill at any
// moment leaves a readable prefix. The HDF5 file is rebuilt from it after an unclean stop.
#include <cstdint>
#include <string>

#include "hpsweep/store/records.hpp"
#include "hpsweep/util/error.hpp"

namespace hpsweep {

enum class JournalRecordType : std::uint8_t {
  Header = 1,       // schema version, tool version, created, job path, job text
  JobChanged = 2,   // job path, job text (after --extend)
  LaunchBegin = 3,  // LaunchRecord
  LaunchEnd = 4,    // LaunchRecord with end time and how it ended
  Dispatch = 5,     // DispatchRecord
  Result = 6,       // TrialRecord
  Fit = 7,          // FitRecord
  // u32 count | u32 raw size | deflate(count TrialRecords back to back). Written by CSV ingest and by
  // rebuilds, where results come in thousands and repeat most of their bytes (schema 4).
  ResultBatch = 8,
};

struct JournalContents {
  SweepLog log;
  std::uint64_t records = 0;      // complete, valid records
  std::uint64_t valid_bytes = 0;  // length of the valid prefix
  bool torn_tail = false;         // the final record is incomplete or bad (a write cut by a kill)
  // A bad record with readable records after it: damage, not a torn write. `log` then holds every
  // readable record (before and after the damage); `damage_offset` is where the first bad one starts.
  bool damaged = false;
  std::uint64_t damage_offset = 0;
  std::uint64_t records_after_damage = 0;  // readable records after the first damage (included in `log`)
};

// The journal's magic or header record is unreadable: nothing in it can be trusted.
class JournalUnreadable : public StoreRefused {
 public:
  using StoreRefused::StoreRefused;
};

// Reads every valid record. Only a bad final record counts as a torn tail; a bad record followed
// by valid ones sets `damaged`. Throws StoreRefused if the file is not an hpsweep journal.
JournalContents read_journal(const std::string& path);

class JournalWriter {
 public:
  // Creates a new journal (fails if one exists) and writes the header.
  static JournalWriter create(const std::string& path, const SweepLog& header);
  // Opens an existing journal for appending after its valid prefix (a torn tail is cut off).
  static JournalWriter open(const std::string& path, std::uint64_t valid_bytes, std::uint64_t records);

  JournalWriter(JournalWriter&& o) noexcept;
  JournalWriter& operator=(JournalWriter&&) = delete;
  JournalWriter(const JournalWriter&) = delete;
  ~JournalWriter();

  void append_job(const std::string& job_path, const std::string& job_text);
  void append_launch_begin(const LaunchRecord& l);
  void append_launch_end(const LaunchRecord& l);
  void append_dispatch(const DispatchRecord& d);
  void append_result(const TrialRecord& r);
  // Appends `records` as compressed ResultBatch records of at most kResultsPerBatch each.
  void append_results(const TrialRecord* records, std::size_t n);
  static constexpr std::size_t kResultsPerBatch = 2048;
  void append_fit(const FitRecord& f);

  // Hands buffered records to the kernel (survives a kill -9 of this process from here on).
  void write_out();
  // write_out() and fdatasync (survives a node crash).
  void sync();
  std::uint64_t records() const { return records_; }
  const std::string& path() const { return path_; }

 private:
  JournalWriter(std::string path, int fd, std::uint64_t records);
  void append(JournalRecordType type, const std::string& payload);

  std::string path_;
  int fd_ = -1;
  std::uint64_t records_ = 0;
  std::string buffer_;
  ByteWriter scratch_;
};

std::string journal_path_for(const std::string& store_path);
// True while another open descriptor (a live run) holds the journal's lock.
bool journal_is_locked(const std::string& path);

}  // namespace hpsweep
