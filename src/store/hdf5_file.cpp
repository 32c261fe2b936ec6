#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <mutex>

#include <algorithm>
#include "hpsweep/store/hdf5_file.hpp"
#include "hpsweep/util/error.hpp"

namespace hpsweep::h5 {

Id& Id::operator=(Id&& o) noexcept {
  if (this != &o) {
    reset();
    id_ = o.id_;
    closer_ = o.closer_;
    o.id_ = H5I_INVALID_HID;
  }
  return *this;
}

void Id::reset() noexcept {
  if (id_ >= 0 && closer_) closer_(id_);  // a failed close cannot be acted on here
  id_ = H5I_INVALID_HID;
}

void quiet_errors() {
  static std::once_flag once;
  std::call_once(once, [] {
    // HDF5's exit handler closes files still open; after a close that failed (a full disk) it
    // would close a file HDF5 already freed and crash. Every handle here is closed by RAII.
    H5dont_atexit();
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  });
}

namespace {
struct ErrorFrames {
  std::string outer;  // the first frames: the call that failed
  std::string inner;  // the last frame: the cause (a system error, a checksum)
};
herr_t collect(unsigned n, const H5E_error2_t* err, void* out) {
  auto* frames = static_cast<ErrorFrames*>(out);
  std::string frame = std::string(err->func_name ? err->func_name : "?") + ": " + (err->desc ? err->desc : "");
  // A failed write describes itself at length (time, buffer address...): keep the file and the cause.
  if (const auto buf = frame.find(", buf = "); buf != std::string::npos) frame.resize(buf);
  std::replace(frame.begin(), frame.end(), '\n', ' ');
  if (n < 3) {  // frames in between are noise
    if (!frames->outer.empty()) frames->outer.append("; ");
    frames->outer.append(frame);
  } else {
    frames->inner = std::move(frame);
  }
  return 0;
}

bool mentions(const std::string& text, const char* what) { return text.find(what) != std::string::npos; }

// What the reader of an error needs first: whether the disk is full or the file is damaged.
std::string diagnosis(const std::string& detail) {
  if (mentions(detail, "No space left") || mentions(detail, "errno = 28")) return "the disk is full (ENOSPC): ";
  if (mentions(detail, "File too large") || mentions(detail, "errno = 27"))
    return "the file size limit was reached (EFBIG): ";
  if (mentions(detail, "Disk quota") || mentions(detail, "errno = 122")) return "the disk quota is exhausted: ";
  if (mentions(detail, "checksum") || mentions(detail, "Fletcher32") || mentions(detail, "filter"))
    return "the file is damaged (a checksum does not match): ";
  return "";
}

char crash_message[2048];
std::size_t crash_message_length = 0;
int crash_guard_depth = 0;
struct sigaction previous_segv {
}, previous_bus{};

void on_crash(int) {
  // Only async-signal-safe calls: the message was prepared when the guard was set.
  [[maybe_unused]] const ssize_t n = ::write(STDERR_FILENO, crash_message, crash_message_length);
  ::_exit(3);
}
}  // namespace

hid_t check(hid_t status, const std::string& what, const std::string& file) {
  if (status >= 0) return status;
  ErrorFrames frames;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, collect, &frames);
  H5Eclear2(H5E_DEFAULT);
  std::string detail = frames.outer;
  if (!frames.inner.empty()) detail += (detail.empty() ? "" : "; ") + frames.inner;
  throw Hdf5Error(diagnosis(detail) + what + " in '" + file + "' failed" + (detail.empty() ? "" : ": " + detail));
}

std::string object_name(hid_t obj) {
  char name[512] = {0};
  if (H5Iget_name(obj, name, sizeof name) <= 0) return "?";
  return name;
}

std::uint64_t file_size(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? static_cast<std::uint64_t>(st.st_size) : 0;
}

CrashGuard::CrashGuard(const std::string& file, const std::string& action) {
  const std::string msg = "hpsweep: error: '" + file + "' is damaged: HDF5 crashed while " + action +
                          ". The file was not modified; restore it from a copy, or move it aside and let `hpsweep run` "
                          "rebuild it from its journal if the journal is intact.\n";
  crash_message_length = std::min(msg.size(), sizeof crash_message);
  std::memcpy(crash_message, msg.data(), crash_message_length);
  if (crash_guard_depth++ > 0) return;
  struct sigaction sa {};
  sa.sa_handler = on_crash;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGSEGV, &sa, &previous_segv);
  sigaction(SIGBUS, &sa, &previous_bus);
}

CrashGuard::~CrashGuard() {
  if (--crash_guard_depth > 0) return;
  sigaction(SIGSEGV, &previous_segv, nullptr);
  sigaction(SIGBUS, &previous_bus, nullptr);
}

bool is_hdf5_file(const std::string& path) {
  quiet_errors();
  const htri_t r = H5Fis_hdf5(path.c_str());
  H5Eclear2(H5E_DEFAULT);
  return r > 0;
}

Id create_file(const std::string& path) {
  quiet_errors();
  Id fapl(check(H5Pcreate(H5P_FILE_ACCESS), "H5Pcreate", path), H5Pclose);
  // 1.8-compatible format: readable by every h5py/h5dump in use, no SWMR flags to clear.
  return Id(check(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl), "create file", path), H5Fclose);
}

Id open_file(const std::string& path, bool writable) {
  quiet_errors();
  return Id(check(H5Fopen(path.c_str(), writable ? H5F_ACC_RDWR : H5F_ACC_RDONLY, H5P_DEFAULT), "open file", path),
            H5Fclose);
}

void close_file(hid_t file, const std::string& path) { check(H5Fclose(file), "close (final write)", path); }

Id variable_string_type() {
  Id t(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(t, H5T_VARIABLE);
  H5Tset_cset(t, H5T_CSET_UTF8);
  return t;
}

Id fixed_string_type(std::size_t size) {
  Id t(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(t, size);
  H5Tset_strpad(t, H5T_STR_NULLTERM);
  return t;
}

bool has_attr(hid_t obj, const std::string& name) { return H5Aexists(obj, name.c_str()) > 0; }

void write_string_attr(hid_t obj, const std::string& name, const std::string& value, const std::string& file) {
  if (has_attr(obj, name)) check(H5Adelete(obj, name.c_str()), "delete attribute " + name, file);
  Id type = variable_string_type();
  Id space(check(H5Screate(H5S_SCALAR), "H5Screate", file), H5Sclose);
  Id attr(check(H5Acreate2(obj, name.c_str(), type, space, H5P_DEFAULT, H5P_DEFAULT), "create attribute " + name, file),
          H5Aclose);
  const char* p = value.c_str();
  check(H5Awrite(attr, type, &p), "write attribute " + name, file);
}

void write_int_attr(hid_t obj, const std::string& name, std::int64_t value, const std::string& file) {
  if (!has_attr(obj, name)) {
    Id space(check(H5Screate(H5S_SCALAR), "H5Screate", file), H5Sclose);
    Id attr(check(H5Acreate2(obj, name.c_str(), H5T_STD_I64LE, space, H5P_DEFAULT, H5P_DEFAULT),
                  "create attribute " + name, file),
            H5Aclose);
    check(H5Awrite(attr, H5T_NATIVE_INT64, &value), "write attribute " + name, file);
    return;
  }
  Id attr(check(H5Aopen(obj, name.c_str(), H5P_DEFAULT), "open attribute " + name, file), H5Aclose);
  check(H5Awrite(attr, H5T_NATIVE_INT64, &value), "write attribute " + name, file);
}

std::string read_string_attr(hid_t obj, const std::string& name, const std::string& file) {
  Id attr(check(H5Aopen(obj, name.c_str(), H5P_DEFAULT), "open attribute " + name, file), H5Aclose);
  Id ftype(check(H5Aget_type(attr), "attribute type " + name, file), H5Tclose);
  if (H5Tis_variable_str(ftype) > 0) {
    Id type = variable_string_type();
    char* p = nullptr;
    check(H5Aread(attr, type, &p), "read attribute " + name, file);
    std::string s = p ? p : "";
    H5free_memory(p);
    return s;
  }
  const std::size_t n = H5Tget_size(ftype);
  Id type = fixed_string_type(n + 1);
  std::string s(n + 1, '\0');
  check(H5Aread(attr, type, s.data()), "read attribute " + name, file);
  s.resize(std::strlen(s.c_str()));
  return s;
}

std::int64_t read_int_attr(hid_t obj, const std::string& name, const std::string& file) {
  Id attr(check(H5Aopen(obj, name.c_str(), H5P_DEFAULT), "open attribute " + name, file), H5Aclose);
  std::int64_t v = 0;
  check(H5Aread(attr, H5T_NATIVE_INT64, &v), "read attribute " + name, file);
  return v;
}

namespace {
// Rows of numbers compress well once their bytes are grouped (shuffle); deflate is HDF5's own
// zlib filter, readable by every HDF5 build and by h5py. Every chunk then carries a checksum of
// what is stored, verified on every read: damage is refused, never served.
void compress_then_checksum(hid_t dcpl, const std::string& name, const std::string& file) {
  check(H5Pset_shuffle(dcpl), "set shuffle for " + name, file);
  check(H5Pset_deflate(dcpl, 1), "set compression for " + name, file);
  check(H5Pset_fletcher32(dcpl), "set checksum for " + name, file);
}
}  // namespace

Id create_extendible(hid_t parent, const std::string& name, hid_t type, hsize_t chunk, const std::string& file) {
  const hsize_t dims[1] = {0}, maxdims[1] = {H5S_UNLIMITED}, chunks[1] = {chunk};
  Id space(check(H5Screate_simple(1, dims, maxdims), "H5Screate_simple", file), H5Sclose);
  Id dcpl(check(H5Pcreate(H5P_DATASET_CREATE), "H5Pcreate", file), H5Pclose);
  check(H5Pset_chunk(dcpl, 1, chunks), "set chunk for " + name, file);
  compress_then_checksum(dcpl, name, file);
  Id lcpl(check(H5Pcreate(H5P_LINK_CREATE), "H5Pcreate", file), H5Pclose);
  check(H5Pset_create_intermediate_group(lcpl, 1), "H5Pset_create_intermediate_group", file);
  return Id(
      check(H5Dcreate2(parent, name.c_str(), type, space, lcpl, dcpl, H5P_DEFAULT), "create dataset " + name, file),
      H5Dclose);
}

Id open_dataset(hid_t parent, const std::string& name, const std::string& file) {
  return Id(check(H5Dopen2(parent, name.c_str(), H5P_DEFAULT), "open dataset " + name, file), H5Dclose);
}

Id create_table(hid_t parent, const std::string& name, hid_t type, const void* data, hsize_t count,
                const std::string& file) {
  const hsize_t dims[1] = {count}, chunks[1] = {count > 0 ? count : 1};
  Id space(check(H5Screate_simple(1, dims, nullptr), "H5Screate_simple", file), H5Sclose);
  Id dcpl(check(H5Pcreate(H5P_DATASET_CREATE), "H5Pcreate", file), H5Pclose);
  check(H5Pset_chunk(dcpl, 1, chunks), "set chunk for " + name, file);
  compress_then_checksum(dcpl, name, file);
  Id ds(check(H5Dcreate2(parent, name.c_str(), type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT), "create dataset " + name,
              file),
        H5Dclose);
  if (count) check(H5Dwrite(ds, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data), "write dataset " + name, file);
  return ds;
}

hsize_t dataset_length(hid_t dset, const std::string& file) {
  Id space(check(H5Dget_space(dset), "H5Dget_space", file), H5Sclose);
  if (H5Sget_simple_extent_ndims(space) != 1)
    throw Hdf5Error("dataset " + object_name(dset) + " in '" + file + "' is not one-dimensional (damaged file?)");
  hsize_t dims[1] = {0};
  check(H5Sget_simple_extent_dims(space, dims, nullptr), "H5Sget_simple_extent_dims", file);
  return dims[0];
}

hsize_t checked_length(hid_t dset, const std::string& file) {
  const hsize_t n = dataset_length(dset, file);
  Id type(check(H5Dget_type(dset), "H5Dget_type", file), H5Tclose);
  const std::size_t element = H5Tget_size(type);
  if (element == 0)
    throw Hdf5Error("dataset " + object_name(dset) + " in '" + file +
                    "' has an element size of 0: the file is damaged");
  Id dcpl(check(H5Dget_create_plist(dset), "H5Dget_create_plist", file), H5Pclose);
  if (H5Pget_layout(dcpl) == H5D_CHUNKED) {
    // Compressed chunks may hold far more than the file's size in elements: the bound is the
    // chunks actually stored, each holding at most one chunk's worth of elements.
    hsize_t chunk[1] = {0}, chunks = 0;
    if (H5Pget_chunk(dcpl, 1, chunk) != 1)
      throw Hdf5Error("dataset " + object_name(dset) + " in '" + file +
                      "' has a chunk shape that is not one-dimensional: damaged");
    Id space(check(H5Dget_space(dset), "H5Dget_space", file), H5Sclose);
    check(H5Dget_num_chunks(dset, space, &chunks), "H5Dget_num_chunks", file);
    if (chunk[0] == 0 || (chunks > 0 && n / chunk[0] > chunks) || (chunks == 0 && n > 0) || n > chunks * chunk[0])
      throw Hdf5Error("dataset " + object_name(dset) + " in '" + file + "' claims " + std::to_string(n) +
                      " elements, more than its " + std::to_string(chunks) + " stored chunks of " +
                      std::to_string(chunk[0]) + " hold: the file is damaged");
    return n;
  }
  const std::uint64_t size = file_size(file);
  // Uncompressed (older files): stored elements cannot take more room than the whole file.
  if (n > size / element)
    throw Hdf5Error("dataset " + object_name(dset) + " in '" + file + "' claims " + std::to_string(n) +
                    " elements of " + std::to_string(element) + " bytes, more than the file's " + std::to_string(size) +
                    " bytes hold: the file is damaged");
  return n;
}

void append(hid_t dset, hid_t mem_type, const void* data, hsize_t count, const std::string& file) {
  if (count == 0) return;
  const hsize_t old = dataset_length(dset, file);
  const hsize_t new_size[1] = {old + count};
  check(H5Dset_extent(dset, new_size), "extend dataset", file);
  Id fspace(check(H5Dget_space(dset), "H5Dget_space", file), H5Sclose);
  const hsize_t start[1] = {old}, cnt[1] = {count};
  check(H5Sselect_hyperslab(fspace, H5S_SELECT_SET, start, nullptr, cnt, nullptr), "select rows", file);
  Id mspace(check(H5Screate_simple(1, cnt, nullptr), "H5Screate_simple", file), H5Sclose);
  check(H5Dwrite(dset, mem_type, mspace, fspace, H5P_DEFAULT, data), "append rows", file);
}

void overwrite(hid_t dset, hid_t mem_type, const void* data, hsize_t count, const std::string& file) {
  const hsize_t new_size[1] = {count};
  check(H5Dset_extent(dset, new_size), "resize dataset", file);
  if (count == 0) return;
  Id fspace(check(H5Dget_space(dset), "H5Dget_space", file), H5Sclose);
  Id mspace(check(H5Screate_simple(1, new_size, nullptr), "H5Screate_simple", file), H5Sclose);
  check(H5Dwrite(dset, mem_type, mspace, fspace, H5P_DEFAULT, data), "write rows", file);
}

void read_all(hid_t dset, hid_t mem_type, void* data, const std::string& file) {
  if (dataset_length(dset, file) == 0) return;
  // Named before the read: H5Iget_name, like every HDF5 call, clears the error stack, and the order
  // in which a call's arguments are evaluated is the compiler's (clang would lose the cause).
  const std::string what = "read dataset " + object_name(dset);
  check(H5Dread(dset, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data), what, file);
}

}  // namespace hpsweep::h5
