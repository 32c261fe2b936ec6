#pragma once
// Thin RAII shims over the HDF5 C API. Every handle is move-only and closed by its destructor,
// which never throws. Failures throw Hdf5Error with the call, the object and HDF5's own message.
#include <hdf5.h>

#include <cstdint>
#include <string>
#include <vector>

namespace hpsweep::h5 {

class Id {
 public:
  using Closer = herr_t (*)(hid_t);
  Id() = default;
  Id(hid_t id, Closer closer) : id_(id), closer_(closer) {}
  Id(Id&& o) noexcept : id_(o.id_), closer_(o.closer_) { o.id_ = H5I_INVALID_HID; }
  Id& operator=(Id&& o) noexcept;
  Id(const Id&) = delete;
  Id& operator=(const Id&) = delete;
  ~Id() { reset(); }
  void reset() noexcept;
  // Gives up ownership without closing.
  void release() noexcept { id_ = H5I_INVALID_HID; }
  hid_t get() const { return id_; }
  operator hid_t() const { return id_; }  // NOLINT: designed to pass straight to H5 calls
  bool valid() const { return id_ >= 0; }

 private:
  hid_t id_ = H5I_INVALID_HID;
  Closer closer_ = nullptr;
};

// Silences HDF5's automatic error printing once per process; errors surface as exceptions.
void quiet_errors();
// Throws Hdf5Error("<what> in '<file>': <HDF5 message>") when status < 0. `what` must not call
// HDF5 (build it before the call): any HDF5 call clears the error stack that gives the message.
hid_t check(hid_t status, const std::string& what, const std::string& file);

bool is_hdf5_file(const std::string& path);
Id create_file(const std::string& path);  // truncates: callers create under a temporary name
Id open_file(const std::string& path, bool writable);
// Closes a file and checks the result: a close that cannot write its last metadata (a full disk)
// throws. (HDF5's exit handler is off, so a file whose close failed is not closed again at exit.)
void close_file(hid_t file, const std::string& path);

// Attributes on an object.
void write_string_attr(hid_t obj, const std::string& name, const std::string& value, const std::string& file);
void write_int_attr(hid_t obj, const std::string& name, std::int64_t value, const std::string& file);
std::string read_string_attr(hid_t obj, const std::string& name, const std::string& file);
std::int64_t read_int_attr(hid_t obj, const std::string& name, const std::string& file);
bool has_attr(hid_t obj, const std::string& name);

Id variable_string_type();
Id fixed_string_type(std::size_t size);

// The HDF5 path of an open object ("/trials"), for messages.
std::string object_name(hid_t obj);
std::uint64_t file_size(const std::string& path);  // 0 when it cannot be read

// While alive, a crash inside HDF5 (it trusts some on-disk sizes and addresses, e.g. in the heap
// of variable-length strings) ends the process with a message naming the file and what was being
// read, and exit status 3, instead of a segmentation fault. Checksums catch most damage first.
class CrashGuard {
 public:
  CrashGuard(const std::string& file, const std::string& action);
  ~CrashGuard();
  CrashGuard(const CrashGuard&) = delete;
  CrashGuard& operator=(const CrashGuard&) = delete;
};

// A 1-D chunked dataset that grows at its end, each chunk with a Fletcher32 checksum.
Id create_extendible(hid_t parent, const std::string& name, hid_t type, hsize_t chunk, const std::string& file);
Id open_dataset(hid_t parent, const std::string& name, const std::string& file);
// A fixed-size 1-D table written at once, chunked so that it carries a Fletcher32 checksum.
Id create_table(hid_t parent, const std::string& name, hid_t type, const void* data, hsize_t count,
                const std::string& file);
hsize_t dataset_length(hid_t dset, const std::string& file);
// dataset_length, refusing an extent the file cannot hold (a damaged dataspace), before anyone allocates it.
hsize_t checked_length(hid_t dset, const std::string& file);
// Appends `count` elements of `mem_type` from `data`.
void append(hid_t dset, hid_t mem_type, const void* data, hsize_t count, const std::string& file);
// Replaces the whole content (resizing to `count`).
void overwrite(hid_t dset, hid_t mem_type, const void* data, hsize_t count, const std::string& file);
void read_all(hid_t dset, hid_t mem_type, void* data, const std::string& file);

}  // namespace hpsweep::h5
