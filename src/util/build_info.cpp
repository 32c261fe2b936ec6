#include "hpsweep/util/build_info.hpp"

#include <H5public.h>
#include <mpi.h>

#include <tbb/version.h>
#include <Eigen/Core>
#include <boost/version.hpp>
#include <sstream>

#include "hpsweep/version.hpp"

namespace hpsweep {

namespace {

// The vector extensions this translation unit (and so every kernel: one -march for all targets)
// was compiled for; Eigen picks its SIMD path from the same macros.
std::string instruction_set() {
  std::string s;
#if defined(__AVX512F__)
  s = "AVX-512";
#elif defined(__AVX2__) && defined(__FMA__)
  s = "AVX2+FMA";
#elif defined(__AVX__)
  s = "AVX";
#elif defined(__SSE4_2__)
  s = "SSE4.2";
#elif defined(__SSE2__)
  s = "SSE2";
#elif defined(__ARM_NEON)
  s = "NEON";
#else
  s = "scalar";
#endif
  return s + " (Eigen: " + Eigen::SimdInstructionSetsInUse() + ")";
}

std::string mpi_library() {
  char text[MPI_MAX_LIBRARY_VERSION_STRING] = {};
  int length = 0;
  if (MPI_Get_library_version(text, &length) != MPI_SUCCESS) return "unknown";
  std::string s(text, static_cast<std::size_t>(length));
  const auto cut = s.find_first_of(",\n");  // "Open MPI v4.1.4, package: ..." -> "Open MPI v4.1.4"
  return cut == std::string::npos ? s : s.substr(0, cut);
}

}  // namespace

std::string build_info() {
  std::ostringstream o;
  o << "hpsweep: " << kToolVersion << " (sweep file schema " << kSchemaVersion << ")\n";
  o << "MPI: " << mpi_library() << " (standard " << MPI_VERSION << "." << MPI_SUBVERSION << ")\n";
  o << "HDF5: " << H5_VERS_MAJOR << "." << H5_VERS_MINOR << "." << H5_VERS_RELEASE << "\n";
  o << "Eigen: " << EIGEN_WORLD_VERSION << "." << EIGEN_MAJOR_VERSION << "." << EIGEN_MINOR_VERSION << "\n";
  o << "Boost: " << BOOST_VERSION / 100000 << "." << BOOST_VERSION / 100 % 1000 << "." << BOOST_VERSION % 100 << "\n";
  o << "TBB: " << TBB_VERSION_MAJOR << "." << TBB_VERSION_MINOR << "\n";
  o << "compiler: " << __VERSION__ << "\n";
  o << "kernels: " << instruction_set() << "\n";
  return o.str();
}

}  // namespace hpsweep
