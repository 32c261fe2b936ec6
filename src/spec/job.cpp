#include "hpsweep/spec/job.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <set>
#include <tuple>

#include "hpsweep/spec/backend_options.hpp"
#include "hpsweep/spec/lookup.hpp"
#include "hpsweep/util/error.hpp"
#include "hpsweep/util/text.hpp"

namespace hpsweep {

double ModelShape::params() const {
  const double h = static_cast<double>(hidden), f = static_cast<double>(ffn);
  return static_cast<double>(layers) * (4.0 * h * h + 3.0 * h * f);
}

std::string ModelShape::label() const {
  return std::to_string(hidden) + "x" + std::to_string(layers) + "x" + std::to_string(ffn);
}

std::vector<double> JobSpec::token_budgets_for(double n) const {
  if (!tokens.empty()) return tokens;
  std::vector<double> out;
  for (double r : tokens_per_param) out.push_back(std::round(r * n));
  return out;
}

const Variant* JobSpec::find_variant(const std::string& variant) const {
  for (const auto& v : variants)
    if (v.name == variant) return &v;
  return nullptr;
}

const std::map<std::string, std::string>& JobSpec::options_for(const std::string& variant) const {
  if (variant.empty()) return backend_options;
  const Variant* v = find_variant(variant);
  if (!v) throw InputError("trial variant '" + variant + "' is not in the job's [variants]");
  return v->backend_options;
}

double parse_number(const std::string& text, const std::string& where) {
  const std::string t = trim(text);
  double v = 0;
  const auto res = std::from_chars(t.data(), t.data() + t.size(), v);
  if (t.empty() || res.ec != std::errc() || res.ptr != t.data() + t.size() || !std::isfinite(v))
    throw InputError(where + ": malformed number '" + t + "'");
  return v;
}

int ResourceRule::value_for(double params, double tokens) const {
  for (const auto& c : clauses) {
    if (c.variable.empty()) return c.value;
    const double x = c.variable == "params" ? params : tokens;
    const bool holds = c.op == "<"    ? x < c.bound
                       : c.op == "<=" ? x <= c.bound
                       : c.op == ">"  ? x > c.bound
                                      : x >= c.bound;
    if (holds) return c.value;
  }
  throw InputError(where + ": no clause matches a trial with params = " + format_short(params) +
                   ", tokens = " + format_short(tokens) + "; end the rule with 'VALUE otherwise'");
}

ResourceRule parse_resource_rule(const std::string& text, const std::string& where) {
  ResourceRule rule;
  rule.where = where;
  const std::string syntax = " (expected VALUE, or clauses like '1 if params < 3e8, 8 otherwise')";
  const auto clauses = split(text, ',');
  for (std::size_t i = 0; i < clauses.size(); ++i) {
    std::vector<std::string> words;
    for (const auto& w : split(trim(clauses[i]), ' '))
      if (!trim(w).empty()) words.push_back(trim(w));
    if (words.empty()) throw InputError(where + ": empty clause in '" + trim(text) + "'" + syntax);
    const double v = parse_number(words[0], where);
    if (v < 0 || v != std::floor(v) || v > 1e6)
      throw InputError(where + ": '" + words[0] + "' must be a whole number from 0 to 1000000");
    ResourceRule::Clause c;
    c.value = static_cast<int>(v);
    if (words.size() == 2 && to_lower(words[1]) == "otherwise") {
    } else if (words.size() == 5 && to_lower(words[1]) == "if") {
      c.variable = to_lower(words[2]);
      c.op = words[3];
      if (c.variable != "params" && c.variable != "tokens")
        throw InputError(where + ": unknown variable '" + words[2] + "' in '" + trim(clauses[i]) +
                         "' (conditions compare params or tokens)");
      if (c.op != "<" && c.op != "<=" && c.op != ">" && c.op != ">=")
        throw InputError(where + ": unknown comparison '" + words[3] + "' in '" + trim(clauses[i]) +
                         "' (use <, <=, > or >=)");
      c.bound = parse_number(words[4], where);
    } else if (words.size() != 1) {
      throw InputError(where + ": malformed clause '" + trim(clauses[i]) + "'" + syntax);
    }
    if (c.variable.empty() && i + 1 != clauses.size())
      throw InputError(where + ": the clause '" + trim(clauses[i]) +
                       "' always applies, so the clauses after it would never be used; put it last");
    rule.clauses.push_back(c);
  }
  return rule;
}

TrialResources JobSpec::resources_for(double n, double d) const {
  TrialResources r;
  if (resources.gpus.given()) r.gpus = resources.gpus.value_for(n, d);
  if (resources.cpus.given()) r.cpus = resources.cpus.value_for(n, d);
  if (resources.nodes.given()) r.nodes = resources.nodes.value_for(n, d);
  return r;
}

namespace {

std::vector<double> parse_range(const std::string& text, const std::string& where) {
  // kind:start:stop:count, endpoints included.
  const auto parts = split(text, ':');
  if (parts.size() != 4)
    throw InputError(where + ": malformed range '" + text +
                     "' (expected log:START:STOP:COUNT or lin:START:STOP:COUNT)");
  const std::string kind = to_lower(parts[0]);
  const double a = parse_number(parts[1], where), b = parse_number(parts[2], where);
  const double count_d = parse_number(parts[3], where);
  constexpr int kMaxRangeCount = 1000000;
  if (count_d < 1 || count_d != std::floor(count_d) || count_d > kMaxRangeCount)
    throw InputError(where + ": range count must be a whole number from 1 to at most " +
                     std::to_string(kMaxRangeCount) + ", got '" + trim(parts[3]) + "'");
  const int count = static_cast<int>(count_d);
  if (count == 1 && a != b)
    throw InputError(where + ": range '" + text + "' has one value, so its stop value " + trim(parts[2]) +
                     " would be dropped; give COUNT >= 2, or the single value as a list");
  std::vector<double> out;
  if (kind == "log") {
    if (a <= 0 || b <= 0) throw InputError(where + ": log range needs positive endpoints, got '" + text + "'");
    for (int i = 0; i < count; ++i) {
      const double t = count == 1 ? 0.0 : static_cast<double>(i) / (count - 1);
      out.push_back(std::exp(std::log(a) + t * (std::log(b) - std::log(a))));
    }
    out.front() = a;
    if (count > 1) out.back() = b;
  } else if (kind == "lin") {
    for (int i = 0; i < count; ++i) {
      const double t = count == 1 ? 0.0 : static_cast<double>(i) / (count - 1);
      out.push_back(a + t * (b - a));
    }
  } else {
    throw InputError(where + ": unknown range kind '" + parts[0] + "' (use log:... or lin:...)");
  }
  return out;
}

}  // namespace

std::vector<double> parse_number_list(const std::string& text, const std::string& where) {
  const std::string t = trim(text);
  if (t.empty()) throw InputError(where + ": empty list");
  if (t.find(':') != std::string::npos) {
    if (t.find(',') != std::string::npos)
      throw InputError(where + ": mix of a range and a list in '" + t + "' (give one or the other)");
    return parse_range(t, where);
  }
  std::vector<double> out;
  for (const auto& item : split(t, ',')) out.push_back(parse_number(item, where));
  return out;
}

namespace {

struct KeyInfo {
  const char* name;  // section.key
  bool required;
};

// The core sections. Backend sections come from spec/backend_options.hpp.
const std::vector<KeyInfo>& core_keys() {
  static const std::vector<KeyInfo> keys = {
      {"sweep.name", true},
      {"sweep.seed", false},
      {"sweep.repeats", false},
      {"scales.params", false},
      {"scales.shapes", false},
      {"scales.tokens", false},
      {"scales.tokens_per_param", false},
      {"scales.seq_len", false},
      {"grid.lr", true},
      {"grid.batch", true},
      {"grid.wd", false},
      {"backend.kind", true},
      {"target.params", false},
      {"target.tokens", false},
      {"adaptive.budget", false},
      {"adaptive.budget_flops", false},
      {"adaptive.target_rel_width", false},
      {"adaptive.coarse_lr", false},
      {"adaptive.coarse_batch", false},
      {"adaptive.round_trials", false},
      {"adaptive.extend_edges", false},
      {"adaptive.seed", false},
      {"resources.gpus", false},
      {"resources.cpus", false},
      {"resources.nodes", false},
  };
  return keys;
}

class JobParser {
 public:
  explicit JobParser(IniDocument doc) : doc_(std::move(doc)) {}

  JobSpec parse() {
    check_keys();
    JobSpec job;
    job.path = doc_.path;
    job.text = doc_.text;

    job.name = text_value("sweep.name");
    if (job.name.empty()) fail(*find("sweep.name"), "must not be empty");
    if (auto* e = find("sweep.seed")) job.seed = static_cast<std::uint64_t>(whole_number(*e, 0, 1e18));
    if (auto* e = find("sweep.repeats")) job.repeats = static_cast<int>(whole_number(*e, 1, 1e6));

    parse_backend(job);
    if (table_points_only()) {
      parse_table_points(job);
    } else {
      parse_scales(job);
      parse_grid(job);
    }
    parse_variants(job);
    parse_adaptive(job);
    if (auto* e = find("target.params")) job.target_params = positive_number(*e);
    if (auto* e = find("target.tokens")) job.target_tokens = positive_number(*e);
    parse_resources(job);

    build_canonical(job);
    return job;
  }

 private:
  IniDocument doc_;

  const IniEntry* find(const std::string& name) const {
    for (const auto& e : doc_.entries)
      if (e.name() == name) return &e;
    return nullptr;
  }
  std::string text_value(const std::string& name) const {
    const auto* e = find(name);
    return e ? e->value : std::string();
  }
  [[noreturn]] void fail(const IniEntry& e, const std::string& msg) const {
    throw InputError(doc_.where(e) + ": [" + e.section + "] " + e.key + ": " + msg);
  }
  std::string where(const IniEntry& e) const { return doc_.where(e) + ": [" + e.section + "] " + e.key; }

  double positive_number(const IniEntry& e) const {
    const double v = parse_number(e.value, where(e));
    if (v <= 0) fail(e, "must be positive, got " + e.value);
    return v;
  }
  double whole_number(const IniEntry& e, double lo, double hi) const {
    const double v = parse_number(e.value, where(e));
    if (v != std::floor(v) || v < lo || v > hi)
      fail(e, "must be a whole number in [" + format_short(lo) + ", " + format_short(hi) + "], got " + e.value);
    return v;
  }
  std::vector<double> list(const IniEntry& e, bool allow_zero) const {
    auto values = parse_number_list(e.value, where(e));
    for (double v : values)
      if (v < 0 || (!allow_zero && v == 0))
        fail(e,
             std::string("values must be ") + (allow_zero ? "non-negative" : "positive") + ", got " + format_short(v));
    std::vector<double> sorted = values;
    std::sort(sorted.begin(), sorted.end());
    for (std::size_t i = 1; i < sorted.size(); ++i)
      if (sorted[i] == sorted[i - 1]) fail(e, "duplicate value " + format_short(sorted[i]));
    return values;
  }

  void check_keys() const {
    std::vector<std::string> valid;
    for (const auto& k : core_keys()) valid.push_back(k.name);
    const std::string kind = text_value("backend.kind");
    for (const auto& b : backend_kinds())
      for (const auto& o : b.options) valid.push_back(b.name + "." + o.key);
    std::set<std::string> backend_sections;
    for (const auto& b : backend_kinds()) backend_sections.insert(b.name);

    for (const auto& e : doc_.entries) {
      if (e.section == "variants") continue;  // names are the user's; checked in parse_variants
      if (std::find(valid.begin(), valid.end(), e.name()) != valid.end()) {
        if (backend_sections.count(e.section) && e.section != kind)
          fail(e, "section [" + e.section + "] belongs to backend '" + e.section + "' but [backend] kind is '" + kind +
                      "'");
        continue;
      }
      std::string msg = doc_.where(e) + ": unknown key '" + e.key + "'" +
                        (e.section.empty() ? " outside any section" : " in section [" + e.section + "]");
      const std::string guess = closest_match(e.name(), valid);
      if (!guess.empty()) {
        const auto dot = guess.rfind('.');
        msg += "; did you mean '" + guess.substr(dot + 1) + "' in [" + guess.substr(0, dot) + "]?";
      }
      throw InputError(msg);
    }
    for (const auto& k : core_keys())
      if (k.required && !find(k.name) && !(table_points_only() && std::string(k.name).rfind("grid.", 0) == 0)) {
        const std::string n = k.name;
        const auto dot = n.find('.');
        throw InputError(doc_.path + ": missing required key '" + n.substr(dot + 1) + "' in section [" +
                         n.substr(0, dot) + "]");
      }
  }

  // kind = lookup with neither [scales] nor [grid]: the grid is exactly the table's points.
  bool table_points_only() const {
    if (to_lower(text_value("backend.kind")) != "lookup") return false;
    for (const auto& e : doc_.entries)
      if (e.section == "scales" || e.section == "grid") return false;
    return true;
  }

  void parse_table_points(JobSpec& job) const {
    try {
      const LookupSettings settings = LookupSettings::from_options(job.backend_options);
      job.seq_len = settings.seq_len;
      std::set<std::tuple<double, double, double, std::int64_t, double>> seen;
      for (const auto& row : *lookup_table(settings)) {
        if (!seen.emplace(row.params, row.tokens, row.lr, row.batch, row.wd).second) continue;
        job.points.push_back(GridPoint{row.params, row.tokens, row.lr, row.wd, row.batch});
      }
    } catch (const InputError& e) {
      // The table's own errors name the table; say which job (and line) asked for it too.
      const IniEntry* file = find("lookup.file");
      throw InputError((file ? doc_.where(*file) : job.path) + ": " + e.what());
    }
  }

  void parse_adaptive(JobSpec& job) const {
    AdaptiveSpec& a = job.adaptive;
    for (const auto& e : doc_.entries) a.enabled = a.enabled || e.section == "adaptive";
    if (!a.enabled) return;
    const auto* fraction = find("adaptive.budget");
    const auto* flops = find("adaptive.budget_flops");
    if (fraction && flops)
      fail(*flops, "give either budget (a fraction of the grid's compute) or budget_flops, not both");
    if (!fraction && !flops)
      throw InputError(doc_.path +
                       ": [adaptive] needs 'budget' (a fraction of the full grid's compute) or 'budget_flops'");
    if (fraction) {
      a.budget_fraction = positive_number(*fraction);
      if (a.budget_fraction > 1)
        fail(*fraction, "is a fraction of the grid's compute, at most 1, got " + fraction->value);
    }
    if (flops) a.budget_flops = positive_number(*flops);
    if (auto* e = find("adaptive.target_rel_width")) a.target_rel_width = positive_number(*e);
    if (auto* e = find("adaptive.coarse_lr")) a.coarse_lr = static_cast<int>(whole_number(*e, 2, 50));
    if (auto* e = find("adaptive.coarse_batch")) a.coarse_batch = static_cast<int>(whole_number(*e, 1, 50));
    if (auto* e = find("adaptive.round_trials")) a.round_trials = static_cast<int>(whole_number(*e, 0, 1e6));
    if (auto* e = find("adaptive.extend_edges")) a.extend_edges = whole_number(*e, 0, 1) == 1;
    if (auto* e = find("adaptive.seed")) a.seed = static_cast<std::uint64_t>(whole_number(*e, 0, 1e18));
  }

  void parse_scales(JobSpec& job) const {
    const auto* params = find("scales.params");
    const auto* shapes = find("scales.shapes");
    if (params && shapes) fail(*shapes, "give either params or shapes, not both");
    if (!params && !shapes)
      throw InputError(
          doc_.path + ": missing model sizes: give 'params' (N) or 'shapes' (HIDDENxLAYERS[xFFN]) in section [scales]");
    if (params) job.params = list(*params, false);
    if (shapes) {
      for (const auto& item : split(shapes->value, ',')) {
        const auto dims = split(item, 'x');
        if (dims.size() < 2 || dims.size() > 3)
          fail(*shapes, "malformed shape '" + item + "' (expected HIDDENxLAYERS or HIDDENxLAYERSxFFN)");
        ModelShape s;
        std::vector<std::int64_t> v;
        for (const auto& d : dims) {
          const double x = parse_number(d, where(*shapes));
          if (x <= 0 || x != std::floor(x))
            fail(*shapes, "shape dimensions must be positive whole numbers in '" + item + "'");
          if (x > 9007199254740992.0)  // 2^53: beyond it the cast to int64 is undefined (found by fuzzing)
            fail(*shapes, "shape dimension " + trim(d) + " in '" + item + "' is above 2^53");
          v.push_back(static_cast<std::int64_t>(x));
        }
        s.hidden = v[0];
        s.layers = v[1];
        s.ffn = v.size() == 3 ? v[2] : static_cast<std::int64_t>(std::llround(8.0 * static_cast<double>(v[0]) / 3.0));
        job.shapes.push_back(s);
        job.params.push_back(s.params());
      }
      std::vector<double> sorted = job.params;
      std::sort(sorted.begin(), sorted.end());
      if (std::adjacent_find(sorted.begin(), sorted.end()) != sorted.end())
        fail(*shapes, "two shapes give the same parameter count");
    }
    const auto* tokens = find("scales.tokens");
    const auto* ratio = find("scales.tokens_per_param");
    if (tokens && ratio) fail(*ratio, "give either tokens or tokens_per_param, not both");
    if (!tokens && !ratio)
      throw InputError(doc_.path +
                       ": missing token budgets: give 'tokens' (D) or 'tokens_per_param' in section [scales]");
    if (tokens) job.tokens = list(*tokens, false);
    if (ratio) job.tokens_per_param = list(*ratio, false);
    if (auto* e = find("scales.seq_len")) job.seq_len = static_cast<std::int64_t>(whole_number(*e, 1, 1e9));
  }

  void parse_grid(JobSpec& job) const {
    job.lr = list(*find("grid.lr"), false);
    const auto* batch = find("grid.batch");
    std::vector<double> b = list(*batch, false);
    for (double v : b) {
      const double r = std::round(v);
      if (r < 1) fail(*batch, "batch sizes are whole numbers of sequences >= 1, got " + format_short(v));
      if (r > 9007199254740992.0)  // 2^53: beyond it the cast to int64 is undefined (found by fuzzing)
        fail(*batch, "batch sizes must be at most 2^53 sequences, got " + format_short(v));
      job.batch.push_back(static_cast<std::int64_t>(r));
    }
    std::vector<std::int64_t> sorted = job.batch;
    std::sort(sorted.begin(), sorted.end());
    if (std::adjacent_find(sorted.begin(), sorted.end()) != sorted.end())
      fail(*batch, "two batch sizes round to the same whole number of sequences; use fewer points");
    if (auto* e = find("grid.wd"))
      job.wd = list(*e, true);
    else
      job.wd = {0.1};
  }

  void parse_backend(JobSpec& job) const {
    const auto* e = find("backend.kind");
    job.backend_kind = to_lower(e->value);
    const BackendKind* kind = find_backend_kind(job.backend_kind);
    if (!kind) {
      std::vector<std::string> names;
      for (const auto& b : backend_kinds()) names.push_back(b.name);
      const std::string guess = closest_match(job.backend_kind, names);
      fail(*e, "unknown backend '" + e->value + "'" + (guess.empty() ? "" : "; did you mean '" + guess + "'?"));
    }
    if (!kind->available) fail(*e, "backend '" + kind->name + "' is not available in this version of hpsweep");
    for (const auto& opt : kind->options) {
      const auto* given = find(kind->name + "." + opt.key);
      std::string value = given ? option_value(opt, given->value, *given) : opt.default_value;
      if (opt.text && value.empty())
        throw InputError(doc_.path + ": missing required key '" + opt.key + "' in section [" + kind->name + "]");
      job.backend_options[opt.key] = value;
    }
  }

  // [resources]: each rule must give every trial of the grid a value, and a trial on several
  // nodes must split its GPUs evenly over them.
  void parse_resources(JobSpec& job) const {
    for (auto [key, rule] : {std::pair{"gpus", &job.resources.gpus}, std::pair{"cpus", &job.resources.cpus},
                             std::pair{"nodes", &job.resources.nodes}}) {
      const auto* e = find(std::string("resources.") + key);
      if (!e) continue;
      *rule = parse_resource_rule(e->value, where(*e));
      for (double n : job.params)
        for (double d : job.token_budgets_for(n)) {
          const int v = rule->value_for(n, d);
          if (std::string(key) == "nodes" && v < 1) fail(*e, "a trial needs at least 1 node, got 0");
        }
    }
    if (job.resources.gpus.given() && job.resources.nodes.given())
      for (double n : job.params)
        for (double d : job.token_budgets_for(n)) {
          const TrialResources r = job.resources_for(n, d);
          if (r.gpus % r.nodes != 0)
            fail(*find("resources.nodes"), "a trial with params = " + format_short(n) + " needs " +
                                               std::to_string(r.gpus) + " GPUs on " + std::to_string(r.nodes) +
                                               " nodes: give a GPU count that splits evenly over its nodes");
        }
  }

  // Canonical text of an option value: text verbatim, numbers round-trip exact.
  std::string option_value(const BackendOption& opt, const std::string& raw, const IniEntry& at) const {
    if (opt.text) return raw;
    const double v = parse_number(raw, where(at) + (at.section == "variants" ? " " + opt.key : ""));
    const bool exponent = opt.key.size() > 4 && opt.key.substr(opt.key.size() - 4) == "_exp";
    if (v < 0 && !exponent) fail(at, opt.key + " must not be negative, got " + raw);
    return format_double(v);
  }

  // [variants]: `name = key=value, key=value` overriding options of the backend's section.
  void parse_variants(JobSpec& job) const {
    const BackendKind* kind = find_backend_kind(job.backend_kind);
    std::vector<std::string> keys;
    for (const auto& o : kind->options) keys.push_back(o.key);
    for (const auto& e : doc_.entries) {
      if (e.section != "variants") continue;
      if (e.key.empty() || e.key.find_first_not_of(
                               "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") != std::string::npos)
        fail(e, "a variant name must be letters, digits, '_' or '-'");
      Variant v;
      v.name = e.key;
      for (const auto& item : split(e.value, ',')) {
        if (trim(item).empty() && trim(e.value).empty()) continue;  // `base =`: the section's own settings
        const auto eq = item.find('=');
        const std::string key = to_lower(trim(item.substr(0, eq)));
        if (eq == std::string::npos || key.empty())
          fail(e, "expected 'option=value, ...' overriding options of [" + kind->name + "], got '" + trim(item) + "'");
        const auto opt =
            std::find_if(kind->options.begin(), kind->options.end(), [&](auto& o) { return o.key == key; });
        if (opt == kind->options.end()) {
          const std::string guess = closest_match(key, keys);
          fail(e, "'" + key + "' is not an option of backend '" + kind->name + "'" +
                      (guess.empty() ? "" : "; did you mean '" + guess + "'?"));
        }
        if (v.overrides.count(key)) fail(e, "'" + key + "' is given twice");
        v.overrides[key] = option_value(*opt, trim(item.substr(eq + 1)), e);
      }
      v.backend_options = job.backend_options;
      for (const auto& [k, value] : v.overrides) v.backend_options[k] = value;
      v.where = doc_.where(e) + ": [variants] " + e.key;
      for (const auto& other : job.variants)
        if (other.backend_options == v.backend_options)
          fail(e, "runs exactly the same settings as variant '" + other.name + "'");
      job.variants.push_back(std::move(v));
    }
  }

  static std::string join(const std::vector<double>& v) {
    std::string s;
    for (double x : v) s += (s.empty() ? "" : ",") + format_double(x);
    return s;
  }

  void build_canonical(JobSpec& job) const {
    const BackendKind* kind = find_backend_kind(job.backend_kind);
    auto settings = [&](const std::map<std::string, std::string>& options) {
      std::string s = "backend=" + job.backend_kind + ";seed=" + std::to_string(job.seed);
      for (const auto& opt : kind->options)
        if (opt.affects_result) s += ";" + job.backend_kind + "." + opt.key + "=" + options.at(opt.key);
      return s;
    };
    job.result_settings = settings(job.backend_options);
    for (auto& v : job.variants) v.result_settings = settings(v.backend_options);

    auto& c = job.canonical;
    c["sweep.name"] = job.name;
    c["sweep.seed"] = std::to_string(job.seed);
    c["sweep.repeats"] = std::to_string(job.repeats);
    c["scales.params"] = join(job.params);
    c["scales.tokens"] = join(job.tokens);
    c["scales.tokens_per_param"] = join(job.tokens_per_param);
    c["scales.seq_len"] = std::to_string(job.seq_len);
    c["grid.lr"] = join(job.lr);
    std::vector<double> b(job.batch.begin(), job.batch.end());
    c["grid.batch"] = join(b);
    c["grid.wd"] = join(job.wd);
    c["backend.kind"] = job.backend_kind;
    for (const auto& [k, v] : job.backend_options) c[job.backend_kind + "." + k] = v;
    for (const auto& v : job.variants) {
      std::string o;
      for (const auto& [k, value] : v.overrides) o += (o.empty() ? "" : ", ") + k + "=" + value;
      c["variants." + v.name] = o;
    }
    if (!job.points.empty()) c["grid.points"] = std::to_string(job.points.size()) + " points of the lookup table";
    if (job.adaptive.enabled) {
      const auto& a = job.adaptive;
      c["adaptive.budget"] = format_double(a.budget_fraction);
      c["adaptive.budget_flops"] = format_double(a.budget_flops);
      c["adaptive.target_rel_width"] = format_double(a.target_rel_width);
      c["adaptive.coarse_lr"] = std::to_string(a.coarse_lr);
      c["adaptive.coarse_batch"] = std::to_string(a.coarse_batch);
      c["adaptive.round_trials"] = std::to_string(a.round_trials);
      c["adaptive.extend_edges"] = a.extend_edges ? "1" : "0";
      c["adaptive.seed"] = std::to_string(a.seed);
    }
    c["target.params"] = format_double(job.target_params);
    c["target.tokens"] = format_double(job.target_tokens);
  }
};

}  // namespace

JobSpec parse_job(const std::string& text, const std::string& path) { return JobParser(parse_ini(text, path)).parse(); }

JobSpec load_job(const std::string& path) { return JobParser(read_ini_file(path)).parse(); }

}  // namespace hpsweep
