// A reader of the TOML that run configs use (torchtitan's config.toml): tables, arrays of tables,
// dotted and quoted keys, strings of the four kinds, integers, floats, booleans, dates (kept as
// text), arrays and inline tables. It flattens straight into dotted keys (log_ingest_common.hpp).
// Why not Debian's toml++ 3.3: fuzzing reached undefined behaviour in it within minutes (an
// assumed-unreachable branch and a failed assumption, both compiled as assumptions in release).
#include <cctype>
#include <string>

#include "ingest/log_ingest_common.hpp"

namespace hpsweep::log_ingest_detail {

namespace {

constexpr int kMaxTomlDepth = 64;

class TomlReader {
 public:
  TomlReader(std::string_view text, const std::string& where, FlatConfig& out) : s_(text), where_(where), out_(out) {}

  void read() {
    std::string table;  // the current [table] prefix
    while (true) {
      skip_blank_lines();
      if (i_ >= s_.size()) return;
      if (peek() == '[') {
        ++i_;
        const bool array = take('[');
        skip_space();
        std::string path = key_path();
        skip_space();
        if (!take(']') || (array && !take(']'))) error("expected ']' after the table name");
        if (array) path += "." + std::to_string(array_counts_[path]++);
        table = path;
        end_of_line();
        continue;
      }
      const std::string key = key_path();
      skip_space();
      if (!take('=')) error("expected '=' after the key");
      skip_space();
      value(table.empty() ? key : table + "." + key, 0);
      end_of_line();
    }
  }

 private:
  [[noreturn]] void error(const std::string& why) { fail(where_, line_, "not valid TOML: " + why); }
  char peek() const { return i_ < s_.size() ? s_[i_] : '\0'; }
  bool take(char c) {
    if (peek() != c || i_ >= s_.size()) return false;
    ++i_;
    return true;
  }
  void skip_space() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t')) ++i_;
  }
  void skip_comment() {
    if (peek() == '#')
      while (i_ < s_.size() && s_[i_] != '\n') ++i_;
  }
  bool newline() {
    if (take('\n') || (peek() == '\r' && i_ + 1 < s_.size() && s_[i_ + 1] == '\n' && (i_ += 2))) {
      ++line_;
      return true;
    }
    return false;
  }
  void skip_blank_lines() {  // also whitespace, comments and newlines inside arrays
    while (true) {
      skip_space();
      skip_comment();
      if (!newline()) return;
    }
  }
  void end_of_line() {
    skip_space();
    skip_comment();
    if (i_ < s_.size() && !newline()) error("unexpected " + shown(s_.substr(i_, 10)) + " after a value");
  }
  static bool bare(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-'; }

  std::string key_part() {
    if (peek() == '"' || peek() == '\'') return string_value(false);
    const std::size_t start = i_;
    while (i_ < s_.size() && bare(s_[i_])) ++i_;
    if (i_ == start) error("expected a key, got " + shown(s_.substr(i_, 10)));
    return std::string(s_.substr(start, i_ - start));
  }
  std::string key_path() {
    std::string path = key_part();
    while (true) {
      skip_space();
      if (!take('.')) return path;
      skip_space();
      path += "." + key_part();
    }
  }

  void put(const std::string& key, std::string value) {
    if (!out_.emplace(key, std::move(value)).second) error("\"" + key + "\" is defined twice");
  }

  void append_utf8(std::string& out, unsigned long cp) {
    if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) error("invalid unicode escape");
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xC0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xE0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }

  // "basic", 'literal', """multi-line basic""", '''multi-line literal'''.
  std::string string_value(bool allow_multiline) {
    const char q = s_[i_];
    const bool multi = allow_multiline && s_.substr(i_, 3) == std::string(3, q);
    i_ += multi ? 3 : 1;
    if (multi && newline()) {
    }  // a newline right after the opening quotes is not part of the string
    std::string out;
    while (true) {
      if (i_ >= s_.size()) error("unterminated string");
      const char c = s_[i_];
      if (multi && s_.substr(i_, 3) == std::string(3, q)) {
        i_ += 3;
        while (peek() == q && out.size() < s_.size()) {  // up to two quotes may end the content
          out += q;
          ++i_;
        }
        return out;
      }
      if (!multi && c == q) {
        ++i_;
        return out;
      }
      if (c == '\n') {
        if (!multi) error("newline in a single-line string");
        ++line_;
        out += c;
        ++i_;
        continue;
      }
      if (q == '"' && c == '\\') {
        ++i_;
        const char e = peek();
        ++i_;
        switch (e) {
          case 'b':
            out += '\b';
            break;
          case 't':
            out += '\t';
            break;
          case 'n':
            out += '\n';
            break;
          case 'f':
            out += '\f';
            break;
          case 'r':
            out += '\r';
            break;
          case 'e':
            out += '\x1b';
            break;
          case '"':
            out += '"';
            break;
          case '\\':
            out += '\\';
            break;
          case 'u':
          case 'U': {
            const std::size_t n = e == 'u' ? 4 : 8;
            if (i_ + n > s_.size()) error("short unicode escape");
            unsigned long cp = 0;
            for (std::size_t k = 0; k < n; ++k) {
              const char h = s_[i_ + k];
              if (!std::isxdigit(static_cast<unsigned char>(h))) error("bad unicode escape");
              cp = cp * 16 + static_cast<unsigned long>(
                                 std::isdigit(static_cast<unsigned char>(h)) ? h - '0' : (std::tolower(h) - 'a' + 10));
            }
            i_ += n;
            append_utf8(out, cp);
            break;
          }
          default:
            if (multi && (e == '\n' || e == ' ' || e == '\t' || e == '\r')) {  // line-ending backslash
              --i_;
              while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\r' || s_[i_] == '\n'))
                if (s_[i_++] == '\n') ++line_;
              break;
            }
            error("unknown escape \\" + std::string(1, e));
        }
        continue;
      }
      out += c;
      ++i_;
    }
  }

  // A number, boolean, date or time: the token up to a delimiter, checked and normalised.
  std::string scalar_token() {
    const std::size_t start = i_;
    while (i_ < s_.size() && !std::isspace(static_cast<unsigned char>(s_[i_])) && s_[i_] != ',' && s_[i_] != ']' &&
           s_[i_] != '}' && s_[i_] != '#')
      ++i_;
    // "1979-05-27 07:32:00": a date and a time separated by a space
    if (i_ + 1 < s_.size() && s_[i_] == ' ' && i_ - start == 10 && s_[start + 4] == '-' &&
        std::isdigit(static_cast<unsigned char>(s_[i_ + 1]))) {
      ++i_;
      while (i_ < s_.size() && !std::isspace(static_cast<unsigned char>(s_[i_])) && s_[i_] != ',' && s_[i_] != ']' &&
             s_[i_] != '}' && s_[i_] != '#')
        ++i_;
    }
    const std::string_view t = s_.substr(start, i_ - start);
    if (t.empty()) error("expected a value, got " + shown(s_.substr(i_, 10)));
    if (t == "true" || t == "false") return std::string(t);
    std::string plain;  // without digit separators
    for (std::size_t k = 0; k < t.size(); ++k) {
      if (t[k] == '_') {
        if (k == 0 || k + 1 == t.size() || !std::isxdigit(static_cast<unsigned char>(t[k - 1])) ||
            !std::isxdigit(static_cast<unsigned char>(t[k + 1])))
          error("misplaced '_' in " + shown(t));
        continue;
      }
      plain += t[k];
    }
    if (plain.size() > 2 && plain[0] == '0' && (plain[1] == 'x' || plain[1] == 'o' || plain[1] == 'b')) {
      const int base = plain[1] == 'x' ? 16 : plain[1] == 'o' ? 8 : 2;
      unsigned long long v = 0;
      for (std::size_t k = 2; k < plain.size(); ++k) {
        const char c = static_cast<char>(std::tolower(plain[k]));
        const int d = std::isdigit(static_cast<unsigned char>(c)) ? c - '0'
                      : (c >= 'a' && c <= 'f')                    ? c - 'a' + 10
                                                                  : 99;
        if (d >= base || v > (~0ULL) / 64) error("bad integer " + shown(t));
        v = v * static_cast<unsigned long long>(base) + static_cast<unsigned long long>(d);
      }
      return std::to_string(v);
    }
    double d = 0;
    std::int64_t w = 0;
    if (parse_double(plain, d) || parse_digits(plain, w)) return plain;
    // dates and times: digits with - : T Z . + only
    bool date = std::isdigit(static_cast<unsigned char>(t[0])) != 0;
    for (char c : t)
      if (!(std::isdigit(static_cast<unsigned char>(c)) || c == '-' || c == ':' || c == 'T' || c == 'Z' || c == '.' ||
            c == '+' || c == ' ' || c == 't' || c == 'z'))
        date = false;
    if (!date) error("not a value: " + shown(t));
    return std::string(t);
  }

  void value(const std::string& key, int depth) {
    if (depth > kMaxTomlDepth) error("nested deeper than " + std::to_string(kMaxTomlDepth) + " levels");
    const char c = peek();
    if (c == '"' || c == '\'') return put(key, string_value(true));
    if (c == '[') {
      ++i_;
      std::size_t n = 0;
      while (true) {
        skip_blank_lines();
        if (take(']')) return;
        value(key + "." + std::to_string(n++), depth + 1);
        skip_blank_lines();
        if (take(']')) return;
        if (!take(',')) error("expected ',' or ']' in an array");
      }
    }
    if (c == '{') {
      ++i_;
      skip_space();
      if (take('}')) return;
      while (true) {
        skip_space();
        const std::string k = key_path();
        skip_space();
        if (!take('=')) error("expected '=' in an inline table");
        skip_space();
        value(key + "." + k, depth + 1);
        skip_space();
        if (take('}')) return;
        if (!take(',')) error("expected ',' or '}' in an inline table");
      }
    }
    put(key, scalar_token());
  }

  std::string_view s_;
  const std::string& where_;
  FlatConfig& out_;
  std::size_t i_ = 0, line_ = 1;
  std::map<std::string, std::size_t> array_counts_;
};

}  // namespace

void flatten_toml(std::string_view text, const std::string& where, FlatConfig& out) {
  if (text.size() >= 3 && text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);
  TomlReader(text, where, out).read();
}

}  // namespace hpsweep::log_ingest_detail
