# `systemd-analyze verify` on cairn's units, with ExecStart= pointing at the built
# cairn-server (the installed path does not exist in a build tree). Fails on any complaint.
# Run with cmake -P by the `systemd_units` test: -DSOURCE_DIR= -DWORK_DIR= -DSERVER=.
file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")
foreach(unit cairn.service cairn.socket)
  file(READ "${SOURCE_DIR}/packaging/${unit}" text)
  string(REPLACE "/usr/bin/cairn-server" "${SERVER}" text "${text}")
  file(WRITE "${WORK_DIR}/${unit}" "${text}")
endforeach()
execute_process(COMMAND systemd-analyze verify "${WORK_DIR}/cairn.service" "${WORK_DIR}/cairn.socket"
                RESULT_VARIABLE failed OUTPUT_VARIABLE out ERROR_VARIABLE out)
if(failed OR NOT out STREQUAL "")
  message(FATAL_ERROR "systemd-analyze verify (${failed}):\n${out}")
endif()
message(STATUS "systemd-analyze verify: cairn.service and cairn.socket are clean")
