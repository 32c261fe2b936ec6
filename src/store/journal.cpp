#include "hpsweep/store/journal.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <optional>
#include <sstream>
#include <string_view>
#include <vector>

#include "hpsweep/util/error.hpp"
#include "hpsweep/version.hpp"

namespace hpsweep {

namespace {
constexpr char kMagic[8] = {'H', 'P', 'S', 'W', 'J', 'N', 'L', '1'};
// A record: u32 payload length | u8 type | payload | u32 crc32(type + payload).
constexpr std::size_t kFrameOverhead = 4 + 1 + 4;
constexpr std::uint32_t kMaxRecord = 1u << 30;

std::uint32_t crc_of(std::uint8_t type, const char* data, std::size_t n) {
  uLong crc = crc32(0L, Z_NULL, 0);
  crc = crc32(crc, &type, 1);
  crc = crc32(crc, reinterpret_cast<const Bytef*>(data), static_cast<uInt>(n));
  return static_cast<std::uint32_t>(crc);
}

// The payload length of a complete, CRC-valid record of a known type starting at `pos`.
std::optional<std::uint32_t> valid_frame_at(const std::string& data, std::size_t pos) {
  if (pos >= data.size() || data.size() - pos < kFrameOverhead) return std::nullopt;
  std::uint32_t len;
  std::memcpy(&len, data.data() + pos, 4);
  if (len > kMaxRecord || data.size() - pos - kFrameOverhead < len) return std::nullopt;
  const auto type = static_cast<std::uint8_t>(data[pos + 4]);
  if (type < static_cast<std::uint8_t>(JournalRecordType::Header) ||
      type > static_cast<std::uint8_t>(JournalRecordType::ResultBatch))
    return std::nullopt;
  const char* payload = data.data() + pos + 5;
  std::uint32_t crc;
  std::memcpy(&crc, payload + len, 4);
  if (crc != crc_of(type, payload, len)) return std::nullopt;
  return len;
}

// Where the next valid record starts at or after `from` (npos: none).
std::size_t next_valid_frame(const std::string& data, std::size_t from) {
  for (std::size_t q = from; q + kFrameOverhead <= data.size(); ++q)
    if (valid_frame_at(data, q)) return q;
  return std::string::npos;
}

void write_all(int fd, const char* data, std::size_t n, const std::string& path) {
  while (n > 0) {
    const ssize_t w = ::write(fd, data, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      throw_system_error("cannot write journal", path);
    }
    data += w;
    n -= static_cast<std::size_t>(w);
  }
}

// A batch is inflated into a buffer of the size it declares, bounded so that a damaged size (whose
// record would still need a valid CRC) cannot ask for more memory than a record may hold.
std::vector<TrialRecord> decode_result_batch(std::string_view payload) {
  if (payload.size() < 8) throw Error("corrupt result batch: shorter than its header");
  std::uint32_t count, raw_size;
  std::memcpy(&count, payload.data(), 4);
  std::memcpy(&raw_size, payload.data() + 4, 4);
  if (raw_size > kMaxRecord) throw Error("corrupt result batch: declares " + std::to_string(raw_size) + " bytes");
  std::string raw(raw_size, '\0');
  uLongf inflated = raw_size;
  const int rc = uncompress(reinterpret_cast<Bytef*>(raw.data()), &inflated,
                            reinterpret_cast<const Bytef*>(payload.data() + 8), static_cast<uLong>(payload.size() - 8));
  if (rc != Z_OK || inflated != raw_size)
    throw Error("corrupt result batch: does not inflate to its declared " + std::to_string(raw_size) + " bytes");
  ByteReader r(raw);
  std::vector<TrialRecord> records;
  records.reserve(std::min<std::uint32_t>(count, raw_size / 8));
  for (std::uint32_t i = 0; i < count; ++i) records.push_back(decode_trial_record(r));
  if (!r.at_end()) throw Error("corrupt result batch: bytes left after " + std::to_string(count) + " results");
  return records;
}

void lock_or_refuse(int fd, const std::string& path) {
  // An open descriptor of this process, or of another run, holds the lock.
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    ::close(fd);
    throw StoreRefused("another hpsweep run is writing this sweep (journal '" + path +
                       "' is locked); wait for it to finish or stop it first");
  }
}
}  // namespace

std::string journal_path_for(const std::string& store_path) { return store_path + ".journal"; }

bool journal_is_locked(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  const bool locked = ::flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK;
  ::close(fd);
  return locked;
}

JournalContents read_journal(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw StoreRefused("cannot read journal '" + path + "'");
  std::ostringstream ss;
  ss << in.rdbuf();
  const std::string data = ss.str();
  if (data.size() < sizeof kMagic || std::memcmp(data.data(), kMagic, sizeof kMagic) != 0)
    throw JournalUnreadable("'" + path + "' is not an hpsweep journal (bad magic); it was not modified");

  JournalContents out;
  std::size_t pos = sizeof kMagic;
  bool have_header = false;
  while (pos < data.size()) {
    const std::optional<std::uint32_t> frame = valid_frame_at(data, pos);
    if (!frame) {
      // Only a bad final record is a write cut short; valid records after it mean damage, and
      // reading goes on with them (they are as trustworthy as the ones before: each has its CRC).
      const std::size_t next = next_valid_frame(data, pos + 1);
      if (next == std::string::npos) break;
      if (!out.damaged) out.damage_offset = pos;
      out.damaged = true;
      pos = next;
      continue;
    }
    const std::uint32_t len = *frame;
    const auto type = static_cast<std::uint8_t>(data[pos + 4]);
    const char* payload = data.data() + pos + 5;
    ByteReader r(std::string_view(payload, len));
    SweepLog& log = out.log;
    try {
      switch (static_cast<JournalRecordType>(type)) {
        case JournalRecordType::Header:
          log.schema_version = r.get<std::int32_t>();
          if (log.schema_version > kSchemaVersion)
            throw Error("schema version " + std::to_string(log.schema_version) +
                        " is newer than this hpsweep understands (" + std::to_string(kSchemaVersion) + ")");
          log.tool_version = r.get_string();
          log.created = r.get<double>();
          log.job_path = r.get_string();
          log.job_text = r.get_string();
          have_header = true;
          break;
        case JournalRecordType::JobChanged:
          log.job_path = r.get_string();
          log.job_text = r.get_string();
          break;
        case JournalRecordType::LaunchBegin:
        case JournalRecordType::LaunchEnd: {
          LaunchRecord l = decode_launch_record(r);
          if (l.index < 0) throw Error("corrupt record: negative launch index");
          if (static_cast<std::size_t>(l.index) >= log.launches.size()) log.launches.resize(l.index + 1);
          log.launches[l.index] = l;
          break;
        }
        case JournalRecordType::Dispatch: {
          DispatchRecord d;
          d.id = r.get<TrialId>();
          d.launch = r.get<std::int32_t>();
          d.rank = r.get<std::int32_t>();
          d.time = r.get<double>();
          log.add_dispatch(d);
          break;
        }
        case JournalRecordType::Result:
          log.add_result(decode_trial_record(r));
          break;
        case JournalRecordType::Fit:
          log.add_fit(decode_fit_record(r));
          break;
        case JournalRecordType::ResultBatch:
          for (auto& result : decode_result_batch(std::string_view(payload, len))) log.add_result(std::move(result));
          break;
        default:
          throw Error("unknown record type " + std::to_string(type));
      }
    } catch (const Error& e) {
      // A CRC-valid record we cannot decode means a different format, not a torn write.
      throw StoreRefused("journal '" + path + "' record " + std::to_string(out.records) + ": " + e.what());
    }
    if (!have_header) throw JournalUnreadable("journal '" + path + "' does not start with a header record");
    pos += kFrameOverhead + len;
    ++out.records;
    if (out.damaged) ++out.records_after_damage;
  }
  if (!have_header) throw JournalUnreadable("journal '" + path + "' has no readable header record");
  out.valid_bytes = pos;
  out.torn_tail = pos != data.size();
  return out;
}

JournalWriter::JournalWriter(std::string path, int fd, std::uint64_t records)
    : path_(std::move(path)), fd_(fd), records_(records) {}

JournalWriter::JournalWriter(JournalWriter&& o) noexcept
    : path_(std::move(o.path_)), fd_(o.fd_), records_(o.records_), buffer_(std::move(o.buffer_)) {
  o.fd_ = -1;
}

JournalWriter::~JournalWriter() {
  if (fd_ < 0) return;
  try {
    write_out();
  } catch (...) {
    // Destructors never throw; unflushed records are simply not durable.
  }
  ::close(fd_);
}

JournalWriter JournalWriter::create(const std::string& path, const SweepLog& header) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) throw_system_error("cannot create journal", path);
  lock_or_refuse(fd, path);
  JournalWriter w(path, fd, 0);
  w.buffer_.append(kMagic, sizeof kMagic);
  ByteWriter p;
  p.put<std::int32_t>(header.schema_version);
  p.put_string(header.tool_version);
  p.put(header.created);
  p.put_string(header.job_path);
  p.put_string(header.job_text);
  w.append(JournalRecordType::Header, p.bytes());
  w.sync();
  return w;
}

JournalWriter JournalWriter::open(const std::string& path, std::uint64_t valid_bytes, std::uint64_t records) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) throw_system_error("cannot open journal", path);
  lock_or_refuse(fd, path);
  // Cut a torn tail so new records follow the last complete one.
  if (::ftruncate(fd, static_cast<off_t>(valid_bytes)) != 0) throw_system_error("cannot truncate journal", path);
  if (::lseek(fd, 0, SEEK_END) < 0) throw_system_error("cannot seek journal", path);
  return JournalWriter(path, fd, records);
}

void JournalWriter::append(JournalRecordType type, const std::string& payload) {
  const auto len = static_cast<std::uint32_t>(payload.size());
  const auto t = static_cast<std::uint8_t>(type);
  const std::uint32_t crc = crc_of(t, payload.data(), payload.size());
  buffer_.append(reinterpret_cast<const char*>(&len), 4);
  buffer_.push_back(static_cast<char>(t));
  buffer_.append(payload);
  buffer_.append(reinterpret_cast<const char*>(&crc), 4);
  ++records_;
}

void JournalWriter::append_job(const std::string& job_path, const std::string& job_text) {
  scratch_.clear();
  scratch_.put_string(job_path);
  scratch_.put_string(job_text);
  append(JournalRecordType::JobChanged, scratch_.bytes());
}

void JournalWriter::append_launch_begin(const LaunchRecord& l) {
  scratch_.clear();
  encode(scratch_, l);
  append(JournalRecordType::LaunchBegin, scratch_.bytes());
}

void JournalWriter::append_launch_end(const LaunchRecord& l) {
  scratch_.clear();
  encode(scratch_, l);
  append(JournalRecordType::LaunchEnd, scratch_.bytes());
}

void JournalWriter::append_dispatch(const DispatchRecord& d) {
  scratch_.clear();
  scratch_.put(d.id);
  scratch_.put(d.launch);
  scratch_.put(d.rank);
  scratch_.put(d.time);
  append(JournalRecordType::Dispatch, scratch_.bytes());
}

void JournalWriter::append_result(const TrialRecord& r) {
  scratch_.clear();
  encode(scratch_, r);
  append(JournalRecordType::Result, scratch_.bytes());
}

void JournalWriter::append_results(const TrialRecord* records, std::size_t n) {
  for (std::size_t from = 0; from < n; from += kResultsPerBatch) {
    const std::size_t count = std::min(kResultsPerBatch, n - from);
    scratch_.clear();
    for (std::size_t i = from; i < from + count; ++i) encode(scratch_, records[i]);
    const std::string& raw = scratch_.bytes();
    uLongf packed_size = compressBound(static_cast<uLong>(raw.size()));
    std::string payload(8 + packed_size, '\0');
    const auto count32 = static_cast<std::uint32_t>(count);
    const auto raw32 = static_cast<std::uint32_t>(raw.size());
    std::memcpy(payload.data(), &count32, 4);
    std::memcpy(payload.data() + 4, &raw32, 4);
    // Level 1: most of the gain at a small fraction of the time of the default level.
    if (compress2(reinterpret_cast<Bytef*>(payload.data() + 8), &packed_size,
                  reinterpret_cast<const Bytef*>(raw.data()), static_cast<uLong>(raw.size()), 1) != Z_OK)
      throw Error("journal '" + path_ + "': cannot compress a batch of " + std::to_string(count) + " results");
    payload.resize(8 + packed_size);
    append(JournalRecordType::ResultBatch, payload);
  }
}

void JournalWriter::append_fit(const FitRecord& f) {
  scratch_.clear();
  encode(scratch_, f);
  append(JournalRecordType::Fit, scratch_.bytes());
}

void JournalWriter::write_out() {
  if (buffer_.empty()) return;
  write_all(fd_, buffer_.data(), buffer_.size(), path_);
  buffer_.clear();
}

void JournalWriter::sync() {
  write_out();
  if (::fdatasync(fd_) != 0) throw_system_error("cannot sync journal", path_);
}

}  // namespace hpsweep
