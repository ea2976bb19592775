# The Debian packages (CPack DEB; scripts/package-deb.sh builds them):
# - cairn: cairn-server, cairnctl, cairn-load, the demo's page, /etc/cairn/cairn.toml (a
#   conffile), the systemd units, the maintainer scripts (a `cairn` system user, its
#   /var/lib/cairn, a generated admin token).
# - libcairn-dev: headers, the static libraries and the CMake package (find_package(cairn)).
# The service files go only into the package (EXCLUDE_FROM_ALL): a plain `cmake --install
# --prefix DIR` never writes to /etc or /lib.
set(_pkg ${PROJECT_SOURCE_DIR}/packaging)
# Debian wants a maintainer address on a real mail host: give yours when you build.
set(CAIRN_PACKAGE_MAINTAINER "cairn developers <cairn-developers@example.org>" CACHE STRING
  "the Maintainer of the Debian packages (name <address>)")
install(FILES ${_pkg}/cairn.toml DESTINATION /etc/cairn COMPONENT server EXCLUDE_FROM_ALL)
install(FILES ${_pkg}/cairn.service ${_pkg}/cairn.socket DESTINATION /lib/systemd/system
  COMPONENT server EXCLUDE_FROM_ALL)
install(DIRECTORY ${PROJECT_SOURCE_DIR}/public/ DESTINATION ${CMAKE_INSTALL_DATADIR}/cairn/public
  COMPONENT server EXCLUDE_FROM_ALL)
install(FILES ${_pkg}/copyright ${PROJECT_SOURCE_DIR}/README.md
  DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/cairn COMPONENT server EXCLUDE_FROM_ALL)
install(FILES ${_pkg}/copyright DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/libcairn-dev
  COMPONENT dev EXCLUDE_FROM_ALL)

# Debian wants a changelog in each package's doc directory, compressed reproducibly.
string(TIMESTAMP _when "%a, %d %b %Y %H:%M:%S +0000" UTC)
foreach(_name cairn libcairn-dev)
  set(_dir ${CMAKE_CURRENT_BINARY_DIR}/packaging/${_name})
  file(MAKE_DIRECTORY ${_dir})
  file(WRITE ${_dir}/changelog
    "${_name} (${PROJECT_VERSION}) unstable; urgency=medium\n\n"
    "  * Built from the cairn repository, commit ${CAIRN_GIT_COMMIT}.\n\n"
    " -- ${CAIRN_PACKAGE_MAINTAINER}  ${_when}\n")
  add_custom_command(OUTPUT ${_dir}/changelog.gz
    COMMAND gzip -9nf -k ${_dir}/changelog
    DEPENDS ${_dir}/changelog)
  list(APPEND _changelogs ${_dir}/changelog.gz)
endforeach()
add_custom_target(cairn_changelogs ALL DEPENDS ${_changelogs})
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/packaging/cairn/changelog.gz
  DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/cairn COMPONENT server EXCLUDE_FROM_ALL)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/packaging/libcairn-dev/changelog.gz
  DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/libcairn-dev COMPONENT dev EXCLUDE_FROM_ALL)

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME cairn)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_VENDOR "the cairn developers")
set(CPACK_PACKAGE_CONTACT "${CAIRN_PACKAGE_MAINTAINER}")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_COMPONENTS_ALL server dev)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_COMPRESSION_TYPE xz)

set(CPACK_DEBIAN_SERVER_PACKAGE_NAME cairn)
set(CPACK_DEBIAN_SERVER_PACKAGE_SECTION net)
set(CPACK_DEBIAN_SERVER_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_SERVER_PACKAGE_DEPENDS "adduser")
set(CPACK_COMPONENT_SERVER_DESCRIPTION "Durable-Object-style actor runtime
cairn gives every named instance of an actor class a single-threaded home,
its own SQLite database, WebSockets that survive the instance being evicted,
and alarms. This package holds the server with the seat-booking demo,
cairnctl (the admin API's command line), cairn-load (the load-test harness)
and the systemd units.")
set(CPACK_DEBIAN_SERVER_PACKAGE_CONTROL_EXTRA
  "${_pkg}/conffiles;${_pkg}/postinst;${_pkg}/prerm;${_pkg}/postrm")
set(CPACK_DEBIAN_SERVER_PACKAGE_CONTROL_STRICT_PERMISSION TRUE)

set(CPACK_DEBIAN_DEV_PACKAGE_NAME libcairn-dev)
set(CPACK_DEBIAN_DEV_PACKAGE_SECTION libdevel)
set(CPACK_DEBIAN_DEV_PACKAGE_DEPENDS
  "libcaf-dev, libboost-dev, nlohmann-json3-dev, libsqlite3-dev, libssl-dev, libspdlog-dev, libfmt-dev, libsystemd-dev, pkg-config")
set(CPACK_COMPONENT_DEV_DESCRIPTION "Durable-Object-style actor runtime: development files
Headers, static libraries and the CMake package of cairn: find_package(cairn),
then link cairn::runtime and cairn::gateway to build a server with your own
actor classes.")
# Static libraries without their debugging sections, and the programs' manual pages.
set(CPACK_PRE_BUILD_SCRIPTS ${PROJECT_SOURCE_DIR}/packaging/finish_staging.cmake)
include(CPack)
