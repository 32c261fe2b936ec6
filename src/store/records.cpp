#include "hpsweep/store/records.hpp"

#include "hpsweep/util/error.hpp"

namespace hpsweep {

const char* to_string(ResultKind k) {
  switch (k) {
    case ResultKind::Transfer:
      return "transfer";
    case ResultKind::CoordCheck:
      return "coordcheck";
    case ResultKind::Fit:
      break;
  }
  return "fit";
}

std::optional<ResultKind> parse_result_kind(const std::string& s) {
  for (ResultKind k : {ResultKind::Fit, ResultKind::Transfer, ResultKind::CoordCheck})
    if (s == to_string(k)) return k;
  return std::nullopt;
}

ResultKind legacy_result_kind(const std::string& options) {
  if (options.rfind("coordcheck;", 0) == 0) return ResultKind::CoordCheck;
  if (options.find("transfer=1") != std::string::npos) return ResultKind::Transfer;
  return ResultKind::Fit;
}

void SweepLog::add_result(TrialRecord r) {
  in_flight.erase(r.trial.id);
  results.push_back(std::move(r));
}

void SweepLog::add_fit(FitRecord f) {
  std::erase_if(fits, [&](const FitRecord& old) { return old.name == f.name; });
  fits.push_back(std::move(f));
}

void encode(ByteWriter& w, const FitRecord& f) {
  w.put_string(f.name);
  w.put_string(f.options);
  w.put(f.created);
  w.put_string(f.json);
  w.put<std::uint64_t>(f.coefficients.size());
  for (const auto& c : f.coefficients) {
    w.put_string(c.law);
    w.put_string(c.name);
    for (double v : {c.estimate, c.mean, c.median, c.lo, c.hi}) w.put(v);
  }
  w.put<std::uint64_t>(f.points.size());
  for (const auto& p : f.points)
    for (double v : {p.params, p.tokens, p.lr, p.batch_tokens, p.wd, p.loss}) w.put(v);
  w.put(f.results);
  // Added with schema 3: decoders of older records fall back to legacy_result_kind.
  w.put(static_cast<std::uint8_t>(f.kind));
}

FitRecord decode_fit_record(ByteReader& r) {
  FitRecord f;
  f.name = r.get_string();
  f.options = r.get_string();
  f.created = r.get<double>();
  f.json = r.get_string();
  const auto nc = r.get<std::uint64_t>();
  for (std::uint64_t i = 0; i < nc; ++i) {
    FitCoefficient c;
    c.law = r.get_string();
    c.name = r.get_string();
    for (double* v : {&c.estimate, &c.mean, &c.median, &c.lo, &c.hi}) *v = r.get<double>();
    f.coefficients.push_back(std::move(c));
  }
  const auto np = r.get<std::uint64_t>();
  for (std::uint64_t i = 0; i < np; ++i) {
    FitPoint p;
    for (double* v : {&p.params, &p.tokens, &p.lr, &p.batch_tokens, &p.wd, &p.loss}) *v = r.get<double>();
    f.points.push_back(p);
  }
  f.results = r.get<std::uint64_t>();
  if (r.at_end()) {
    f.kind = legacy_result_kind(f.options);
  } else {
    const auto kind = r.get<std::uint8_t>();
    if (kind > static_cast<std::uint8_t>(ResultKind::CoordCheck)) throw Error("corrupt record: unknown result kind");
    f.kind = static_cast<ResultKind>(kind);
  }
  return f;
}

std::unordered_map<TrialId, const TrialRecord*> SweepLog::latest_by_id() const {
  std::unordered_map<TrialId, const TrialRecord*> out;
  out.reserve(results.size());
  for (const auto& r : results) out[r.trial.id] = &r;
  return out;
}

void encode(ByteWriter& w, const Trial& t) {
  w.put(t.id);
  w.put(t.point.params);
  w.put(t.point.tokens);
  w.put(t.point.lr);
  w.put(t.point.batch);
  w.put(t.point.seq_len);
  w.put(t.point.wd);
  w.put(t.point.repeat);
}

Trial decode_trial(ByteReader& r) {
  Trial t;
  t.id = r.get<TrialId>();
  t.point.params = r.get<double>();
  t.point.tokens = r.get<double>();
  t.point.lr = r.get<double>();
  t.point.batch = r.get<std::int64_t>();
  t.point.seq_len = r.get<std::int64_t>();
  t.point.wd = r.get<double>();
  t.point.repeat = r.get<std::int32_t>();
  return t;
}

void encode(ByteWriter& w, const TrialRecord& t) {
  encode(w, t.trial);
  w.put(t.outcome.state);
  w.put(t.outcome.final_loss);
  w.put(t.outcome.smooth_loss);
  w.put(t.outcome.steps);
  w.put_vector(t.outcome.curve.step);
  w.put_vector(t.outcome.curve.loss);
  w.put_string(t.outcome.error);
  w.put(t.start_time);
  w.put(t.wall_time);
  w.put(t.rank);
  w.put_string(t.host);
  w.put(t.attempt);
  w.put(t.launch);
  w.put_string(t.source);
  w.put<std::uint8_t>(t.finished ? 1 : 0);
  // Added after the first release: decoders accept records that end before them.
  w.put_string(t.trial.point.variant);
  w.put_string(t.outcome.details);
  w.put_string(t.devices);  // schema 4
}

TrialRecord decode_trial_record(ByteReader& r) {
  TrialRecord t;
  t.trial = decode_trial(r);
  t.outcome.state = r.get<TrialState>();
  if (static_cast<int>(t.outcome.state) > static_cast<int>(kLastTrialState))
    throw Error("corrupt record: unknown trial state");
  t.outcome.final_loss = r.get<double>();
  t.outcome.smooth_loss = r.get<double>();
  t.outcome.steps = r.get<std::int64_t>();
  t.outcome.curve.step = r.get_vector<std::int64_t>();
  t.outcome.curve.loss = r.get_vector<double>();
  t.outcome.error = r.get_string();
  t.start_time = r.get<double>();
  t.wall_time = r.get<double>();
  t.rank = r.get<std::int32_t>();
  t.host = r.get_string();
  t.attempt = r.get<std::int32_t>();
  t.launch = r.get<std::int32_t>();
  t.source = r.get_string();
  t.finished = r.get<std::uint8_t>() != 0;
  if (!r.at_end()) {
    t.trial.point.variant = r.get_string();
    t.outcome.details = r.get_string();
  }
  if (!r.at_end()) t.devices = r.get_string();  // schema 4
  return t;
}

void encode(ByteWriter& w, const LaunchRecord& l) {
  w.put(l.index);
  w.put(l.start_time);
  w.put(l.end_time);
  w.put(l.ranks);
  w.put_string(l.hosts);
  w.put_string(l.slurm_job_id);
  w.put(l.slurm_restart_count);
  w.put_string(l.command);
  w.put_string(l.ended);
  w.put(l.trials_recorded);
}

LaunchRecord decode_launch_record(ByteReader& r) {
  LaunchRecord l;
  l.index = r.get<std::int32_t>();
  l.start_time = r.get<double>();
  l.end_time = r.get<double>();
  l.ranks = r.get<std::int32_t>();
  l.hosts = r.get_string();
  l.slurm_job_id = r.get_string();
  l.slurm_restart_count = r.get<std::int32_t>();
  l.command = r.get_string();
  l.ended = r.get_string();
  l.trials_recorded = r.get<std::int64_t>();
  return l;
}

}  // namespace hpsweep
