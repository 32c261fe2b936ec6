# Spack recipe for hpsweep. Copy this folder into a Spack repository (`spack repo create`, then
# packages/hpsweep/) and `spack install hpsweep`. It mirrors the project's CMake options.
# Not exercised in this project's CI (no Spack and no network there): see README "Installing".
from spack.package import *


class Hpsweep(CMakePackage):
    """Hyperparameter scaling-law sweeps on HPC clusters: an MPI master/worker sweep of proxy
    runs into one HDF5 file, Step-Law-style fits with intervals, and muP transfer rules."""

    # The project has no public home yet: point `git` at your site's clone of the repository
    # (a path or URL), e.g. `spack edit hpsweep`.
    git = "file:///path/to/hpsweep"

    version("main", branch="main")

    variant("shared", default=True, description="Build libhpsweep as a shared library")
    variant("tests", default=False, description="Build the test suite (GoogleTest)")
    variant("march", default="none", values=("none", "x86-64-v3", "x86-64-v4", "native"), multi=False,
            description="-march for every target (HPSWEEP_MARCH); none = the compiler's default")

    depends_on("cmake@3.25:", type="build")
    depends_on("mpi")
    depends_on("hdf5~mpi")
    depends_on("eigen@3.3:")
    depends_on("openblas")  # the mlp trainer's GEMMs (found with pkg-config)
    depends_on("pkgconfig", type="build")
    depends_on("boost@1.74:+program_options")
    depends_on("intel-tbb")
    depends_on("zlib-api")
    depends_on("yaml-cpp")
    depends_on("simdjson")
    depends_on("googletest", when="+tests", type=("build", "test"))

    def cmake_args(self):
        args = [
            self.define_from_variant("BUILD_SHARED_LIBS", "shared"),
            self.define_from_variant("HPSWEEP_BUILD_TESTS", "tests"),
        ]
        march = self.spec.variants["march"].value
        args.append(self.define("HPSWEEP_MARCH", "" if march == "none" else march))
        return args
