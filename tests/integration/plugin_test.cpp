// Plugins (cairn/plugin.hpp): the stock cairn-server loads actor classes from shared libraries
// named in its config file, routes them as the file says, hands them their options, and
// refuses a library it cannot trust with one line and exit status 2.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <thread>
#include <string>
#include <vector>

#include "clients.hpp"
#include "run_program.hpp"
#include "server_process.hpp"
#include "temp_dir.hpp"
#include "wait.hpp"

using namespace cairn::testing;
using namespace std::chrono_literals;
using json = nlohmann::json;

namespace {

// Writes `text` to dir/cairn.toml; returns its path.
std::string config_file(const TempDir& dir, const std::string& text) {
  auto file = dir.path() / "cairn.toml";
  std::ofstream(file) << text;
  return file.string();
}

// cairn-server with this config file, expected to refuse to start: its output.
ProgramResult refused(const TempDir& dir, const std::string& config) {
  return run_program({"/usr/bin/env", "-u", "CAIRN_CONFIG", CAIRN_SERVER_PATH, "--config", config_file(dir, config),
                      "--port", "0", "--data-dir", (dir.path() / "data").string(), "--log-level", "warn"},
                     30s);
}

std::string toml_string(const std::string& path) { return "\"" + path + "\""; }

// The plugin `variable` names (the package test's, built outside the tree), else the build's.
std::string plugin(const char* variable, const char* built) {
  const char* given = std::getenv(variable);
  return given != nullptr && *given != 0 ? given : built;
}

// The next message of `type` on `socket` (others skipped), or null.
json next_of(WsClient& socket, const std::string& type) {
  for (int i = 0; i < 20; ++i) {
    auto message = socket.read(5000ms);
    if (!message) return nullptr;
    auto parsed = json::parse(*message, nullptr, false);
    if (parsed.is_object() && parsed.value("type", "") == type) return parsed;
  }
  return nullptr;
}

}  // namespace

TEST_CASE("plugins: the stock cairn-server serves the counter and chat examples loaded from a config file beside the demo over HTTP and WebSocket") {
  TempDir dir;
  auto counter = plugin("CAIRN_TEST_COUNTER_PLUGIN", CAIRN_COUNTER_PLUGIN);
  auto chat = plugin("CAIRN_TEST_CHAT_PLUGIN", CAIRN_CHAT_PLUGIN);
  MESSAGE("plugins " << counter << " and " << chat);
  auto config = config_file(dir, "plugin = [" + toml_string(counter) + ", " + toml_string(chat) +
                                     "]\n"
                                     "[bindings.COUNTER]\n"
                                     "objects = true\n"
                                     "routes = [\n"
                                     "  { path = \"/value\", name-param = \"name\", default-name = \"main\" },\n"
                                     "  { path = \"/increment\", name-param = \"name\", default-name = \"main\" },\n"
                                     "]\n"
                                     "[bindings.CHAT_ROOM]   # its page, beside the demo's; its routes stay the library's\n"
                                     "static = { prefix = \"/chat/\", dir = " + toml_string(CAIRN_CHAT_PUBLIC_DIR) + " }\n");
  auto start = [&] { return std::make_unique<ServerProcess>(dir.path() / "data", std::vector<std::string>{"--config", config}); };
  auto server = start();
  // The counter: by the config's routes and by the generic one (the library's default, kept).
  auto added = http_post(server->port(), "/increment?name=a", R"({"by": 2})");
  REQUIRE(added.status == 200);
  CHECK(json::parse(added.body)["value"] == 2);
  CHECK(json::parse(http_post(server->port(), "/objects/COUNTER/a/increment", "{}").body)["value"] == 3);
  CHECK(json::parse(http_post(server->port(), "/increment", "{}").body)["value"] == 1);  // "main"
  auto bad = http_post(server->port(), "/increment?name=a", R"({"by": "x"})");
  CHECK(bad.status == 400);  // the class's own errors, as compiled in
  // The demo, compiled in, is served as before.
  CHECK(http_get(server->port(), "/seats?flightId=PLUG-1").status == 200);
  // The chat rooms: its library's default routes, a WebSocket broadcast between two users.
  {
    WsClient ann(server->port(), "/api/chat?room=plugins&user=ann");
    REQUIRE(!next_of(ann, "history").is_null());
    WsClient bob(server->port(), "/api/chat?room=plugins&user=bob");
    REQUIRE(!next_of(bob, "history").is_null());
    REQUIRE(ann.send(R"({"text": "from a plugin"})"));
    auto heard = next_of(bob, "message");
    REQUIRE(!heard.is_null());
    CHECK(heard["user"] == "ann");
    CHECK(heard["text"] == "from a plugin");
    // Its page at /chat/, the demo's at /.
    auto read_file = [](const std::string& path) {
      std::ifstream in(path, std::ios::binary);
      return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    };
    auto page = http_get(server->port(), "/chat/");
    CHECK(page.status == 200);
    CHECK(page.body == read_file(std::string(CAIRN_CHAT_PUBLIC_DIR) + "/index.html"));
    CHECK(http_get(server->port(), "/chat/app.js").body == read_file(std::string(CAIRN_CHAT_PUBLIC_DIR) + "/app.js"));
    CHECK(http_get(server->port(), "/chat/../index.html").status == 404);
    CHECK(http_get(server->port(), "/").body == read_file(std::string(CAIRN_PUBLIC_DIR) + "/index.html"));
    auto history = http_get(server->port(), "/api/chat/history?room=plugins");
    REQUIRE(history.status == 200);
    CHECK(history.body.find("from a plugin") != std::string::npos);
  }
  // What the plugins' actors wrote is theirs after a restart.
  server.reset();
  server = start();
  CHECK(json::parse(http_get(server->port(), "/value?name=a").body)["value"] == 3);
  CHECK(http_get(server->port(), "/api/chat/history?room=plugins").body.find("from a plugin") != std::string::npos);
}

TEST_CASE("plugins: a binding's options table reaches its class's factory and its library's default route serves it") {
  TempDir dir;
  auto config = config_file(dir, "plugin = [" + toml_string(CAIRN_PROBE_PLUGIN) +
                                     "]\n"
                                     "[bindings.PROBE.options]\n"
                                     "greeting = \"hello\"\n"
                                     "seats = 3\n"
                                     "window = true\n"
                                     "rows = [1, 2]\n");
  ServerProcess server(dir.path() / "data", {"--config", config});
  auto got = http_get(server.port(), "/probe");
  REQUIRE(got.status == 200);
  auto body = json::parse(got.body);
  CHECK(body["options"] == json{{"greeting", "hello"}, {"seats", 3}, {"window", true}, {"rows", {1, 2}}});
  CHECK(body["path"] == "/probe");
  // The route is the library's default: no generic route unless it or the config asks.
  CHECK(http_get(server.port(), "/objects/PROBE/x/").status == 404);
  // --print-config writes the tables back, and what it prints is read again.
  auto printed = run_program({"/usr/bin/env", "-u", "CAIRN_CONFIG", CAIRN_SERVER_PATH, "--config", config, "--print-config"}, 30s);
  REQUIRE(printed.exit_status == 0);
  CHECK(printed.output.find("[bindings.PROBE.options]") != std::string::npos);
  TempDir again_dir;
  auto again = run_program({"/usr/bin/env", "-u", "CAIRN_CONFIG", CAIRN_SERVER_PATH, "--config",
                            config_file(again_dir, printed.output), "--print-config"},
                           30s);
  CHECK(again.exit_status == 0);
  CHECK(again.output == printed.output);
}

TEST_CASE("plugins: a library the server cannot trust and a config that names what is not there each stop it with exit 2 and one line saying why") {
  TempDir dir;
  auto plugins = [](std::vector<std::string> paths) {
    std::string out = "plugin = [";
    for (const auto& p : paths) out += toml_string(p) + ", ";
    return out + "]\n";
  };
  struct Case {
    std::string what;
    std::string config;
    std::vector<std::string> said;  // in the line
  };
  std::vector<Case> cases{
      {"another ABI", plugins({CAIRN_OTHER_ABI_PLUGIN}),
       {CAIRN_OTHER_ABI_PLUGIN, "built for cairn 0.0.1, cairn-abi 0, gcc 4", "but this server is cairn 0.1.0, cairn-abi 1", "rebuild it"}},
      {"no entry point", plugins({CAIRN_NO_ENTRY_PLUGIN}), {CAIRN_NO_ENTRY_PLUGIN, "no entry point cairn_plugin_v1"}},
      {"a missing symbol", plugins({CAIRN_UNRESOLVED_PLUGIN}),
       {CAIRN_UNRESOLVED_PLUGIN, "cannot load it", "undefined symbol", "cairn_test_no_such_function"}},
      {"no such file", plugins({"/nonexistent/libnothing.so"}), {"/nonexistent/libnothing.so: no such file"}},
      {"registration throws", plugins({CAIRN_PROBE_PLUGIN}) + "[bindings.PROBE.options]\nthrow = \"std\"\n",
       {CAIRN_PROBE_PLUGIN, "its registration failed: the probe was told to refuse"}},
      {"registration crashes", plugins({CAIRN_PROBE_PLUGIN}) + "[bindings.PROBE.options]\nthrow = \"abort\"\n",
       {CAIRN_PROBE_PLUGIN, "loading it or its registration crashed (signal 6", "in a probe process"}},
      {"registration throws an int", plugins({CAIRN_PROBE_PLUGIN}) + "[bindings.PROBE.options]\nthrow = \"int\"\n",
       {"its registration failed", "not a std::exception"}},
      {"a binding two libraries claim", plugins({CAIRN_COUNTER_PLUGIN, CAIRN_PROBE_PLUGIN}) + "[bindings.PROBE.options]\nalso = \"COUNTER\"\n",
       {CAIRN_PROBE_PLUGIN, std::string("binding COUNTER is registered by ") + CAIRN_COUNTER_PLUGIN + " already"}},
      {"a binding the server has", plugins({CAIRN_PROBE_PLUGIN}) + "[bindings.PROBE.options]\nalso = \"FLIGHT\"\n",
       {"binding FLIGHT is one of the server's own classes"}},
      {"a library's route to a binding not its own", plugins({CAIRN_PROBE_PLUGIN}) + "[bindings.PROBE.options]\nroute-to = \"FLIGHT\"\n",
       {"route /probe names binding 'FLIGHT', which this library has not registered"}},
      {"the same library twice", plugins({CAIRN_COUNTER_PLUGIN, CAIRN_COUNTER_PLUGIN}), {"named twice"}},
      {"a route to an unknown binding", "[bindings.NOPE]\nroutes = [{ path = \"/nope\", name-param = \"id\" }]\n",
       {"bindings.NOPE: no class is registered as NOPE (this server has FLIGHT)"}},
      {"an unknown key", plugins({CAIRN_COUNTER_PLUGIN}) + "[bindings.COUNTER]\nidle = 3\n",
       {"bindings.COUNTER: unknown key 'idle'"}},
      {"a route without a name", plugins({CAIRN_COUNTER_PLUGIN}) + "[bindings.COUNTER]\nroutes = [{ path = \"/c\" }]\n",
       {"bindings.COUNTER.routes[0]", "needs either a name parameter or a fixed name"}},
      {"a path routed twice", plugins({CAIRN_COUNTER_PLUGIN}) + "[bindings.COUNTER]\nroutes = [{ path = \"/seats\", name-param = \"id\" }]\n",
       {"/seats is routed to FLIGHT already"}},
      {"not TOML", plugins({CAIRN_COUNTER_PLUGIN}) + "[bindings.COUNTER\n", {"cairn.toml", "line 2"}},
      {"a route to the server's own path", plugins({CAIRN_COUNTER_PLUGIN}) + "[bindings.COUNTER]\nroutes = [{ path = \"/livez\", name-param = \"id\" }]\n",
       {"/livez is the server's own"}},
      {"a route with a query", plugins({CAIRN_COUNTER_PLUGIN}) + "[bindings.COUNTER]\nroutes = [{ path = \"/c?x=1\", name-param = \"id\" }]\n",
       {"a route's path is a path alone"}},
      {"a fixed name with a default", plugins({CAIRN_COUNTER_PLUGIN}) + "[bindings.COUNTER]\nroutes = [{ path = \"/c\", name = \"a\", default-name = \"b\" }]\n",
       {"a default name would never be used"}},
      {"options that are no table", plugins({CAIRN_PROBE_PLUGIN}) + "[bindings.PROBE]\noptions = 3\n", {"bindings.PROBE.options: must be a table"}},
      {"options for a compiled-in class", "[bindings.FLIGHT.options]\nhold-seconds = 5\n", {"FLIGHT is compiled into this program"}},
      {"a static prefix that is no directory path", plugins({CAIRN_COUNTER_PLUGIN}) + "[bindings.COUNTER]\nstatic = { prefix = \"/c\", dir = \"/tmp\" }\n",
       {"bindings.COUNTER.static: the prefix is a path that starts and ends with '/'"}},
      {"a static directory that is not there", plugins({CAIRN_COUNTER_PLUGIN}) + "[bindings.COUNTER]\nstatic = { prefix = \"/c/\", dir = \"/nonexistent/dir\" }\n",
       {"/nonexistent/dir is not a directory"}},
      {"a bad idle timeout", plugins({CAIRN_COUNTER_PLUGIN}) + "[bindings.COUNTER]\nidle-timeout = \"soon\"\n",
       {"bindings.COUNTER.idle-timeout: must be a duration"}},
      {"bindings as a key", plugins({CAIRN_COUNTER_PLUGIN}) + "bindings.COUNTER.objects = true\n",
       {"write bindings as [bindings.NAME] tables"}},
  };
  for (const auto& c : cases) {
    INFO(c.what);
    auto run = refused(dir, c.config);
    INFO(run.output);
    CHECK(run.exit_status == 2);
    auto text = run.output;
    while (!text.empty() && text.back() == '\n') text.pop_back();
    CHECK(text.find('\n') == std::string::npos);  // one line
    for (const auto& said : c.said) CHECK_MESSAGE(text.find(said) != std::string::npos, said);
  }
}

TEST_CASE("plugins: a reload loads a library's new version: a socket opened before gets the next broadcast from the new code and an alarm set before fires in it") {
  TempDir dir;
  auto library = dir.path() / "libversioned.so";
  // A deploy as package managers make one: the new file beside, then renamed over the old.
  auto deploy = [&](const char* built) {
    auto next = dir.path() / "libversioned.so.new";
    std::filesystem::copy_file(built, next, std::filesystem::copy_options::overwrite_existing);
    std::filesystem::rename(next, library);
  };
  deploy(CAIRN_VERSIONED_1_PLUGIN);
  std::ofstream(dir.path() / "token") << "the-admin-token-of-the-test\n";
  ServerProcess server(dir.path() / "data", {"--plugin", library.string(), "--admin-port", "0", "--admin-token-file",
                                             (dir.path() / "token").string()});
  HttpClient admin(server.admin_port());
  admin.header("Authorization", "Bearer the-admin-token-of-the-test");
  auto version_of = [&](const std::string& name) {
    auto got = http_get(server.port(), "/objects/VERSIONED/" + name + "/version");
    return got.status == 200 ? json::parse(got.body)["version"].get<int>() : -got.status;
  };

  WsClient socket(server.port(), "/objects/VERSIONED/room/ws");
  REQUIRE(socket.send("before"));
  CHECK(socket.read() == "v1 before");
  REQUIRE(http_get(server.port(), "/objects/VERSIONED/room/arm?ms=3000").status == 200);  // set by v1
  auto unchanged = admin.request(http::verb::post, "/admin/reload");
  REQUIRE(unchanged.status == 200);
  CHECK(json::parse(unchanged.body)["libraries"][0]["outcome"] == "unchanged");

  // Version 2, loaded on SIGHUP: new instances run it, and "room" (live) is evicted to wake on it.
  deploy(CAIRN_VERSIONED_2_PLUGIN);
  REQUIRE(::kill(server.pid(), SIGHUP) == 0);
  REQUIRE(eventually([&] { return version_of("other") == 2; }, 10000ms));
  REQUIRE(socket.send("after"));
  CHECK(socket.read() == "v2 after");  // the socket stayed open through it
  CHECK(socket.read(10000ms) == "alarm v2");  // the alarm v1 set fires in v2

  // Refused, each with the running version kept: one that adds a class, one of another ABI.
  deploy(CAIRN_VERSIONED_3_PLUGIN);
  auto adding = admin.request(http::verb::post, "/admin/reload");
  CHECK(adding.status == 422);
  auto row = json::parse(adding.body)["libraries"][0];
  CHECK(row["outcome"] == "refused");
  CHECK(row["reason"].get<std::string>().find("a reload cannot add or remove classes") != std::string::npos);
  // Asked again, the same file is not loaded again (every load stays in memory): the same answer.
  auto again = admin.request(http::verb::post, "/admin/reload");
  CHECK(again.status == 422);
  CHECK(json::parse(again.body)["libraries"][0]["reason"].get<std::string>().find("has not changed since") !=
        std::string::npos);
  // One that crashes while it registers: in the probe process, not in the server.
  deploy(CAIRN_VERSIONED_4_PLUGIN);
  auto crashing = admin.request(http::verb::post, "/admin/reload");
  CHECK(crashing.status == 422);
  CHECK(json::parse(crashing.body)["libraries"][0]["reason"].get<std::string>().find("crashed (signal 6") !=
        std::string::npos);
  deploy(CAIRN_OTHER_ABI_PLUGIN);
  auto cli = run_program({CAIRNCTL_PATH, "--url", "http://127.0.0.1:" + std::to_string(server.admin_port()),
                          "--token-file", (dir.path() / "token").string(), "reload"},
                         30s);
  CHECK(cli.exit_status != 0);
  CHECK(cli.output.find("built for cairn 0.0.1") != std::string::npos);
  REQUIRE(socket.send("still"));
  CHECK(socket.read() == "v2 still");
  CHECK(version_of("third") == 2);

  // cairnctl reload with version 1 again: its table says what happened.
  deploy(CAIRN_VERSIONED_1_PLUGIN);
  auto back = run_program({CAIRNCTL_PATH, "--url", "http://127.0.0.1:" + std::to_string(server.admin_port()),
                           "--token-file", (dir.path() / "token").string(), "reload"},
                          30s);
  INFO(back.output);
  CHECK(back.exit_status == 0);
  CHECK(back.output.find("reloaded") != std::string::npos);
  CHECK(version_of("room") == 1);
}

namespace {

// An answer with what differs from run to run (tokens, times, request ids) blanked.
json normalized(const HttpReply& reply) {
  auto body = json::parse(reply.body, nullptr, false);
  std::function<void(json&)> blank = [&](json& value) {
    if (value.is_object()) {
      for (auto& [key, inner] : value.items()) {
        if (key == "holdToken" || key == "bookingToken" || key == "expiresAt" || key == "heldUntil" ||
            key == "request_id") {
          inner = "*";
        } else {
          blank(inner);
        }
      }
    } else if (value.is_array()) {
      for (auto& inner : value) blank(inner);
    }
  };
  if (!body.is_discarded()) blank(body);
  return json{{"status", reply.status}, {"body", body.is_discarded() ? json(reply.body) : body}};
}

}  // namespace

TEST_CASE("plugins: with demo = false and Flight loaded as a plugin the server answers the demo's requests as the compiled-in demo does") {
  TempDir dir;
  auto config = config_file(dir, "demo = false\nplugin = [" + toml_string(CAIRN_FLIGHT_PLUGIN) +
                                     "]\n[bindings.FLIGHT.options]\nhold-seconds = 1\n");
  ServerProcess compiled(dir.path() / "compiled", {"--hold-seconds", "1"});
  ServerProcess plugged(dir.path() / "plugged", {"--config", config});
  auto script = [](std::uint16_t port) {
    std::vector<json> out;
    const std::string f = "?flightId=LX-7";
    out.push_back(normalized(http_get(port, "/seats" + f)));
    out.push_back(normalized(http_get(port, "/seats")));  // no flightId: 400
    out.push_back(normalized(http_post(port, "/hold-seat" + f, R"({"seatNumber":"3C"})")));
    out.push_back(normalized(http_post(port, "/hold-seat" + f, R"({"seatNumber":"3C"})")));  // 409
    out.push_back(normalized(http_post(port, "/release-seat" + f, R"({"seatNumber":"3C","holdToken":"00"})")));
    out.push_back(normalized(http_post(port, "/book-seat" + f, R"({"seatNumber":"1A","name":"Ann"})")));
    out.push_back(normalized(http_post(port, "/book-seat" + f, R"({"seatNumber":"1A","name":"Bob"})")));
    out.push_back(normalized(http_post(port, "/book-seat" + f, R"({"seatNumber":"99Z","name":"Cy"})")));
    out.push_back(normalized(http_post(port, "/cancel-booking" + f, R"({"seatNumber":"1A"})")));
    out.push_back(normalized(http_get(port, "/objects/FLIGHT/LX-7/seats")));
    out.push_back(normalized(http_get(port, "/ws" + f)));  // no upgrade: 426
    {
      WsClient socket(port, "/ws" + f);
      REQUIRE(socket.send(R"({"type":"getSeats"})"));
      auto seats = socket.read();
      REQUIRE(seats.has_value());
      out.push_back(normalized(HttpReply{200, *seats, "application/json"}));
      REQUIRE(http_post(port, "/book-seat" + f, R"({"seatNumber":"2B","name":"Dee"})").status == 200);
      auto told = socket.read();
      REQUIRE(told.has_value());
      out.push_back(normalized(HttpReply{200, *told, "application/json"}));
    }
    // The hold of 3C lapses after hold-seconds (1 s) and its alarm frees it.
    auto freed = eventually([&] { return http_get(port, "/seats" + f).body.find(R"("seatNumber":"3C","occupant":null,"state":"available")") != std::string::npos; }, 10000ms);
    out.push_back(json(freed));
    auto page = http_get(port, "/");
    out.push_back(json{{"status", page.status}, {"bytes", page.body.size()}});
    return out;
  };
  auto expected = script(compiled.port());
  auto got = script(plugged.port());
  REQUIRE(got.size() == expected.size());
  for (std::size_t i = 0; i < got.size(); ++i) CHECK_MESSAGE(got[i] == expected[i], "step " << i << ": " << got[i].dump());
  CHECK(expected[0]["status"] == 200);
  CHECK(expected[2]["status"] == 200);
  CHECK(expected[3]["status"] == 409);
  CHECK(expected.back()["status"] == 200);
}

TEST_CASE("plugins: a binding's own idle timeout evicts its instances while the others keep the server's") {
  TempDir dir;
  auto config = config_file(dir, "plugin = [" + toml_string(CAIRN_COUNTER_PLUGIN) +
                                     "]\nidle-timeout = \"1h\"\n[bindings.COUNTER]\nidle-timeout = \"300ms\"\n");
  ServerProcess server(dir.path() / "data", {"--config", config});
  auto live = [&] { return json::parse(http_get(server.port(), "/healthz").body)["live_instances"].get<int>(); };
  REQUIRE(http_get(server.port(), "/seats?flightId=IDLE-1").status == 200);
  REQUIRE(http_post(server.port(), "/objects/COUNTER/idle/increment", "{}").status == 200);
  CHECK(live() == 2);
  CHECK(eventually([&] { return live() == 1; }, 10000ms));  // the counter left, the flight stays
  std::this_thread::sleep_for(500ms);
  CHECK(live() == 1);
}
