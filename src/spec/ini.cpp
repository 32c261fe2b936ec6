#include "hpsweep/spec/ini.hpp"

#include <boost/program_options/options_description.hpp>
#include <boost/program_options/parsers.hpp>
#include <fstream>
#include <map>
#include <sstream>

#include "hpsweep/util/error.hpp"
#include "hpsweep/util/text.hpp"

namespace hpsweep {
namespace po = boost::program_options;

std::string IniDocument::where(const IniEntry& e) const { return path + ":" + std::to_string(e.line); }

namespace {

// Boost's parser reports options in file order but without line numbers; walk the lines in
// step to recover them. Returns 0 when the line cannot be located.
struct LineLocator {
  std::vector<std::string> lines;
  std::size_t next = 0;
  std::string section;

  explicit LineLocator(const std::string& text) {
    std::istringstream in(text);
    std::string l;
    while (std::getline(in, l)) lines.push_back(l);
  }
  int locate(const std::string& full_key) {
    for (std::size_t i = next; i < lines.size(); ++i) {
      const std::string t = trim(lines[i]);
      if (t.empty() || t[0] == '#' || t[0] == ';') continue;
      if (t.front() == '[') {
        section = trim(t.substr(1, t.find(']') == std::string::npos ? t.npos : t.find(']') - 1));
        continue;
      }
      const auto eq = t.find('=');
      if (eq == std::string::npos) continue;
      const std::string key = trim(t.substr(0, eq));
      const std::string name = section.empty() ? key : section + "." + key;
      if (name == full_key) {
        next = i + 1;
        return static_cast<int>(i + 1);
      }
    }
    return 0;
  }
  int find_text(const std::string& needle) const {
    for (std::size_t i = 0; i < lines.size(); ++i)
      if (!needle.empty() && lines[i].find(needle) != std::string::npos) return static_cast<int>(i + 1);
    return 0;
  }
};

}  // namespace

IniDocument parse_ini(const std::string& text, const std::string& path) {
  IniDocument doc;
  doc.path = path;
  doc.text = text;
  LineLocator locator(text);
  po::parsed_options parsed(nullptr);
  try {
    std::istringstream in(text);
    po::options_description none;  // every key is collected as unregistered and validated by JobSpec
    parsed = po::parse_config_file(in, none, /*allow_unregistered=*/true);
  } catch (const po::invalid_config_file_syntax& e) {
    // Boost puts the offending line between the first and the last quote of its message.
    const std::string what = e.what();
    const auto a = what.find('\''), b = what.rfind('\'');
    const std::string bad = a != std::string::npos && b > a ? what.substr(a + 1, b - a - 1) : what;
    const int line = locator.find_text(bad);
    throw InputError(path + ":" + std::to_string(line) + ": invalid line '" + bad +
                     "' (expected 'key = value', '[section]' or a '#' comment)");
  } catch (const po::error& e) {
    throw InputError(path + ": " + e.what());
  }
  std::map<std::string, int> seen;
  for (const auto& opt : parsed.options) {
    IniEntry e;
    const std::string& name = opt.string_key;
    const auto dot = name.rfind('.');
    e.section = dot == std::string::npos ? "" : name.substr(0, dot);
    e.key = dot == std::string::npos ? name : name.substr(dot + 1);
    e.value = opt.value.empty() ? "" : trim(opt.value.front());
    e.line = locator.locate(name);
    if (auto it = seen.find(name); it != seen.end())
      throw InputError(doc.where(e) + ": [" + e.section + "] " + e.key + " is given twice (first at line " +
                       std::to_string(it->second) + ")");
    seen.emplace(name, e.line);
    doc.entries.push_back(std::move(e));
  }
  return doc;
}

IniDocument read_ini_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError("cannot read job file '" + path + "'");
  std::ostringstream ss;
  ss << in.rdbuf();
  return parse_ini(ss.str(), path);
}

}  // namespace hpsweep
