# Run by CPack once it has installed the packages' files into its staging directory, before
# it builds the packages (CPACK_PRE_BUILD_SCRIPTS):
# - strips the debugging sections off the static libraries (CPACK_STRIP_FILES strips only
#   programs) and the .comment sections off the programs, as Debian's dh_strip does;
# - writes a manual page for each program with help2man, from the staged program itself (its
#   --help and --version), so the defaults it shows are the installed ones.
set(stage "${CPACK_TEMPORARY_INSTALL_DIRECTORY}")
file(GLOB_RECURSE libraries "${stage}/*.a")
foreach(library IN LISTS libraries)
  execute_process(COMMAND strip --strip-debug --remove-section=.comment --enable-deterministic-archives "${library}"
                  RESULT_VARIABLE failed)
  if(failed)
    message(FATAL_ERROR "strip --strip-debug ${library} failed")
  endif()
endforeach()

# The programs' .comment sections (compiler versions), as dh_strip removes them.
file(GLOB programs "${stage}/*/usr/bin/*")
foreach(program IN LISTS programs)
  execute_process(COMMAND strip --remove-section=.comment "${program}" RESULT_VARIABLE failed)
  if(failed)
    message(FATAL_ERROR "strip --remove-section=.comment ${program} failed")
  endif()
endforeach()

set(summaries
  "cairn-server=the cairn actor runtime's server, with the seat-booking demo"
  "cairnctl=the command line of cairn's admin API"
  "cairn-load=load tests against a cairn server")
foreach(entry IN LISTS summaries)
  string(REPLACE "=" ";" parts "${entry}")
  list(GET parts 0 program)
  list(GET parts 1 summary)
  file(GLOB binaries "${stage}/*/usr/bin/${program}")
  if(NOT binaries)
    continue()
  endif()
  list(GET binaries 0 binary)
  get_filename_component(usr "${binary}" DIRECTORY)
  get_filename_component(usr "${usr}" DIRECTORY)
  get_filename_component(root "${usr}" DIRECTORY)
  execute_process(COMMAND help2man --no-info --no-discard-stderr --name "${summary}" "${binary}"
                  OUTPUT_VARIABLE page RESULT_VARIABLE failed)
  if(failed)
    message(FATAL_ERROR "help2man ${program} failed")
  endif()
  # Staged paths as installed (groff escapes the dashes).
  string(REPLACE "-" "\\-" escaped_root "${root}")
  string(REPLACE "${escaped_root}" "" page "${page}")
  string(REPLACE "${root}" "" page "${page}")
  file(MAKE_DIRECTORY "${usr}/share/man/man1")
  file(WRITE "${usr}/share/man/man1/${program}.1" "${page}")
  execute_process(COMMAND gzip -9nf "${usr}/share/man/man1/${program}.1" RESULT_VARIABLE failed)
  if(failed)
    message(FATAL_ERROR "gzip ${program}.1 failed")
  endif()
endforeach()
