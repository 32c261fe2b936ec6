// hpsweep's JSON reader (json_reader.hpp): the run-log parsers' logs and configs, the command
// backend's result lines, the stored fits. simdjson's On-Demand parser (Debian libsimdjson-dev). On-Demand only checks
// what it is asked for, so every value is visited: what is not kept is still validated. Scalars keep their text as
// written (numbers are read later by parse_double, so "1e400" and "3.0" mean what they meant before), strings are
// unescaped, and Python's bare NaN / Infinity / -Infinity (and C's nan / inf) are taken as
// numbers, which simdjson alone would refuse.
#include <simdjson.h>

#include <algorithm>
#include <cstring>

#include "hpsweep/util/text.hpp"
#include "util/json_reader.hpp"

namespace hpsweep {

namespace od = simdjson::ondemand;

namespace {

constexpr int kMaxJsonDepth = 64;

// A syntax error found by the walk itself (not by simdjson).
struct WalkError {
  std::string why;
  const char* where = nullptr;  // into the padded copy; nullptr: unknown
};

bool is_json_number(std::string_view t) {
  std::size_t i = 0;
  auto digit = [&](std::size_t k) { return k < t.size() && t[k] >= '0' && t[k] <= '9'; };
  if (i < t.size() && t[i] == '-') ++i;
  if (!digit(i)) return false;
  if (t[i] == '0')
    ++i;
  else
    while (digit(i)) ++i;
  if (i < t.size() && t[i] == '.') {
    if (!digit(++i)) return false;
    while (digit(i)) ++i;
  }
  if (i < t.size() && (t[i] == 'e' || t[i] == 'E')) {
    ++i;
    if (i < t.size() && (t[i] == '+' || t[i] == '-')) ++i;
    if (!digit(i)) return false;
    while (digit(i)) ++i;
  }
  return i == t.size();
}

bool is_non_finite_word(std::string_view t) {
  static const char* const kWords[] = {"-Infinity", "+Infinity", "Infinity", "-NaN", "NaN",
                                       "-nan",      "nan",       "-inf",     "+inf", "inf"};
  return std::any_of(std::begin(kWords), std::end(kWords), [&](const char* w) { return t == w; });
}

std::string_view trimmed_token(std::string_view t) {
  while (!t.empty() && (t.back() == ' ' || t.back() == '\t' || t.back() == '\n' || t.back() == '\r'))
    t.remove_suffix(1);
  return t;
}

class Walker {
 public:
  Walker(const std::vector<std::string>* keep_top) : keep_top_(keep_top) {}

  // Visits v (and everything below it); stores it in out unless out is null.
  simdjson::error_code value(od::value v, JsonNode* out, int depth) {
    const std::string_view raw = trimmed_token(v.raw_json_token());
    if (!raw.empty() && raw.front() != '{' && raw.front() != '[' && raw.front() != '"' && is_non_finite_word(raw)) {
      if (out) {
        out->text.assign(raw);
        out->scalar = JsonNode::Scalar::Number;
      }
      return simdjson::SUCCESS;
    }
    od::json_type type;
    if (auto e = v.type().get(type)) return e;
    switch (type) {
      case od::json_type::object: {
        if (depth >= kMaxJsonDepth) return too_deep(v);
        od::object obj;
        if (auto e = v.get_object().get(obj)) return e;
        if (out) out->kind = JsonNode::Kind::Object;
        for (auto field : obj) {
          std::string_view key;
          if (auto e = field.unescaped_key().get(key)) return e;
          JsonNode* child = nullptr;
          if (out &&
              (depth > 0 || !keep_top_ || std::find(keep_top_->begin(), keep_top_->end(), key) != keep_top_->end())) {
            out->children.emplace_back();
            child = &out->children.back();
            child->key.assign(key);
          }
          if (auto e = value(field.value(), child, depth + 1)) return e;
        }
        return simdjson::SUCCESS;
      }
      case od::json_type::array: {
        if (depth >= kMaxJsonDepth) return too_deep(v);
        od::array arr;
        if (auto e = v.get_array().get(arr)) return e;
        if (out) out->kind = JsonNode::Kind::Array;
        for (auto item : arr) {
          od::value iv;
          if (auto e = item.get(iv)) return e;
          JsonNode* child = nullptr;
          if (out) {
            out->children.emplace_back();
            child = &out->children.back();
          }
          if (auto e = value(iv, child, depth + 1)) return e;
        }
        return simdjson::SUCCESS;
      }
      case od::json_type::string: {
        std::string_view s;
        if (auto e = v.get_string().get(s)) return e;
        if (out) {
          out->text.assign(s);
          out->scalar = JsonNode::Scalar::String;
        }
        return simdjson::SUCCESS;
      }
      case od::json_type::number:
        if (!is_json_number(raw)) {
          error_ = WalkError{"malformed number " + shown(raw), raw.data()};
          return simdjson::NUMBER_ERROR;
        }
        if (out) {
          out->text.assign(raw);
          out->scalar = JsonNode::Scalar::Number;
        }
        return simdjson::SUCCESS;
      case od::json_type::boolean: {
        bool b = false;
        if (auto e = v.get_bool().get(b)) return e;
        if (out) {
          out->text = b ? "true" : "false";
          out->scalar = JsonNode::Scalar::Bool;
        }
        return simdjson::SUCCESS;
      }
      case od::json_type::null: {
        bool is_null = false;
        if (auto e = v.is_null().get(is_null)) return e;
        if (!is_null) return simdjson::N_ATOM_ERROR;
        if (out) {
          out->text = "null";
          out->scalar = JsonNode::Scalar::Null;
        }
        return simdjson::SUCCESS;
      }
    }
    return simdjson::TAPE_ERROR;
  }

  const WalkError& error() const { return error_; }
  bool too_deep() const { return too_deep_; }

 private:
  simdjson::error_code too_deep(od::value&) {
    too_deep_ = true;
    return simdjson::DEPTH_ERROR;
  }
  const std::vector<std::string>* keep_top_;
  WalkError error_;
  bool too_deep_ = false;
};

// True when text nests objects/arrays deeper than kMaxJsonDepth (outside strings).
bool nests_too_deep(std::string_view text) {
  bool in_string = false, escaped = false;
  int depth = 0;
  for (const char c : text) {
    if (in_string) {
      if (escaped)
        escaped = false;
      else if (c == '\\')
        escaped = true;
      else if (c == '"')
        in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      if (++depth > kMaxJsonDepth) return true;
    } else if (c == '}' || c == ']') {
      --depth;
    }
  }
  return false;
}

// simdjson's message without its "CODE: " prefix.
std::string reason(simdjson::error_code e) {
  std::string m = simdjson::error_message(e);
  const std::size_t colon = m.find(": ");
  if (colon != std::string::npos && colon < 24 &&
      std::all_of(m.begin(), m.begin() + static_cast<std::ptrdiff_t>(colon), [](char c) {
        return std::isupper(static_cast<unsigned char>(c)) || c == '_' || std::isdigit(static_cast<unsigned char>(c));
      }))
    m.erase(0, colon + 2);
  if (!m.empty() && m.back() == '.') m.pop_back();
  return m;
}

}  // namespace

struct JsonScratch::Impl {
  od::parser parser;
  std::string padded;
};

JsonScratch::JsonScratch() : impl_(std::make_unique<Impl>()) {}
JsonScratch::~JsonScratch() = default;

const JsonNode* JsonNode::find(std::string_view name) const {
  for (const auto& child : children)
    if (child.key == name) return &child;
  return nullptr;
}

bool parse_json(std::string_view text, JsonNode& root, std::string& why, std::size_t& line, JsonScratch& scratch,
                const std::vector<std::string>* keep_top) {
  line = 0;
  root = JsonNode{};
  if (text.size() >= 3 && text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);  // UTF-8 BOM
  // simdjson reads up to SIMDJSON_PADDING bytes past the end: parse a padded copy.
  std::string& buf = scratch.impl_->padded;
  buf.reserve(text.size() + simdjson::SIMDJSON_PADDING);
  buf.assign(text);
  const simdjson::padded_string_view input(buf.data(), buf.size(), buf.capacity());
  Walker walker(keep_top);
  od::document doc;
  simdjson::error_code err = scratch.impl_->parser.iterate(input).get(doc);
  const char* at = nullptr;
  bool scalar_root = false;
  if (!err) {
    od::json_type type;
    err = doc.type().get(type);
    if (!err && (type == od::json_type::object || type == od::json_type::array)) {
      od::value v;
      err = doc.get_value().get(v);
      if (!err) err = walker.value(v, &root, 0);
      // Anything but whitespace after the value: current_location() is in bounds only then.
      if (!err && !doc.current_location().get(at)) err = simdjson::TRAILING_CONTENT;
    } else if (!err) {
      scalar_root = true;
    }
    if (err && !at) {
      if (walker.error().where) {
        at = walker.error().where;
      } else if (doc.current_location().get(at)) {
        at = nullptr;
      }
    }
  }
  if (err) {
    if (walker.too_deep() || nests_too_deep(text)) {
      why = "JSON nested deeper than " + std::to_string(kMaxJsonDepth) + " levels";
      return false;
    }
    why = "not valid JSON: " + (walker.error().why.empty() ? reason(err) : walker.error().why);
    // The line of the error (the last line when simdjson does not say where).
    const std::size_t offset = at && at >= buf.data() && at <= buf.data() + buf.size()
                                   ? static_cast<std::size_t>(at - buf.data())
                                   : text.size();
    line = 1 +
           static_cast<std::size_t>(std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(offset), '\n'));
    if (offset == text.size() && offset > 0 && text.back() == '\n') --line;
    return false;
  }
  if (scalar_root || root.kind != JsonNode::Kind::Object) {
    why = "not a JSON object";
    return false;
  }
  return true;
}

bool json_scalar(const JsonNode& node, std::string_view key, std::string& out) {
  const JsonNode* child = node.find(key);
  if (!child) return false;
  if (child->kind == JsonNode::Kind::Scalar)
    out = child->text;
  else
    out.clear();
  return true;
}

}  // namespace hpsweep
