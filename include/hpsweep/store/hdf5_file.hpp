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
  hid_t get() const { return id_; }
  operator hid_t() const { return id_; }  // NOLINT: designed to pass straight to H5 calls
  bool valid() const { return id_ >= 0; }

 private:
  hid_t id_ = H5I_INVALID_HID;
  Closer closer_ = nullptr;
};

// Silences HDF5's automatic error printing once per process; errors surface as exceptions.
void quiet_errors();
// Throws Hdf5Error("<what> in '<file>': <HDF5 message>") when status < 0.
hid_t check(hid_t status, const std::string& what, const std::string& file);

bool is_hdf5_file(const std::string& path);
Id create_file(const std::string& path);  // truncates: callers create under a temporary name
Id open_file(const std::string& path, bool writable);

// Attributes on an object.
void write_string_attr(hid_t obj, const std::string& name, const std::string& value, const std::string& file);
void write_int_attr(hid_t obj, const std::string& name, std::int64_t value, const std::string& file);
std::string read_string_attr(hid_t obj, const std::string& name, const std::string& file);
std::int64_t read_int_attr(hid_t obj, const std::string& name, const std::string& file);
bool has_attr(hid_t obj, const std::string& name);

Id variable_string_type();
Id fixed_string_type(std::size_t size);

// A 1-D chunked dataset that grows at its end.
Id create_extendible(hid_t parent, const std::string& name, hid_t type, hsize_t chunk, const std::string& file);
Id open_dataset(hid_t parent, const std::string& name, const std::string& file);
hsize_t dataset_length(hid_t dset, const std::string& file);
// Appends `count` elements of `mem_type` from `data`.
void append(hid_t dset, hid_t mem_type, const void* data, hsize_t count, const std::string& file);
// Replaces the whole content (resizing to `count`).
void overwrite(hid_t dset, hid_t mem_type, const void* data, hsize_t count, const std::string& file);
void read_all(hid_t dset, hid_t mem_type, void* data, const std::string& file);

}  // namespace hpsweep::h5
