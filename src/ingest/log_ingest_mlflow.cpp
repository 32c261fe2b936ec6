// The mlflow layout: an MLflow file store run, mlruns/<experiment>/<run>/ with meta.yaml,
// metrics/<key> ("timestamp value step" lines) and params/<key> (the value as the whole file).
#include <string>
#include <vector>

#include "hpsweep/util/text.hpp"
#include "ingest/log_ingest_common.hpp"

namespace hpsweep {

using namespace log_ingest_detail;

ParsedRun parse_mlflow_run(const RunFile& meta_yaml, const std::vector<RunFile>& metrics,
                           const std::vector<RunFile>& params, const LogIngestOptions& options) {
  std::size_t bytes = meta_yaml.text.size();
  for (const auto& f : metrics) bytes += f.text.size();
  for (const auto& f : params) bytes += f.text.size();
  const std::string& where = meta_yaml.where;
  try {
    check_options(options, where);
    FlatConfig meta;
    flatten_yaml(meta_yaml.text, where, meta);
    if (meta.count("lifecycle_stage") && meta["lifecycle_stage"] == "deleted")
      fail(where, 0, "the run is deleted (lifecycle_stage: deleted)");
    // RunStatus: 1 RUNNING, 2 SCHEDULED, 3 FINISHED, 4 FAILED, 5 KILLED.
    const std::string status = meta.count("status") ? trim(meta["status"]) : "";
    if (status == "4" || status == "5" || status == "FAILED" || status == "KILLED")
      fail(where, 0,
           "the run ended " + std::string(status == "4" || status == "FAILED" ? "FAILED" : "KILLED") +
               " (status: " + status + ")");

    const std::vector<std::string> tags = loss_tags(options);
    std::map<std::string, std::vector<Point>> curves;
    std::string curve_where = where;
    for (const auto& tag : tags) {
      const RunFile* file = nullptr;
      for (const auto& m : metrics)
        if (m.key == tag) file = &m;
      if (!file) continue;
      std::vector<Point>& curve = curves[tag];
      for (const Line& l : split_lines(file->text)) {
        if (blank(l.text)) continue;
        std::vector<std::string> parts;
        for (const auto& p : split(l.text, ' '))
          if (!p.empty()) parts.push_back(p);
        if (!l.terminated && parts.size() != 3) break;  // still being written
        if (parts.size() != 3 && parts.size() != 2)
          fail(file->where, l.number, "expected 'timestamp value step', got " + shown(l.text));
        Point p;
        p.line = l.number;
        if (!parse_double(parts[1], p.loss)) fail(file->where, l.number, "value is not a number: " + shown(parts[1]));
        if (parts.size() == 2)
          p.step = 0;  // MLflow before 1.0 wrote no step
        else if (!parse_whole(parts[2], p.step))
          fail(file->where, l.number, "step must be a whole number from 0 to 2^53, got " + shown(parts[2]));
        append_overriding(curve, p);  // several values at one step: the last one logged counts
      }
      if (!curve.empty()) {
        curve_where = file->where;
        break;
      }
    }
    const std::vector<Point>& curve = pick_loss_curve(curves, options, where);
    FlatConfig c;
    for (const auto& p : params) c[p.key] = trim(p.text);
    const Hyper h = hyper_from_config(c, directory_of(where) + "/params", options);
    return finish_run(curve, curve_where, h, directory_of(where), bytes);
  } catch (const BadRun& e) {
    return failed(e.message, bytes);
  }
}

}  // namespace hpsweep
