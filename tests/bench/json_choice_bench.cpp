// Why simdjson: MB/s of the JSON parsers that were candidates for the run logs, on the same
// JSON-lines file, one line at a time as the ingest reads them. Not part of the build; run by
// `JSON_CHOICE=1 tests/bench/ingest_bench.sh`, which installs nlohmann-json3-dev for it.
//
//   json_choice_bench FILE.jsonl [SECONDS]
#include <simdjson.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace {

std::string slurp(const char* path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Counts the top-level numbers of every line (what a loss reader needs), checking the whole line.
struct CountingSax : nlohmann::json_sax<nlohmann::json> {
  int depth = 0;
  double numbers = 0;
  bool null() override { return true; }
  bool boolean(bool) override { return true; }
  bool number_integer(number_integer_t) override { return count(); }
  bool number_unsigned(number_unsigned_t) override { return count(); }
  bool number_float(number_float_t, const string_t&) override { return count(); }
  bool string(string_t&) override { return true; }
  bool binary(binary_t&) override { return true; }
  bool start_object(std::size_t) override { return ++depth > 0; }
  bool key(string_t&) override { return true; }
  bool end_object() override { return --depth >= 0; }
  bool start_array(std::size_t) override { return ++depth > 0; }
  bool end_array() override { return --depth >= 0; }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override { return false; }
  bool count() {
    numbers += depth == 1;
    return true;
  }
};

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s FILE.jsonl [SECONDS]\n", argv[0]);
    return 2;
  }
  std::string text = slurp(argv[1]);
  const double min_seconds = argc > 2 ? std::atof(argv[2]) : 2.0;
  std::vector<std::string_view> lines;
  for (std::size_t start = 0; start < text.size();) {
    std::size_t nl = text.find('\n', start);
    if (nl == std::string::npos) nl = text.size();
    lines.emplace_back(text.data() + start, nl - start);
    start = nl + 1;
  }
  double sink = 0;
  auto run = [&](const char* name, auto parse_all) {
    const auto t0 = std::chrono::steady_clock::now();
    std::size_t passes = 0;
    double seconds = 0;
    while (seconds < min_seconds) {
      parse_all();
      ++passes;
      seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    }
    std::printf("| %s | %.1f |\n", name,
                static_cast<double>(text.size()) * static_cast<double>(passes) / 1e6 / seconds);
  };
  std::printf("%zu lines, %.1f MB\n\n| parser | MB/s |\n|---|---:|\n", lines.size(),
              static_cast<double>(text.size()) / 1e6);
  run("nlohmann-json 3.11, DOM (json::parse)", [&] {
    for (const auto l : lines) {
      const auto j = nlohmann::json::parse(l.begin(), l.end(), nullptr, false);
      sink += static_cast<double>(j.size());
    }
  });
  run("nlohmann-json 3.11, SAX", [&] {
    CountingSax sax;
    for (const auto l : lines) nlohmann::json::sax_parse(l.begin(), l.end(), &sax);
    sink += sax.numbers;
  });
  // simdjson reads up to SIMDJSON_PADDING bytes past a line: each line is copied, as the ingest does.
  std::string padded;
  simdjson::dom::parser dom;
  run("simdjson 3.0, DOM", [&] {
    for (const auto l : lines) {
      padded.reserve(l.size() + simdjson::SIMDJSON_PADDING);
      padded.assign(l);
      simdjson::dom::element e;
      if (!dom.parse(padded.data(), padded.size(), false).get(e)) sink += 1;
    }
  });
  simdjson::ondemand::parser on_demand;
  run("simdjson 3.0, On-Demand, every member visited", [&] {
    for (const auto l : lines) {
      padded.reserve(l.size() + simdjson::SIMDJSON_PADDING);
      padded.assign(l);
      simdjson::ondemand::document doc;
      if (on_demand.iterate(simdjson::padded_string_view(padded.data(), padded.size(), padded.capacity())).get(doc))
        continue;
      simdjson::ondemand::object obj;
      if (doc.get_object().get(obj)) continue;
      for (auto field : obj) {
        std::string_view key;
        if (field.unescaped_key().get(key)) break;
        std::string_view raw;
        if (field.value().raw_json_token().get(raw)) break;
        sink += static_cast<double>(raw.size());
      }
    }
  });
  std::printf("\n(checksum %g)\n", sink);
  return 0;
}
