#pragma once
// What this build of hpsweep was made with, for `hpsweep version` and bug reports: the versions
// of its libraries (at build time, and MPI's at run time) and the instruction set its kernels use.
#include <string>

namespace hpsweep {

// One "name: value" line per item, ending in a newline.
std::string build_info();

}  // namespace hpsweep
