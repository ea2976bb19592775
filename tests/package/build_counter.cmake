# Installs cairn from BUILD_DIR into WORK_DIR/prefix, then configures and builds
# examples/counter (SOURCE_DIR) and examples/chat beside it as outside projects against that
# prefix (each a program and a plugin, cairn_add_actor_library), with the same build type
# and flags (a Sanitize build's libraries need the sanitizers at link time).
# Run with cmake -P by the `package_build` test.
foreach(var BUILD_DIR SOURCE_DIR WORK_DIR BUILD_TYPE)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "build_counter.cmake needs -D${var}=...")
  endif()
endforeach()
string(TOUPPER "${BUILD_TYPE}" type)

function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    string(REPLACE ";" " " shown "${ARGN}")
    message(FATAL_ERROR "failed (${rc}): ${shown}")
  endif()
endfunction()

file(REMOVE_RECURSE "${WORK_DIR}")
run(${CMAKE_COMMAND} --install "${BUILD_DIR}" --prefix "${WORK_DIR}/prefix")
foreach(example counter chat)
  run(${CMAKE_COMMAND} -S "${SOURCE_DIR}/../${example}" -B "${WORK_DIR}/${example}"
      "-DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix"
      "-DCMAKE_BUILD_TYPE=${BUILD_TYPE}"
      "-DCMAKE_CXX_FLAGS_${type}=${CXX_FLAGS}"
      "-DCMAKE_EXE_LINKER_FLAGS_${type}=${LINK_FLAGS}"
      "-DCMAKE_MODULE_LINKER_FLAGS_${type}=${LINK_FLAGS}"
      "-DCMAKE_CXX_FLAGS=-Wall -Wextra -Werror")
  run(${CMAKE_COMMAND} --build "${WORK_DIR}/${example}" -j 2)
endforeach()
