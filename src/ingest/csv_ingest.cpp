#include "hpsweep/ingest/csv_ingest.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <fstream>
#include <istream>
#include <set>
#include <unordered_set>

#include "hpsweep/util/error.hpp"
#include "hpsweep/util/text.hpp"

namespace hpsweep {

namespace {
// Whole numbers (batch, seq_len, steps) stay exactly representable, so that their casts are defined.
constexpr double kMaxWhole = 9007199254740992.0;  // 2^53
const std::vector<std::string> kRequired = {"lr", "batch", "loss", "params", "tokens"};
const std::vector<std::string> kOptional = {"final_loss", "wd", "seq_len", "steps"};

bool to_number(const std::string& s, double& out) {
  const std::string t = trim(s);
  const auto r = std::from_chars(t.data(), t.data() + t.size(), out);
  return !t.empty() && r.ec == std::errc() && r.ptr == t.data() + t.size();
}
// One CSV record: a physical line, plus the following ones while a quoted field is open.
// `lineno` advances by the number of physical lines read.
bool read_csv_record(std::istream& in, std::string& record, int& lineno) {
  if (!std::getline(in, record)) return false;
  ++lineno;
  auto open_quote = [](const std::string& s) { return std::count(s.begin(), s.end(), '"') % 2 == 1; };
  bool open = open_quote(record);
  std::string more;
  while (open && std::getline(in, more)) {
    ++lineno;
    record += '\n';
    record += more;
    open = open != open_quote(more);
  }
  return true;
}

}  // namespace

std::map<std::string, std::string> parse_column_map(const std::string& text) {
  std::map<std::string, std::string> out;
  std::vector<std::string> valid = kRequired;
  valid.insert(valid.end(), kOptional.begin(), kOptional.end());
  for (const auto& item : split(text, ',')) {
    const auto eq = item.find('=');
    if (eq == std::string::npos) throw InputError("--map: expected FIELD=COLUMN, got '" + item + "'");
    const std::string field = trim(item.substr(0, eq));
    std::string column = trim(item.substr(eq + 1));
    if (column.size() >= 2 && column.front() == '"' && column.back() == '"')
      column = column.substr(1, column.size() - 2);
    if (std::find(valid.begin(), valid.end(), field) == valid.end()) {
      const std::string guess = closest_match(field, valid);
      throw InputError("--map: unknown field '" + field + "'" +
                       (guess.empty() ? "" : "; did you mean '" + guess + "'?"));
    }
    out[field] = column;
  }
  return out;
}

std::vector<std::string> split_csv_line(const std::string& line) {
  std::vector<std::string> out;
  std::string cur;
  bool quoted = false;
  for (std::size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
        cur += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        cur += c;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      out.push_back(cur);
      cur.clear();
    } else if (c != '\r') {
      cur += c;
    }
  }
  out.push_back(cur);
  return out;
}

TrialId ingested_trial_id(const TrialPoint& p, double loss) {
  return fnv1a64("ingest|" + canonical_coordinates(p) + ";loss=" + format_double(loss));
}

CsvIngestResult read_results_csv(const std::string& path, const CsvIngestOptions& o) {
  std::ifstream in(path);
  if (!in) throw InputError("cannot read '" + path + "'");
  return read_results_csv(in, path, o);
}

CsvIngestResult read_results_csv(std::istream& in, const std::string& path, const CsvIngestOptions& o) {
  for (const auto& f : kRequired)
    if (!o.columns.count(f)) throw InputError("--map: no column given for required field '" + f + "'");
  std::string line;
  int lineno = 0;  // the last physical line read
  if (!read_csv_record(in, line, lineno)) throw InputError(path + ": empty file (expected a header row)");
  if (line.rfind("\xEF\xBB\xBF", 0) == 0) line.erase(0, 3);  // a UTF-8 byte order mark (Excel writes one)
  const auto header = split_csv_line(line);
  std::map<std::string, std::size_t> index;
  for (const auto& [field, mapped] : o.columns) {
    const std::string& column = mapped;  // a lambda cannot capture a structured binding in clang 14 (the fuzz build)
    auto it = std::find_if(header.begin(), header.end(), [&](const std::string& h) { return trim(h) == column; });
    if (it == header.end()) {
      std::vector<std::string> names;
      for (const auto& h : header) names.push_back(trim(h));
      const std::string guess = closest_match(column, names);
      throw InputError(path + ":1: no column '" + column + "' (mapped to " + field + ")" +
                       (guess.empty() ? "" : "; did you mean '" + guess + "'?"));
    }
    index[field] = static_cast<std::size_t>(it - header.begin());
  }

  CsvIngestResult result;
  std::unordered_set<TrialId> seen;
  while (true) {
    const int record_line = lineno + 1;  // a quoted field may span lines: report where the record starts
    if (!read_csv_record(in, line, lineno)) break;
    if (trim(line).empty()) continue;
    ++result.rows;
    const auto cells = split_csv_line(line);
    const std::string where = path + ":" + std::to_string(record_line);
    auto bad = [&](const std::string& why) {
      if (o.strict) throw InputError(where + ": " + why + " (--strict: nothing imported)");
      result.skipped.push_back(where + ": " + why);
    };
    std::map<std::string, double> v;
    bool ok = true;
    for (const auto& [field, col] : index) {
      if (col >= cells.size()) {
        bad("missing field '" + o.columns.at(field) + "' (row has " + std::to_string(cells.size()) + " columns)");
        ok = false;
        break;
      }
      double x = 0;
      if (!to_number(cells[col], x)) {
        bad("'" + o.columns.at(field) + "' is not a number: '" + trim(cells[col]) + "'");
        ok = false;
        break;
      }
      const bool is_loss = field == "loss" || field == "final_loss";
      if (is_loss && std::isfinite(x) && x <= 0) {  // a cross-entropy; non-finite means diverged
        bad("'" + o.columns.at(field) + "' must be a positive number, got " + trim(cells[col]) +
            " (NaN or inf mark a diverged run)");
        ok = false;
        break;
      }
      if (!is_loss && (x < 0 || (x == 0 && field != "wd") || !std::isfinite(x))) {
        bad("'" + o.columns.at(field) + "' must be positive, got " + trim(cells[col]));
        ok = false;
        break;
      }
      const bool whole = field == "seq_len" || field == "steps" || (field == "batch" && !o.batch_in_tokens);
      if (whole && x != std::floor(x)) {
        bad("'" + o.columns.at(field) + "' must be a whole number" + (field == "batch" ? " of sequences" : "") +
            ", got " + trim(cells[col]));
        ok = false;
        break;
      }
      if ((whole || field == "batch") && x > kMaxWhole) {
        bad("'" + o.columns.at(field) + "' must be at most 2^53, got " + trim(cells[col]));
        ok = false;
        break;
      }
      v[field] = x;
    }
    if (!ok) continue;
    TrialRecord r;
    TrialPoint& p = r.trial.point;
    p.params = v["params"];
    p.tokens = v["tokens"];
    p.lr = v["lr"];
    p.seq_len = v.count("seq_len") ? static_cast<std::int64_t>(std::llround(v["seq_len"])) : o.seq_len;
    const double batch = o.batch_in_tokens ? v["batch"] / static_cast<double>(p.seq_len) : v["batch"];
    p.batch = static_cast<std::int64_t>(std::llround(batch));
    if (p.batch < 1) {
      bad("batch of " + format_short(v["batch"]) + (o.batch_in_tokens ? " tokens" : " sequences") +
          " is below one sequence");
      continue;
    }
    if (std::fabs(batch - static_cast<double>(p.batch)) > 1e-9 * batch) {
      bad("batch of " + format_double(v["batch"]) + " tokens is not a whole number of " + std::to_string(p.seq_len) +
          "-token sequences");
      continue;
    }
    // Without a steps column, steps = ceil(D / batch tokens), which must stay a whole number too.
    const double derived_steps = std::ceil(p.tokens / p.batch_tokens());
    if (!v.count("steps") && !(derived_steps <= kMaxWhole)) {
      bad("tokens / (batch * seq_len) = " + format_short(derived_steps) + " steps is out of range");
      continue;
    }
    p.wd = v.count("wd") ? v["wd"] : o.wd;
    const double loss = v["loss"];
    r.outcome.smooth_loss = loss;
    r.outcome.final_loss = v.count("final_loss") ? v["final_loss"] : loss;
    r.outcome.steps = v.count("steps") ? static_cast<std::int64_t>(v["steps"]) : p.steps();
    r.outcome.state = std::isfinite(loss) ? TrialState::Done : TrialState::Diverged;
    r.trial.id = ingested_trial_id(p, loss);
    r.source = "ingest:" + where;
    r.rank = -1;
    if (!seen.insert(r.trial.id).second) {
      ++result.duplicates;
      continue;
    }
    result.records.push_back(std::move(r));
  }
  // Divergence relative to the cell's best finite loss.
  std::map<std::pair<double, double>, double> best;
  for (const auto& r : result.records)
    if (std::isfinite(r.outcome.smooth_loss)) {
      auto key = std::make_pair(r.trial.point.params, r.trial.point.tokens);
      auto it = best.find(key);
      if (it == best.end() || r.outcome.smooth_loss < it->second) best[key] = r.outcome.smooth_loss;
    }
  for (auto& r : result.records) {
    const double loss = r.outcome.smooth_loss;
    if (!std::isfinite(loss)) continue;
    const double cell_best = best[{r.trial.point.params, r.trial.point.tokens}];
    if ((o.diverged_above > 0 && loss > o.diverged_above) ||
        (o.diverged_ratio > 0 && loss > o.diverged_ratio * cell_best)) {
      r.outcome.state = TrialState::Diverged;
      r.outcome.error =
          "loss " + format_short(loss, 4) + " above the divergence rule (cell best " + format_short(cell_best, 4) + ")";
    }
  }
  return result;
}

}  // namespace hpsweep
