// The one translation unit that compiles Asio (with its TLS part) and Beast (separate compilation keeps builds
// fast on two cores).
#include <boost/asio/impl/src.hpp>
#include <boost/asio/ssl/impl/src.hpp>  // TLS on the listeners (OpenSSL)
#include <boost/beast/src.hpp>
