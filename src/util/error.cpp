#include "hpsweep/util/error.hpp"

#include <cerrno>
#include <cstring>

namespace hpsweep {

void throw_system_error(const std::string& action, const std::string& path) {
  const int saved = errno;
  throw Error(action + " '" + path + "': " + std::strerror(saved));
}

}  // namespace hpsweep
