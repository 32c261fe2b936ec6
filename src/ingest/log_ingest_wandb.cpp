// The wandb layout: a W&B offline run folder, wandb/offline-run-*/run-*.wandb (LevelDB log blocks
// of Record protobufs: history, config, run, exit), or the older wandb-history.jsonl; the run's
// config.yaml ({key: {desc, value}}) fills in what the records do not say.
#include <zlib.h>

#include <string>
#include <vector>

#include "hpsweep/util/text.hpp"
#include "ingest/log_ingest_common.hpp"
#include "ingest/protobuf_wire.hpp"

namespace hpsweep {

using namespace log_ingest_detail;

namespace {

constexpr std::size_t kBlock = 32768, kHeader = 7;
enum : unsigned { kFull = 1, kFirst = 2, kMiddle = 3, kLast = 4 };

std::string json_quoted(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (static_cast<unsigned char>(c) < 0x20) continue;
    out += c;
  }
  return out + "\"";
}

// HistoryItem / ConfigItem: key = 1, nested_key = 2 (repeated), value_json = 16.
bool decode_item(Wire w, std::string& key, std::string_view& value_json) {
  key.clear();
  value_json = {};
  std::string nested;
  while (!w.done()) {
    std::uint32_t f = 0;
    int type = 0;
    if (!w.key(f, type)) return false;
    Wire sub{};
    if ((f == 1 || f == 2 || f == 16) && type == 2) {
      if (!w.bytes(sub)) return false;
      if (f == 1) key = sub.text();
      if (f == 2) nested += (nested.empty() ? "" : ".") + std::string(sub.text());
      if (f == 16) value_json = sub.text();
    } else if (!w.skip(type)) {
      return false;
    }
  }
  if (key.empty()) key = nested;
  return true;
}

// ConfigRecord: update = 1 (repeated ConfigItem). Appends "key": value to the JSON object text.
bool decode_config(Wire w, std::map<std::string, std::string>& config) {
  while (!w.done()) {
    std::uint32_t f = 0;
    int type = 0;
    if (!w.key(f, type)) return false;
    Wire sub{};
    if (f == 1 && type == 2) {
      if (!w.bytes(sub)) return false;
      std::string key;
      std::string_view value;
      if (!decode_item(sub, key, value)) return false;
      if (!key.empty() && key != "_wandb" && !value.empty()) config[key] = std::string(value);
    } else if (!w.skip(type)) {
      return false;
    }
  }
  return true;
}

struct WandbRun {
  std::map<std::string, std::vector<Point>> curves;
  std::map<std::string, std::string> config;  // key -> value_json
  bool exited = false;
  std::int64_t exit_code = 0;
  std::int64_t next_step = 0;
};

void add_history_value(WandbRun& run, const std::vector<std::string>& tags, const std::string& key,
                       std::string_view value, std::int64_t step, std::size_t where_number, const std::string& where) {
  for (const auto& t : tags) {
    if (key != t) continue;
    Point p;
    p.step = step;
    p.line = where_number;
    std::string v = trim(value);
    if (v.size() >= 2 && v.front() == '"') v = v.substr(1, v.size() - 2);  // "NaN" as a JSON string
    if (v == "null") continue;
    if (!parse_double(v, p.loss)) fail(where, where_number, "\"" + key + "\" is not a number: " + shown(value));
    if (step < 0 || step > kMaxWholeInt) fail(where, where_number, "step " + std::to_string(step) + " is out of range");
    append_overriding(run.curves[t], p);
  }
}

// Record: history = 2 (HistoryRecord: item = 1, step = 2 {num = 1}), config = 5, run = 17
// (RunRecord: config = 4), exit = 18 (RunExitRecord: exit_code = 1).
bool decode_record(Wire w, WandbRun& run, const std::vector<std::string>& tags, std::size_t offset,
                   const std::string& where) {
  while (!w.done()) {
    std::uint32_t f = 0;
    int type = 0;
    if (!w.key(f, type)) return false;
    Wire sub{};
    if (f == 2 && type == 2) {
      if (!w.bytes(sub)) return false;
      std::vector<std::pair<std::string, std::string_view>> items;
      bool have_step = false;
      std::uint64_t step = 0;
      while (!sub.done()) {
        std::uint32_t hf = 0;
        int ht = 0;
        if (!sub.key(hf, ht)) return false;
        Wire item{};
        if (hf == 1 && ht == 2) {
          if (!sub.bytes(item)) return false;
          std::string key;
          std::string_view value;
          if (!decode_item(item, key, value)) return false;
          items.emplace_back(std::move(key), value);
        } else if (hf == 2 && ht == 2) {
          if (!sub.bytes(item)) return false;
          have_step = true;
          while (!item.done()) {
            std::uint32_t sf = 0;
            int st = 0;
            if (!item.key(sf, st)) return false;
            if (sf == 1 && st == 0) {
              if (!item.varint(step)) return false;
            } else if (!item.skip(st)) {
              return false;
            }
          }
        } else if (!sub.skip(ht)) {
          return false;
        }
      }
      std::int64_t s = have_step ? static_cast<std::int64_t>(step) : run.next_step;
      if (!have_step)
        for (const auto& [k, v] : items)
          if (k == "_step" && !parse_whole(v, s)) fail(where, offset, "\"_step\" is not a whole number: " + shown(v));
      for (const auto& [k, v] : items) add_history_value(run, tags, k, v, s, offset, where);
      run.next_step = s + 1;
    } else if (f == 5 && type == 2) {
      if (!w.bytes(sub) || !decode_config(sub, run.config)) return false;
    } else if (f == 17 && type == 2) {
      if (!w.bytes(sub)) return false;
      while (!sub.done()) {
        std::uint32_t rf = 0;
        int rt = 0;
        if (!sub.key(rf, rt)) return false;
        Wire cfg{};
        if (rf == 4 && rt == 2) {
          if (!sub.bytes(cfg) || !decode_config(cfg, run.config)) return false;
        } else if (!sub.skip(rt)) {
          return false;
        }
      }
    } else if (f == 18 && type == 2) {
      if (!w.bytes(sub)) return false;
      run.exited = true;
      while (!sub.done()) {
        std::uint32_t ef = 0;
        int et = 0;
        if (!sub.key(ef, et)) return false;
        std::uint64_t v = 0;
        if (ef == 1 && et == 0) {
          if (!sub.varint(v)) return false;
          run.exit_code = static_cast<std::int32_t>(static_cast<std::uint32_t>(v));
        } else if (!sub.skip(et)) {
          return false;
        }
      }
    } else if (!w.skip(type)) {
      return false;
    }
  }
  return true;
}

void read_wandb_file(const RunFile& file, WandbRun& run, const std::vector<std::string>& tags) {
  const auto* data = reinterpret_cast<const unsigned char*>(file.text.data());
  const std::size_t size = file.text.size();
  if (size < kHeader || file.text.compare(0, 4, ":W&B") != 0 || read_le(data + 4, 2) != 0xBEE1)
    fail(file.where, 0, "not a W&B run file (no ':W&B' header)");
  if (data[6] > 1) fail(file.where, 6, "W&B run file version " + std::to_string(data[6]) + " is not supported");
  std::size_t pos = kHeader;
  std::string record;
  std::size_t record_start = 0;
  bool in_record = false;
  while (pos < size) {
    const std::size_t space = kBlock - pos % kBlock;
    if (space < kHeader) {  // the end of a block: zero padding
      for (std::size_t i = pos; i < pos + space && i < size; ++i)
        if (data[i] != 0) fail(file.where, pos, "damaged block padding");
      pos += space;
      continue;
    }
    if (size - pos < kHeader)
      fail(file.where, pos, "truncated record: " + std::to_string(size - pos) + " bytes left, a header needs 7");
    const auto checksum = static_cast<std::uint32_t>(read_le(data + pos, 4));
    const std::size_t length = read_le(data + pos + 4, 2);
    const unsigned type = data[pos + 6];
    if (type < kFull || type > kLast) fail(file.where, pos, "damaged record: type " + std::to_string(type));
    if (kHeader + length > space) fail(file.where, pos, "damaged record: it crosses its block's end");
    if (length > size - pos - kHeader)
      fail(file.where, pos,
           "truncated record: " + std::to_string(length) + " data bytes announced, " +
               std::to_string(size - pos - kHeader) + " left in the file");
    const unsigned char type_byte = static_cast<unsigned char>(type);
    uLong crc = crc32(crc32(0L, &type_byte, 1), data + pos + kHeader, static_cast<uInt>(length));
    if (static_cast<std::uint32_t>(crc) != checksum)
      fail(file.where, pos, "damaged record: the CRC of its " + std::to_string(length) + " data bytes does not match");
    const std::string_view payload(file.text.data() + pos + kHeader, length);
    if (type == kFull || type == kFirst) {
      if (in_record) fail(file.where, pos, "damaged log: a record starts inside another");
      record_start = pos;
      record.assign(payload);
      in_record = type == kFirst;
    } else {
      if (!in_record) fail(file.where, pos, "damaged log: a record continues without its start");
      record.append(payload);
      in_record = type == kMiddle;
    }
    pos += kHeader + length;
    if (!in_record) {
      const auto* r = reinterpret_cast<const unsigned char*>(record.data());
      if (!decode_record(Wire{r, r + record.size()}, run, tags, record_start, file.where))
        fail(file.where, record_start, "record is not a valid W&B Record protobuf");
    }
  }
  if (in_record) fail(file.where, record_start, "truncated record: its last fragment is missing");
}

// wandb-history.jsonl: one JSON object per history row, "_step" the step.
void read_history_jsonl(const RunFile& file, WandbRun& run, const std::vector<std::string>& tags) {
  JsonScratch scratch;
  std::vector<std::string> kept = tags;  // the members a row is read for
  kept.push_back("_step");
  for (const Line& l : split_lines(file.text)) {
    if (blank(l.text)) continue;
    JsonNode tree;
    std::string why, text;
    std::size_t json_line = 0;
    if (!parse_json(l.text, tree, why, json_line, scratch, &kept)) {
      if (!l.terminated) break;  // still being written
      fail(file.where, l.number, why);
    }
    std::int64_t step = run.next_step;
    if (json_scalar(tree, "_step", text) && !parse_whole(text, step))
      fail(file.where, l.number, "\"_step\" must be a whole number, got " + shown(text));
    for (const auto& t : tags)
      if (json_scalar(tree, t, text)) add_history_value(run, tags, t, text, step, l.number, file.where);
    run.next_step = step + 1;
  }
}

}  // namespace

ParsedRun parse_wandb_run(const RunFile& log, const RunFile& config, const LogIngestOptions& options) {
  const std::size_t bytes = log.text.size() + config.text.size();
  try {
    check_options(options, log.where);
    const std::vector<std::string> tags = loss_tags(options);
    WandbRun run;
    const bool binary = log.where.size() >= 6 && log.where.compare(log.where.size() - 6, 6, ".wandb") == 0;
    if (binary)
      read_wandb_file(log, run, tags);
    else
      read_history_jsonl(log, run, tags);
    if (run.exited && run.exit_code != 0)
      fail(log.where, 0, "the run exited with code " + std::to_string(run.exit_code));
    const std::vector<Point>& curve = pick_loss_curve(run.curves, options, log.where);
    FlatConfig c;
    if (!config.where.empty()) flatten_config(config, c);
    if (!run.config.empty()) {
      std::string json = "{";
      for (const auto& [k, v] : run.config) json += (json.size() > 1 ? "," : "") + json_quoted(k) + ":" + v;
      flatten_json(json + "}", log.where, c);
    }
    const Hyper h = hyper_from_config(c, config.where.empty() ? log.where : config.where, options);
    return finish_run(curve, log.where, h, directory_of(log.where), bytes);
  } catch (const BadRun& e) {
    return failed(e.message, bytes);
  }
}

}  // namespace hpsweep
