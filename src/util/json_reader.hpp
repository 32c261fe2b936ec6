#pragma once
// The one JSON reader of hpsweep (json_reader.cpp, simdjson): the run-log parsers read their
// logs and configs with it, and parse_json_value (hpsweep/util/json_value.hpp) builds its typed
// tree from it. Internal to src/.
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace hpsweep {

// A parsed JSON value. Scalars keep their text: strings unescaped, numbers as written, "true",
// "false", "null", and Python's NaN / Infinity as written; `scalar` says which of those it was
// (a string "true" is not the boolean). Objects and arrays have empty text.
// children: an object's members (key = member name) in file order, or an array's items (empty
// keys). find() returns the first member of a name.
struct JsonNode {
  enum class Kind : unsigned char { Scalar, Object, Array };
  enum class Scalar : unsigned char { String, Number, Bool, Null };
  Kind kind = Kind::Scalar;
  Scalar scalar = Scalar::Null;
  std::string key;
  std::string text;
  std::vector<JsonNode> children;
  const JsonNode* find(std::string_view name) const;
};
// The parser and its buffers, reused from one parse to the next (one per thread).
class JsonScratch {
 public:
  JsonScratch();
  ~JsonScratch();
  JsonScratch(const JsonScratch&) = delete;
  JsonScratch& operator=(const JsonScratch&) = delete;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  friend bool parse_json(std::string_view, JsonNode&, std::string&, std::size_t&, JsonScratch&,
                         const std::vector<std::string>*);
};
// Parses one JSON object. On an error returns false with the reason and its line within `text`
// (0 for "nested deeper than 64 levels"). keep_top: when given, only these top-level members are
// stored (the others are still checked).
bool parse_json(std::string_view text, JsonNode& root, std::string& why, std::size_t& line, JsonScratch& scratch,
                const std::vector<std::string>* keep_top = nullptr);
// The scalar text of node[key], or false when absent. A key holding an object or array is
// reported as not a number by the caller (its text is empty).
bool json_scalar(const JsonNode& node, std::string_view key, std::string& out);

}  // namespace hpsweep
