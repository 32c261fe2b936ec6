#include "hpsweep/util/json_value.hpp"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <limits>

#include "util/json_reader.hpp"

namespace hpsweep {

const JsonValue* JsonValue::find(const std::string& key) const {
  if (kind != Kind::Object) return nullptr;
  const auto it = members.find(key);
  return it == members.end() ? nullptr : &it->second;
}

const char* JsonValue::kind_name(Kind k) {
  switch (k) {
    case Kind::Null:
      return "null";
    case Kind::Bool:
      return "a boolean";
    case Kind::Number:
      return "a number";
    case Kind::String:
      return "a string";
    case Kind::Array:
      return "an array";
    case Kind::Object:
      return "an object";
  }
  return "?";
}

namespace {

// A number as written: Python's NaN / Infinity words, or a literal beyond double range read as an
// infinity (underflow as a signed zero).
double number_of(const std::string& literal) {
  const bool negative = !literal.empty() && literal.front() == '-';
  const std::string_view word =
      std::string_view(literal).substr(!literal.empty() && (literal.front() == '-' || literal.front() == '+') ? 1 : 0);
  if (word == "NaN" || word == "nan") return std::numeric_limits<double>::quiet_NaN();
  if (word == "Infinity" || word == "inf")
    return negative ? -std::numeric_limits<double>::infinity() : std::numeric_limits<double>::infinity();
  errno = 0;
  double v = std::strtod(literal.c_str(), nullptr);  // beyond range: +-HUGE_VAL, i.e. +-infinity
  if (errno == ERANGE && std::fabs(v) < 1) v = negative ? -0.0 : 0.0;
  return v;
}

void convert(JsonNode& node, JsonValue& out) {
  switch (node.kind) {
    case JsonNode::Kind::Object:
      out.kind = JsonValue::Kind::Object;
      for (auto& child : node.children) convert(child, out.members[child.key]);  // a repeated key: the last
      return;
    case JsonNode::Kind::Array:
      out.kind = JsonValue::Kind::Array;
      out.items.resize(node.children.size());
      for (std::size_t i = 0; i < node.children.size(); ++i) convert(node.children[i], out.items[i]);
      return;
    case JsonNode::Kind::Scalar:
      break;
  }
  switch (node.scalar) {
    case JsonNode::Scalar::String:
      out.kind = JsonValue::Kind::String;
      out.text = std::move(node.text);
      return;
    case JsonNode::Scalar::Number:
      out.kind = JsonValue::Kind::Number;
      out.number = number_of(node.text);
      out.text = std::move(node.text);
      return;
    case JsonNode::Scalar::Bool:
      out.kind = JsonValue::Kind::Bool;
      out.boolean = node.text == "true";
      return;
    case JsonNode::Scalar::Null:
      out.kind = JsonValue::Kind::Null;
      return;
  }
}

}  // namespace

bool parse_json_value(std::string_view text, JsonValue& out, std::string& why) {
  out = JsonValue{};
  thread_local JsonScratch scratch;
  JsonNode root;
  std::size_t line = 0;
  if (!parse_json(text, root, why, line, scratch)) {
    if (line > 0) why += " (line " + std::to_string(line) + ")";
    return false;
  }
  convert(root, out);
  return true;
}

}  // namespace hpsweep
