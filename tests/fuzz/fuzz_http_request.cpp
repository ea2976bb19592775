// libFuzzer target: the bytes of a whole HTTP request, parsed by Beast with the gateway's
// limits, then routed as the gateway routes it (the generic /objects/ route, the query routes,
// static files under a public directory). Nothing may crash, and a route never yields an
// actor name the runtime would refuse, nor a static file outside the public directory.
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "cairn/actor_id.hpp"
#include "cairn/limits.hpp"
#include "routes.hpp"
#include "static_files.hpp"

namespace http = boost::beast::http;

namespace {

const std::filesystem::path& public_dir() {
  static const std::filesystem::path dir = [] {
    auto d = std::filesystem::temp_directory_path() / ("cairn-fuzz-public-" + std::to_string(::getpid()));
    std::filesystem::create_directories(d / "sub");
    std::ofstream(d / "index.html") << "<html>";
    std::ofstream(d / "sub" / "app.js") << "1";
    return std::filesystem::canonical(d);
  }();
  return dir;
}

void check_name(const std::string& binding, const std::string& name) {
  // A name a route accepted must make an id, and its hex form is the only thing in a path.
  auto id = cairn::ActorId::make(binding, name);
  if (!id || id->hex().size() != 64 || id->name() != name) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const std::vector<cairn::gateway::Route> routes{{"/seats", "FLIGHT", "flightId"},
                                                         {"/websocket", "ECHO", "", "foo"},
                                                         {"/api/map", "MAP", "id", "", "default-map"}};
  static const std::vector<std::string> bindings{"FLIGHT", "COUNTER"};
  http::request_parser<http::string_body> parser;
  parser.header_limit(static_cast<std::uint32_t>(cairn::limits::max_http_header_bytes));
  parser.body_limit(cairn::limits::max_http_body_bytes);
  parser.eager(true);
  boost::beast::error_code ec;
  parser.put(boost::asio::buffer(data, size), ec);
  if (ec || !parser.is_header_done()) return 0;
  auto& request = parser.get();
  std::string target(request.target());
  if (auto object = cairn::gateway::match_object_route(bindings, target)) {
    if (*object) check_name((*object)->binding, (*object)->name);
    return 0;
  }
  cairn::Request probe;
  probe.target = target;
  if (auto matched = cairn::gateway::match_route(routes, probe)) {
    if (*matched) check_name((*matched)->route->binding, (*matched)->name);
    return 0;
  }
  auto file = cairn::gateway::resolve_static(public_dir(), std::string_view(target).substr(0, target.find('?')));
  if (file) {
    auto path = file->path.string();
    if (path.compare(0, public_dir().string().size(), public_dir().string()) != 0) std::abort();
  }
  return 0;
}
