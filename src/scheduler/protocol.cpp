#include "hpsweep/scheduler/protocol.hpp"

namespace hpsweep::protocol {

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
  return w.take();
}

TrialRecord decode_result(const std::string& payload) {
  ByteReader r(payload);
  return decode_trial_record(r);
}

}  // namespace hpsweep::protocol
