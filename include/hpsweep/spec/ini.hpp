#pragma once
// Reading an INI job file with Boost.Program_options' config-file parser, keeping the line of
// every key so errors can point at it.
#include <string>
#include <vector>

namespace hpsweep {

struct IniEntry {
  std::string section;  // "grid"
  std::string key;      // "lr"
  std::string value;    // raw text after '=', trimmed, comments removed
  int line = 0;         // 1-based line in the file
  std::string name() const { return section + "." + key; }
};

struct IniDocument {
  std::string path;               // for messages
  std::string text;               // verbatim file contents
  std::vector<IniEntry> entries;  // in file order
  // Location prefix for messages: "path:line".
  std::string where(const IniEntry& e) const;
};

// Parses `text` (read from `path`). Throws InputError naming path and line for syntax errors
// and for keys given twice.
IniDocument parse_ini(const std::string& text, const std::string& path);
IniDocument read_ini_file(const std::string& path);

}  // namespace hpsweep
