#pragma once
// Which backends exist and which options each takes. The job parser validates [<kind>]
// sections against this table; the scheduler builds backends through make_backend().
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace hpsweep {

struct BackendOption {
  std::string key;
  std::string default_value;  // "" means required
  bool affects_result;        // part of the trial id when true
  std::string help;
  bool text = false;  // free text (kept verbatim) rather than a number
};

struct BackendKind {
  std::string name;
  bool available;  // false: planned, named here so the error can say so
  std::vector<BackendOption> options;
  // Checks the options as a whole (e.g. the command template); throws InputError.
  std::function<void(const std::map<std::string, std::string>&)> validate;
};

const std::vector<BackendKind>& backend_kinds();
const BackendKind* find_backend_kind(const std::string& name);

}  // namespace hpsweep
