// The tensorboard layout: events.out.tfevents.* files (TFRecord framing of Event protobufs) + the
// run's config. A small protobuf wire decoder reads the four fields we need (see
// examples/ingest/README.md for why not libprotobuf); both CRCs of every record are checked.
#include <cstring>
#include <string>
#include <vector>

#include "hpsweep/util/text.hpp"
#include "ingest/log_ingest_common.hpp"
#include "ingest/protobuf_wire.hpp"

namespace hpsweep {

using namespace log_ingest_detail;

namespace {

// ---- CRC32C (Castagnoli), masked as TFRecord does ------------------------------------------

struct Crc32cTable {
  std::uint32_t t[8][256];
  Crc32cTable() {
    for (std::uint32_t i = 0; i < 256; ++i) {
      std::uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
      t[0][i] = c;
    }
    for (std::uint32_t i = 0; i < 256; ++i)
      for (int s = 1; s < 8; ++s) t[s][i] = (t[s - 1][i] >> 8) ^ t[0][t[s - 1][i] & 0xFF];
  }
};

std::uint32_t crc32c_portable(const unsigned char* p, std::size_t n) {
  static const Crc32cTable table;
  const auto& t = table.t;
  std::uint32_t c = 0xFFFFFFFFu;
  while (n >= 8) {  // slicing-by-8
    std::uint32_t lo, hi;
    std::memcpy(&lo, p, 4);
    std::memcpy(&hi, p + 4, 4);
    lo ^= c;
    c = t[7][lo & 0xFF] ^ t[6][(lo >> 8) & 0xFF] ^ t[5][(lo >> 16) & 0xFF] ^ t[4][lo >> 24] ^ t[3][hi & 0xFF] ^
        t[2][(hi >> 8) & 0xFF] ^ t[1][(hi >> 16) & 0xFF] ^ t[0][hi >> 24];
    p += 8;
    n -= 8;
  }
  while (n--) c = (c >> 8) ^ t[0][(c ^ *p++) & 0xFF];
  return c ^ 0xFFFFFFFFu;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
__attribute__((target("sse4.2"))) std::uint32_t crc32c_sse42(const unsigned char* p, std::size_t n) {
  std::uint64_t c = 0xFFFFFFFFu;
  while (n >= 8) {
    std::uint64_t v;
    std::memcpy(&v, p, 8);
    c = __builtin_ia32_crc32di(c, v);
    p += 8;
    n -= 8;
  }
  auto c32 = static_cast<std::uint32_t>(c);
  while (n--) c32 = __builtin_ia32_crc32qi(c32, *p++);
  return c32 ^ 0xFFFFFFFFu;
}
#endif

std::uint32_t crc32c(const unsigned char* p, std::size_t n) {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  static const bool sse42 = __builtin_cpu_supports("sse4.2");
  if (sse42) return crc32c_sse42(p, n);
#endif
  return crc32c_portable(p, n);
}

std::uint32_t masked_crc32c(const unsigned char* p, std::size_t n) {
  const std::uint32_t c = crc32c(p, n);
  return ((c >> 15) | (c << 17)) + 0xA282EAD8u;
}

double float_of(std::uint64_t bits32) {
  float f;
  const auto b = static_cast<std::uint32_t>(bits32);
  std::memcpy(&f, &b, 4);
  return f;
}
double double_of(std::uint64_t bits) {
  double d;
  std::memcpy(&d, &bits, 8);
  return d;
}

// TensorProto: dtype = 1, tensor_content = 4, float_val = 5 (packed), double_val = 6 (packed).
// A scalar's value, from whichever field holds it.
bool decode_scalar_tensor(Wire w, double& out) {
  std::uint64_t dtype = 0;
  Wire content{nullptr, nullptr};
  bool have = false;
  while (!w.done()) {
    std::uint32_t f = 0;
    int type = 0;
    if (!w.key(f, type)) return false;
    std::uint64_t v = 0;
    if (f == 1 && type == 0) {
      if (!w.varint(dtype)) return false;
    } else if (f == 4 && type == 2) {
      if (!w.bytes(content)) return false;
    } else if ((f == 5 || f == 6) && type == 2) {
      Wire packed{};
      if (!w.bytes(packed)) return false;
      const int width = f == 5 ? 4 : 8;
      if (!packed.done()) {
        if (!packed.fixed(width, v)) return false;
        out = width == 4 ? float_of(v) : double_of(v);
        have = true;
      }
    } else if (f == 5 && type == 5) {
      if (!w.fixed(4, v)) return false;
      out = float_of(v);
      have = true;
    } else if (f == 6 && type == 1) {
      if (!w.fixed(8, v)) return false;
      out = double_of(v);
      have = true;
    } else if (!w.skip(type)) {
      return false;
    }
  }
  if (!have && content.p) {  // DT_FLOAT = 1, DT_DOUBLE = 2
    const auto n = content.end - content.p;
    if (dtype == 1 && n == 4) {
      out = float_of(read_le(content.p, 4));
      have = true;
    } else if (dtype == 2 && n == 8) {
      out = double_of(read_le(content.p, 8));
      have = true;
    }
  }
  return have;
}

struct TagValue {
  std::string_view tag;
  double value = 0;
  bool has_value = false;
};

// Summary.Value: tag = 1, simple_value = 2 (float), tensor = 8.
bool decode_value(Wire w, TagValue& tv) {
  while (!w.done()) {
    std::uint32_t f = 0;
    int type = 0;
    if (!w.key(f, type)) return false;
    Wire sub{};
    std::uint64_t v = 0;
    if (f == 1 && type == 2) {
      if (!w.bytes(sub)) return false;
      tv.tag = std::string_view(reinterpret_cast<const char*>(sub.p), static_cast<std::size_t>(sub.end - sub.p));
    } else if (f == 2 && type == 5) {
      if (!w.fixed(4, v)) return false;
      tv.value = float_of(v);
      tv.has_value = true;
    } else if (f == 8 && type == 2) {
      if (!w.bytes(sub)) return false;
      double d = 0;
      if (decode_scalar_tensor(sub, d)) {
        tv.value = d;
        tv.has_value = true;
      }
    } else if (!w.skip(type)) {
      return false;
    }
  }
  return true;
}

// Event: wall_time = 1 (double), step = 2 (int64), summary = 5 (Summary: value = 1 repeated).
// Keeps the values whose tag is one of `tags`.
bool decode_event(Wire w, const std::vector<std::string>& tags, std::int64_t& step,
                  std::vector<std::pair<std::size_t, double>>& found) {
  step = 0;
  found.clear();
  while (!w.done()) {
    std::uint32_t f = 0;
    int type = 0;
    if (!w.key(f, type)) return false;
    std::uint64_t v = 0;
    Wire sub{};
    if (f == 2 && type == 0) {
      if (!w.varint(v)) return false;
      step = static_cast<std::int64_t>(v);
    } else if (f == 5 && type == 2) {
      if (!w.bytes(sub)) return false;
      while (!sub.done()) {
        std::uint32_t sf = 0;
        int st = 0;
        if (!sub.key(sf, st)) return false;
        if (sf == 1 && st == 2) {
          Wire val{};
          if (!sub.bytes(val)) return false;
          TagValue tv;
          if (!decode_value(val, tv)) return false;
          if (!tv.has_value) continue;
          for (std::size_t i = 0; i < tags.size(); ++i)
            if (tv.tag == tags[i]) found.emplace_back(i, tv.value);
        } else if (!sub.skip(st)) {
          return false;
        }
      }
    } else if (!w.skip(type)) {
      return false;
    }
  }
  return true;
}

}  // namespace

ParsedRun parse_tensorboard_run(const std::vector<RunFile>& event_files, const RunFile& config,
                                const LogIngestOptions& options) {
  std::size_t bytes = config.text.size();
  for (const auto& f : event_files) bytes += f.text.size();
  const std::string first_where = event_files.empty() ? config.where : event_files.front().where;
  try {
    check_options(options, first_where);
    if (event_files.empty()) fail(config.where, 0, "no events.out.tfevents.* file");
    const std::vector<std::string> tags = loss_tags(options);
    std::map<std::string, std::vector<Point>> curves;
    std::int64_t step = 0;
    std::vector<std::pair<std::size_t, double>> found;
    for (const RunFile& file : event_files) {  // in name order: a resumed run's later file wins
      const auto* data = reinterpret_cast<const unsigned char*>(file.text.data());
      const std::size_t size = file.text.size();
      std::size_t offset = 0;
      while (offset < size) {
        const std::size_t left = size - offset;
        if (left < 12)
          fail(file.where, offset,
               "truncated record: " + std::to_string(left) + " bytes left, a record header needs 12");
        const std::uint64_t length = read_le(data + offset, 8);
        if (read_le(data + offset + 8, 4) != masked_crc32c(data + offset, 8))
          fail(file.where, offset, "damaged record: the CRC of its length does not match");
        if (length > left - 12 || left - 12 - length < 4)
          fail(file.where, offset,
               "truncated record: " + std::to_string(length) + " data bytes announced, " + std::to_string(left - 12) +
                   " bytes left in the file (4 more needed for the CRC)");
        const unsigned char* payload = data + offset + 12;
        if (read_le(payload + length, 4) != masked_crc32c(payload, length))
          fail(file.where, offset,
               "damaged record: the CRC of its " + std::to_string(length) + " data bytes does not match");
        if (!decode_event(Wire{payload, payload + length}, tags, step, found))
          fail(file.where, offset, "record is not a valid Event protobuf");
        for (const auto& [tag, value] : found) {
          if (step < 0 || step > kMaxWholeInt)
            fail(file.where, offset, "step " + std::to_string(step) + " is out of range");
          append_overriding(curves[tags[tag]], Point{step, value, offset});
        }
        offset += 16 + length;
      }
    }
    const std::vector<Point>& curve = pick_loss_curve(curves, options, first_where);
    if (config.where.empty())
      fail(directory_of(first_where), 0,
           "no config beside the event files (config.yaml, config.json, config.toml or hparams.yaml)");
    FlatConfig c;
    flatten_config(config, c);
    const Hyper h = hyper_from_config(c, config.where, options);
    return finish_run(curve, first_where, h, directory_of(first_where), bytes);
  } catch (const BadRun& e) {
    return failed(e.message, bytes);
  }
}

}  // namespace hpsweep
