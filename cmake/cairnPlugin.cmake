# cairn_add_actor_library(NAME SOURCES...): a shared library of actor classes that the stock
# cairn-server loads (`plugin = ["/path/libNAME.so"]` in its config; cairn/plugin.hpp).
#
# It is compiled with cairn's headers and links none of cairn's libraries: the server it is
# loaded into has them, and exports them to it. Only its entry point (CAIRN_PLUGIN) is
# visible from outside it; everything else is hidden, so two libraries never clash.
function(cairn_add_actor_library name)
  if(NOT ARGN)
    message(FATAL_ERROR "cairn_add_actor_library(${name}): no source files")
  endif()
  add_library(${name} MODULE ${ARGN})
  if(TARGET cairn::plugin)
    target_link_libraries(${name} PRIVATE cairn::plugin)
  else()
    target_link_libraries(${name} PRIVATE cairn_plugin)
  endif()
  set_target_properties(${name} PROPERTIES
    CXX_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON
    CXX_EXTENSIONS OFF
    PREFIX "lib")
  # Its own definitions bind to themselves: nothing in the server (which exports everything),
  # nor an older version of the same library loaded beside it, can take their place.
  target_link_options(${name} PRIVATE "LINKER:-Bsymbolic")
endfunction()
