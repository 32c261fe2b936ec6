#pragma once
// A JSON object as a tree that keeps value types (a reader that turns everything into strings makes
// `"diverged": "yes"` and `true` look alike). It accepts JSON as Python writes it:
// bare NaN, Infinity and -Infinity are numbers, and a number beyond double range (1e400) reads
// as an infinity rather than failing.
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace hpsweep {

struct JsonValue {
  enum class Kind { Null, Bool, Number, String, Array, Object };
  Kind kind = Kind::Null;
  bool boolean = false;
  double number = 0;
  std::string text;  // String: the value; Number: the literal as written
  std::vector<JsonValue> items;
  std::map<std::string, JsonValue> members;  // a repeated key keeps its last value

  const JsonValue* find(const std::string& key) const;  // Object member or nullptr
  static const char* kind_name(Kind k);
};

// Parses one JSON object (surrounding whitespace allowed) with hpsweep's JSON reader (simdjson).
// Returns false with a reason on error. Nesting is limited to 64 levels.
bool parse_json_value(std::string_view text, JsonValue& out, std::string& why);

}  // namespace hpsweep
