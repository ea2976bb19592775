// The one translation unit that compiles Asio and Beast (separate compilation keeps builds
// fast on two cores).
#include <boost/asio/impl/src.hpp>
#include <boost/beast/src.hpp>
