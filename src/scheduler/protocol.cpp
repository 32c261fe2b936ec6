#include "hpsweep/scheduler/protocol.hpp"

#include "hpsweep/util/serialize.hpp"

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

std::string encode_trial(const Trial& t) {
  ByteWriter w;
  encode(w, t);
  w.put_string(t.point.variant);
  return w.take();
}

Trial decode_trial(const std::string& payload) {
  ByteReader r(payload);
  Trial t = hpsweep::decode_trial(r);
  t.point.variant = r.get_string();
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
