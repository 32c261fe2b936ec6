#pragma once
// Internal to the run-log parsers: a bounds-checked reader of the protobuf wire format, enough
// to pick a few fields out of TensorBoard's Event and W&B's Record messages without generated code.
#include <cstdint>
#include <string_view>

namespace hpsweep::log_ingest_detail {

inline std::uint64_t read_le(const unsigned char* p, int bytes) {
  std::uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

struct Wire {
  const unsigned char* p;
  const unsigned char* end;

  bool done() const { return p >= end; }
  std::string_view text() const { return {reinterpret_cast<const char*>(p), static_cast<std::size_t>(end - p)}; }
  bool varint(std::uint64_t& v) {
    v = 0;
    for (int shift = 0; shift < 70; shift += 7) {
      if (p >= end) return false;
      const unsigned char b = *p++;
      if (shift == 63 && b > 1) return false;
      v |= static_cast<std::uint64_t>(b & 0x7F) << shift;
      if (!(b & 0x80)) return true;
    }
    return false;
  }
  bool fixed(int bytes, std::uint64_t& v) {
    if (end - p < bytes) return false;
    v = read_le(p, bytes);
    p += bytes;
    return true;
  }
  bool bytes(Wire& sub) {
    std::uint64_t n = 0;
    if (!varint(n) || n > static_cast<std::uint64_t>(end - p)) return false;
    sub = Wire{p, p + n};
    p += n;
    return true;
  }
  // One field's key; false at a malformed key.
  bool key(std::uint32_t& field, int& type) {
    std::uint64_t k = 0;
    if (!varint(k) || (k >> 3) == 0 || (k >> 3) > 0x1FFFFFFF) return false;
    field = static_cast<std::uint32_t>(k >> 3);
    type = static_cast<int>(k & 7);
    return true;
  }
  bool skip(int type) {
    std::uint64_t v = 0;
    Wire sub{};
    switch (type) {
      case 0:
        return varint(v);
      case 1:
        return fixed(8, v);
      case 2:
        return bytes(sub);
      case 5:
        return fixed(4, v);
      default:
        return false;  // groups (3, 4) are not in any message we read
    }
  }
};

}  // namespace hpsweep::log_ingest_detail
