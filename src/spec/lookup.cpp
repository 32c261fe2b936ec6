#include "hpsweep/spec/lookup.hpp"

#include <mutex>

#include "hpsweep/spec/job.hpp"
#include "hpsweep/util/error.hpp"
#include "hpsweep/util/text.hpp"

namespace hpsweep {

namespace {
std::mutex g_mutex;
LookupTableReader g_reader;
std::map<std::string, std::shared_ptr<const std::vector<LookupRow>>> g_tables;

std::string cache_key(const LookupSettings& s) {
  return s.file + "|" + s.map + "|" + (s.batch_in_tokens ? "tokens" : "sequences") + "|" + std::to_string(s.seq_len) +
         "|" + format_double(s.diverged_ratio);
}
}  // namespace

LookupSettings LookupSettings::from_options(const std::map<std::string, std::string>& options) {
  LookupSettings s;
  s.file = options.at("file");
  s.map = options.at("map");
  const std::string unit = to_lower(trim(options.at("batch_unit")));
  if (unit != "sequences" && unit != "tokens")
    throw InputError("[lookup] batch_unit must be 'sequences' or 'tokens', got '" + unit + "'");
  s.batch_in_tokens = unit == "tokens";
  s.seq_len = static_cast<std::int64_t>(parse_number(options.at("seq_len"), "[lookup] seq_len"));
  if (s.seq_len < 1) throw InputError("[lookup] seq_len must be at least 1");
  s.diverged_ratio = parse_number(options.at("diverged_ratio"), "[lookup] diverged_ratio");
  s.tolerance = parse_number(options.at("tolerance"), "[lookup] tolerance");
  return s;
}

void set_lookup_table_reader(LookupTableReader reader) {
  std::lock_guard<std::mutex> lock(g_mutex);
  g_reader = std::move(reader);
  g_tables.clear();
}

std::shared_ptr<const std::vector<LookupRow>> lookup_table(const LookupSettings& settings) {
  std::lock_guard<std::mutex> lock(g_mutex);
  const std::string key = cache_key(settings);
  if (auto it = g_tables.find(key); it != g_tables.end()) return it->second;
  if (!g_reader)
    throw InputError("[lookup] file = " + settings.file +
                     ": this program cannot read lookup tables (no table reader installed)");
  auto table = std::make_shared<const std::vector<LookupRow>>(g_reader(settings));
  if (table->empty()) throw InputError("[lookup] file = " + settings.file + ": the table has no usable rows");
  g_tables[key] = table;
  return table;
}

}  // namespace hpsweep
