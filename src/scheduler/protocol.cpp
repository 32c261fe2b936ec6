#include "hpsweep/scheduler/protocol.hpp"

#include <cstdlib>

#include "hpsweep/util/serialize.hpp"
#include "hpsweep/util/text.hpp"

namespace hpsweep::protocol {

void send(Comm& comm, int dest, Tag tag, std::string_view payload) { comm.send(dest, static_cast<int>(tag), payload); }

bool has_tag(const Message& message, Tag tag) { return message.tag == static_cast<int>(tag); }

std::string encode_task_result(const TaskResult& result) {
  ByteWriter w;
  w.put(result.seconds);
  w.put_string(result.payload);
  return w.take();
}

TaskResult decode_task_result(const std::string& message_payload) {
  ByteReader r(message_payload);
  TaskResult out;
  out.seconds = r.get<double>();
  out.payload = r.get_string();
  return out;
}

std::string encode_ready(const std::string& host, const WorkerSlots& slots) {
  std::string devices;
  for (const auto& d : slots.devices) devices += (devices.empty() ? "" : ",") + d;
  return host + "\ndevices=" + devices + "\ncpus=" + std::to_string(slots.cpus) +
         "\ndetected=" + (slots.detected ? "1" : "0");
}

void decode_ready(const std::string& payload, std::string& host, WorkerSlots& slots) {
  slots = WorkerSlots{};
  const auto nl = payload.find('\n');
  host = payload.substr(0, nl);
  if (nl == std::string::npos) return;
  for (const auto& line : split(payload.substr(nl + 1), '\n')) {
    if (line.rfind("devices=", 0) == 0) {
      for (const auto& d : split(line.substr(8), ','))
        if (!trim(d).empty()) slots.devices.push_back(trim(d));
    } else if (line.rfind("cpus=", 0) == 0) {
      slots.cpus = std::atoi(line.c_str() + 5);
    } else if (line == "detected=1") {
      slots.detected = true;
    }
  }
}

std::string encode_placed_task(std::uint64_t key, const Placement& placement, std::string_view task_payload) {
  ByteWriter w;
  w.put(key);
  w.put<std::uint64_t>(placement.devices.size());
  for (const auto& d : placement.devices) w.put_string(d);
  w.put<std::uint64_t>(placement.hosts.size());
  for (const auto& h : placement.hosts) w.put_string(h);
  w.put<std::int32_t>(placement.gpus);
  w.put<std::int32_t>(placement.cpus);
  w.put_string(std::string(task_payload));
  return w.take();
}

void decode_placed_task(const std::string& payload, std::uint64_t& key, Placement& placement,
                        std::string& task_payload) {
  ByteReader r(payload);
  key = r.get<std::uint64_t>();
  placement = Placement{};
  const auto devices = r.get<std::uint64_t>();
  for (std::uint64_t i = 0; i < devices; ++i) placement.devices.push_back(r.get_string());
  const auto hosts = r.get<std::uint64_t>();
  for (std::uint64_t i = 0; i < hosts; ++i) placement.hosts.push_back(r.get_string());
  placement.gpus = r.get<std::int32_t>();
  placement.cpus = r.get<std::int32_t>();
  task_payload = r.get_string();
}

std::string encode_placed_result(std::uint64_t key, const TaskResult& result) {
  ByteWriter w;
  w.put(key);
  w.put_string(encode_task_result(result));
  return w.take();
}

TaskResult decode_placed_result(const std::string& payload, std::uint64_t& key) {
  ByteReader r(payload);
  key = r.get<std::uint64_t>();
  return decode_task_result(r.get_string());
}

std::string encode_job(const std::string& path, const std::string& text, const std::string& trial_root) {
  ByteWriter w;
  w.put_string(path);
  w.put_string(text);
  w.put_string(trial_root);
  return w.take();
}

void decode_job(const std::string& payload, std::string& path, std::string& text, std::string& trial_root) {
  ByteReader r(payload);
  path = r.get_string();
  text = r.get_string();
  trial_root = r.get_string();
}

std::string encode_trial(const Trial& t, std::int64_t trials_left) {
  ByteWriter w;
  encode(w, t);
  w.put_string(t.point.variant);
  w.put<std::int64_t>(trials_left);
  return w.take();
}

Trial decode_trial(const std::string& payload, std::int64_t* trials_left) {
  ByteReader r(payload);
  Trial t = hpsweep::decode_trial(r);
  t.point.variant = r.get_string();
  // Older masters sent no count.
  const std::int64_t left = r.at_end() ? 0 : r.get<std::int64_t>();
  if (trials_left) *trials_left = left;
  return t;
}

std::string encode_result(const TrialRecord& rec) {
  ByteWriter w;
  encode(w, rec);
  return encode_task_result(TaskResult{rec.wall_time, w.take()});
}

TrialRecord decode_result(const std::string& payload) {
  const TaskResult result = decode_task_result(payload);
  ByteReader r(result.payload);
  return decode_trial_record(r);
}

}  // namespace hpsweep::protocol
