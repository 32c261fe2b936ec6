#include "hpsweep/util/json_value.hpp"

#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <limits>

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

constexpr int kMaxDepth = 64;

class Reader {
 public:
  explicit Reader(std::string_view t) : t_(t) {}

  bool document(JsonValue& out, std::string& why) {
    if (!value(out, 0)) {
      why = error_ + " at offset " + std::to_string(pos_);
      return false;
    }
    skip_space();
    if (pos_ != t_.size()) {
      why = "unexpected text after the JSON value at offset " + std::to_string(pos_);
      return false;
    }
    return true;
  }

 private:
  void skip_space() {
    while (pos_ < t_.size() && (t_[pos_] == ' ' || t_[pos_] == '\t' || t_[pos_] == '\n' || t_[pos_] == '\r')) ++pos_;
  }
  bool fail(const std::string& why) {
    error_ = why;
    return false;
  }
  bool word(std::string_view w) {
    if (t_.substr(pos_, w.size()) != w) return false;
    pos_ += w.size();
    return true;
  }

  bool value(JsonValue& v, int depth) {
    skip_space();
    if (pos_ >= t_.size()) return fail("unexpected end of text");
    const char c = t_[pos_];
    if (c == '{' || c == '[') {
      if (depth >= kMaxDepth) return fail("JSON nested deeper than " + std::to_string(kMaxDepth) + " levels");
      return c == '{' ? object(v, depth) : array(v, depth);
    }
    if (c == '"') {
      v.kind = JsonValue::Kind::String;
      return string(v.text);
    }
    if (word("true") || word("false")) {
      v.kind = JsonValue::Kind::Bool;
      v.boolean = c == 't';
      return true;
    }
    if (word("null")) {
      v.kind = JsonValue::Kind::Null;
      return true;
    }
    return number(v);
  }

  bool object(JsonValue& v, int depth) {
    v.kind = JsonValue::Kind::Object;
    ++pos_;
    skip_space();
    if (pos_ < t_.size() && t_[pos_] == '}') return ++pos_, true;
    while (true) {
      skip_space();
      std::string key;
      if (pos_ >= t_.size() || t_[pos_] != '"') return fail("expected a quoted key");
      if (!string(key)) return false;
      skip_space();
      if (pos_ >= t_.size() || t_[pos_] != ':') return fail("expected ':' after key \"" + key + "\"");
      ++pos_;
      JsonValue member;
      if (!value(member, depth + 1)) return false;
      v.members[key] = std::move(member);
      skip_space();
      if (pos_ < t_.size() && t_[pos_] == ',') {
        ++pos_;
        continue;
      }
      if (pos_ < t_.size() && t_[pos_] == '}') return ++pos_, true;
      return fail("expected ',' or '}'");
    }
  }

  bool array(JsonValue& v, int depth) {
    v.kind = JsonValue::Kind::Array;
    ++pos_;
    skip_space();
    if (pos_ < t_.size() && t_[pos_] == ']') return ++pos_, true;
    while (true) {
      JsonValue item;
      if (!value(item, depth + 1)) return false;
      v.items.push_back(std::move(item));
      skip_space();
      if (pos_ < t_.size() && t_[pos_] == ',') {
        ++pos_;
        continue;
      }
      if (pos_ < t_.size() && t_[pos_] == ']') return ++pos_, true;
      return fail("expected ',' or ']'");
    }
  }

  bool string(std::string& out) {
    ++pos_;  // opening quote
    while (pos_ < t_.size()) {
      const char c = t_[pos_++];
      if (c == '"') return true;
      if (static_cast<unsigned char>(c) < 0x20) return fail("control character in a string");
      if (c != '\\') {
        out += c;
        continue;
      }
      if (pos_ >= t_.size()) break;
      const char e = t_[pos_++];
      switch (e) {
        case '"':
        case '\\':
        case '/':
          out += e;
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'n':
          out += '\n';
          break;
        case 'r':
          out += '\r';
          break;
        case 't':
          out += '\t';
          break;
        case 'u': {
          if (pos_ + 4 > t_.size()) return fail("short \\u escape");
          unsigned code = 0;
          for (int i = 0; i < 4; ++i) {
            const char h = t_[pos_++];
            code <<= 4;
            if (h >= '0' && h <= '9')
              code |= static_cast<unsigned>(h - '0');
            else if (h >= 'a' && h <= 'f')
              code |= static_cast<unsigned>(h - 'a' + 10);
            else if (h >= 'A' && h <= 'F')
              code |= static_cast<unsigned>(h - 'A' + 10);
            else
              return fail("bad \\u escape");
          }
          // Keys and messages only: encode the code unit as UTF-8, surrogates left as they are.
          if (code < 0x80) {
            out += static_cast<char>(code);
          } else if (code < 0x800) {
            out += static_cast<char>(0xC0 | (code >> 6));
            out += static_cast<char>(0x80 | (code & 0x3F));
          } else {
            out += static_cast<char>(0xE0 | (code >> 12));
            out += static_cast<char>(0x80 | ((code >> 6) & 0x3F));
            out += static_cast<char>(0x80 | (code & 0x3F));
          }
          break;
        }
        default:
          return fail(std::string("bad escape \\") + e);
      }
    }
    return fail("unterminated string");
  }

  bool number(JsonValue& v) {
    v.kind = JsonValue::Kind::Number;
    const std::size_t start = pos_;
    const bool negative = t_[pos_] == '-';
    if (t_[pos_] == '-' || t_[pos_] == '+') ++pos_;
    if (word("NaN") || word("nan")) {
      v.number = std::numeric_limits<double>::quiet_NaN();
    } else if (word("Infinity") || word("inf")) {
      v.number = negative ? -std::numeric_limits<double>::infinity() : std::numeric_limits<double>::infinity();
    } else {
      const std::size_t digits = pos_;
      while (pos_ < t_.size() && (std::isdigit(static_cast<unsigned char>(t_[pos_])) || t_[pos_] == '.' ||
                                  t_[pos_] == 'e' || t_[pos_] == 'E' || t_[pos_] == '-' || t_[pos_] == '+'))
        ++pos_;
      if (pos_ == digits) return fail("unexpected character '" + std::string(1, t_[start]) + "'");
      const std::string literal(t_.substr(start, pos_ - start));
      char* end = nullptr;
      errno = 0;
      v.number = std::strtod(literal.c_str(), &end);  // beyond range: +-HUGE_VAL, i.e. +-infinity
      if (end != literal.c_str() + literal.size()) return fail("malformed number '" + literal + "'");
      if (errno == ERANGE && std::fabs(v.number) < 1) v.number = negative ? -0.0 : 0.0;  // underflow
    }
    v.text = std::string(t_.substr(start, pos_ - start));
    return true;
  }

  std::string_view t_;
  std::size_t pos_ = 0;
  std::string error_;
};

}  // namespace

bool parse_json_value(std::string_view text, JsonValue& out, std::string& why) {
  out = JsonValue{};
  return Reader(text).document(out, why);
}

}  // namespace hpsweep
