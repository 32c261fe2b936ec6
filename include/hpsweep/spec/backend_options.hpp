#pragma once
// Which backends exist and which options each takes: the schema of the [<kind>] sections. The
// job parser validates and canonicalises options against it; whole-option checks that need the
// backend's own code (the command template, the mlp settings) live in backends/ and run through
// validate_backend_options() (backends/backend.hpp).
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
};

const std::vector<BackendKind>& backend_kinds();
const BackendKind* find_backend_kind(const std::string& name);
// The [mlp] section: keys, defaults (canonical text), affects_result, help, text flag.
const std::vector<BackendOption>& mlp_backend_options();

}  // namespace hpsweep
