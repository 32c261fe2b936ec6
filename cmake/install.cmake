# `cmake --install BUILD --prefix P`: what a site installs once and users load as a module.
#   P/bin/hpsweep                     the tool (RPATH $ORIGIN/../lib: the prefix can move)
#   P/lib/libhpsweep.so*              the library, P/include/hpsweep/ its public headers
#   P/lib/cmake/hpsweep/              find_package(hpsweep) -> hpsweep::hpsweep
#   P/lib/pkgconfig/hpsweep.pc        pkg-config --cflags --libs hpsweep
#   P/modulefiles/hpsweep/VERSION(.lua)  Environment Modules (Tcl) and Lmod (Lua)
#   P/share/hpsweep/{jobs,slurm,examples}, P/share/doc/hpsweep/   job files, Slurm templates, docs
include(CMakePackageConfigHelpers)

set(HPSWEEP_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/hpsweep)

install(TARGETS hpsweep_lib EXPORT hpsweepTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(TARGETS hpsweep RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(DIRECTORY include/hpsweep DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} FILES_MATCHING PATTERN "*.hpp")
install(FILES ${CMAKE_BINARY_DIR}/generated/hpsweep/version.hpp DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/hpsweep)

install(EXPORT hpsweepTargets NAMESPACE hpsweep:: DESTINATION ${HPSWEEP_CMAKE_DIR})
configure_package_config_file(cmake/templates/hpsweepConfig.cmake.in ${CMAKE_BINARY_DIR}/hpsweepConfig.cmake
  INSTALL_DESTINATION ${HPSWEEP_CMAKE_DIR})
write_basic_package_version_file(${CMAKE_BINARY_DIR}/hpsweepConfigVersion.cmake COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_BINARY_DIR}/hpsweepConfig.cmake ${CMAKE_BINARY_DIR}/hpsweepConfigVersion.cmake
  DESTINATION ${HPSWEEP_CMAKE_DIR})

# pkg-config and modulefiles find the prefix from their own location, so a moved prefix works.
configure_file(cmake/templates/hpsweep.pc.in ${CMAKE_BINARY_DIR}/hpsweep.pc @ONLY)
install(FILES ${CMAKE_BINARY_DIR}/hpsweep.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
configure_file(cmake/templates/modulefile.lua.in ${CMAKE_BINARY_DIR}/modulefiles/${PROJECT_VERSION}.lua @ONLY)
configure_file(cmake/templates/modulefile.tcl.in ${CMAKE_BINARY_DIR}/modulefiles/${PROJECT_VERSION} @ONLY)
install(FILES ${CMAKE_BINARY_DIR}/modulefiles/${PROJECT_VERSION}.lua ${CMAKE_BINARY_DIR}/modulefiles/${PROJECT_VERSION}
  DESTINATION modulefiles/hpsweep)

install(DIRECTORY jobs/ DESTINATION ${CMAKE_INSTALL_DATADIR}/hpsweep/jobs)
install(FILES slurm/sweep.sbatch slurm/ingest.sbatch slurm/README.md DESTINATION ${CMAKE_INSTALL_DATADIR}/hpsweep/slurm)
install(PROGRAMS slurm/local-cluster.sh DESTINATION ${CMAKE_INSTALL_DATADIR}/hpsweep/slurm)
install(PROGRAMS examples/quickstart.sh examples/train_stub.py DESTINATION ${CMAKE_INSTALL_DATADIR}/hpsweep/examples)
install(DIRECTORY examples/ingest DESTINATION ${CMAKE_INSTALL_DATADIR}/hpsweep/examples)
install(FILES README.md DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(DIRECTORY docs/ DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(DIRECTORY data/steplaw DESTINATION ${CMAKE_INSTALL_DATADIR}/hpsweep/data)

# `cpack -G TGZ` in the build folder: a relocatable archive of the install, for sites without root.
set(CPACK_GENERATOR TGZ)
set(CPACK_PACKAGE_NAME hpsweep)
set(CPACK_PACKAGE_VENDOR "hpsweep developers")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "Hyperparameter scaling-law sweeps on HPC clusters")
set(CPACK_PACKAGE_FILE_NAME "hpsweep-${PROJECT_VERSION}-${CMAKE_SYSTEM_NAME}-${CMAKE_SYSTEM_PROCESSOR}")
set(CPACK_INCLUDE_TOPLEVEL_DIRECTORY ON)
include(CPack)
