#include "hpsweep/reports/export.hpp"

#include "hpsweep/util/json.hpp"
#include "hpsweep/util/text.hpp"

namespace hpsweep {

namespace {
std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string q = "\"";
  for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}
std::string num(double v) { return format_double(v); }
}  // namespace

void export_trials(const SweepLog& log, ExportFormat format, bool with_curves, std::ostream& out) {
  if (format == ExportFormat::Csv)
    out << "id,params,tokens,lr,batch,batch_tokens,seq_len,wd,repeat,state,final_loss,smooth_loss,steps,"
           "start_time,wall_time,rank,host,attempt,launch,error,finished,variant,details\n";
  for (const auto& r : log.results) {
    const TrialPoint& p = r.trial.point;
    if (format == ExportFormat::Csv) {
      out << hex64(r.trial.id) << ',' << num(p.params) << ',' << num(p.tokens) << ',' << num(p.lr) << ',' << p.batch
          << ',' << num(p.batch_tokens()) << ',' << p.seq_len << ',' << num(p.wd) << ',' << p.repeat << ','
          << to_string(r.outcome.state) << ',' << num(r.outcome.final_loss) << ',' << num(r.outcome.smooth_loss) << ','
          << r.outcome.steps << ',' << num(r.start_time) << ',' << num(r.wall_time) << ',' << r.rank << ','
          << csv_field(r.host) << ',' << r.attempt << ',' << r.launch << ',' << csv_field(r.outcome.error) << ','
          << (r.finished ? 1 : 0) << ',' << csv_field(p.variant) << ',' << csv_field(r.outcome.details) << '\n';
      continue;
    }
    JsonWriter j;
    j.begin_object();
    j.key("id").value(hex64(r.trial.id)).key("params").value(p.params).key("tokens").value(p.tokens);
    j.key("lr").value(p.lr).key("batch").value(static_cast<long long>(p.batch));
    j.key("batch_tokens").value(p.batch_tokens()).key("seq_len").value(static_cast<long long>(p.seq_len));
    j.key("wd").value(p.wd).key("repeat").value(p.repeat).key("state").value(to_string(r.outcome.state));
    j.key("final_loss").value(r.outcome.final_loss).key("smooth_loss").value(r.outcome.smooth_loss);
    j.key("steps").value(static_cast<long long>(r.outcome.steps)).key("start_time").value(r.start_time);
    j.key("wall_time").value(r.wall_time).key("rank").value(r.rank).key("host").value(r.host);
    j.key("attempt").value(r.attempt).key("launch").value(r.launch).key("error").value(r.outcome.error);
    j.key("source").value(r.source).key("finished").value(r.finished).key("variant").value(p.variant);
    j.key("details");
    if (r.outcome.details.empty())
      j.null();
    else
      j.raw(r.outcome.details);
    if (with_curves) {
      j.key("curve_step").begin_array();
      for (auto s : r.outcome.curve.step) j.value(static_cast<long long>(s));
      j.end_array();
      j.key("curve_loss").begin_array();
      for (auto l : r.outcome.curve.loss) j.value(l);
      j.end_array();
    }
    j.end_object();
    out << j.str() << '\n';
  }
}

}  // namespace hpsweep
