// cairnctl: the admin API's command line (README "Operating cairn"). Talks HTTP to a
// server's admin listener over HTTP or HTTPS (--url, --cacert; the token from --token-file or $CAIRN_ADMIN_TOKEN), prints
// tables (or --json), and exits non-zero after one line on stderr when anything fails.
// `restore` is local: it makes an empty data directory from a backup, with no server.
#include <CLI/CLI.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "cairn/cli/duration.hpp"
#include "cairn/cli/program.hpp"
#include "cairn/admin.hpp"
#include "top.hpp"

namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using json = nlohmann::json;

// A failure to report: one line, exit 1.
struct Failure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct Endpoint {
  std::string host;
  std::string port;
  bool tls = false;
};

Endpoint parse_url(const std::string& url) {
  bool tls = url.rfind("https://", 0) == 0;
  if (!tls && url.rfind("http://", 0) != 0) {
    throw Failure("--url must start with http:// or https:// (got '" + url + "')");
  }
  std::string rest = url.substr(tls ? 8 : 7);
  rest = rest.substr(0, rest.find('/'));
  auto colon = rest.rfind(':');
  if (colon == std::string::npos || colon + 1 == rest.size()) throw Failure("--url needs a port: http(s)://HOST:PORT");
  std::string host = rest.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  return {host, rest.substr(colon + 1), tls};
}

// Percent-encodes one path segment or query value.
std::string encode(std::string_view text) {
  static constexpr char digits[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += digits[c >> 4];
      out += digits[c & 15];
    }
  }
  return out;
}

// Runs one asynchronous operation to its end on `ioc`: the stream's expiry then bounds it
// (Beast's blocking calls ignore a tcp_stream's expiry, and a server that accepts and never
// answers would hold cairnctl forever).
template <class Start>
beast::error_code run_op(net::io_context& ioc, Start start) {
  beast::error_code result;
  start([&result](beast::error_code ec, auto&&...) { result = ec; });
  ioc.restart();
  ioc.run();
  return result;
}

class AdminClient {
 public:
  // `cacert`: the certificates an https:// server's must chain to (else the system's).
  // `timeout`: how long an answer may take (a backup of a large directory takes a while).
  AdminClient(std::string url, std::string token, std::string cacert, std::chrono::milliseconds timeout)
      : url_(std::move(url)), endpoint_(parse_url(url_)), token_(std::move(token)), cacert_(std::move(cacert)),
        timeout_(timeout) {}

  // The response to one request; an answer that is not 2xx becomes a Failure with the
  // server's error message.
  http::response<http::string_body> call(http::verb method, const std::string& target,
                                         std::string body = {}, const std::string& type = "application/json") {
    net::io_context ioc;
    beast::error_code ec;
    net::ip::tcp::resolver resolver(ioc);
    auto addresses = resolver.resolve(endpoint_.host, endpoint_.port, ec);
    if (ec) throw Failure("cannot resolve " + url_ + ": " + ec.message());
    if (!endpoint_.tls) {
      beast::tcp_stream stream(ioc);
      stream.expires_after(std::chrono::seconds(10));
      ec = run_op(ioc, [&](auto handler) { stream.async_connect(addresses, handler); });
      if (ec) throw Failure("cannot connect to " + url_ + ": " + ec.message());
      return exchange(ioc, stream, method, target, std::move(body), type);
    }
    net::ssl::context tls(net::ssl::context::tls_client);
    tls.set_verify_mode(net::ssl::verify_peer);
    try {
      if (cacert_.empty()) tls.set_default_verify_paths();
      else tls.load_verify_file(cacert_);
    } catch (const boost::system::system_error& e) {
      throw Failure("cannot read --cacert " + cacert_ + ": " + e.code().message());
    }
    beast::ssl_stream<beast::tcp_stream> stream(ioc, tls);
    boost::system::error_code not_ip;
    net::ip::make_address(endpoint_.host, not_ip);
    if (not_ip) SSL_set_tlsext_host_name(stream.native_handle(), endpoint_.host.c_str());  // SNI
    stream.set_verify_callback(net::ssl::host_name_verification(endpoint_.host));
    beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(10));
    ec = run_op(ioc, [&](auto handler) { beast::get_lowest_layer(stream).async_connect(addresses, handler); });
    if (ec) throw Failure("cannot connect to " + url_ + ": " + ec.message());
    beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(10));
    ec = run_op(ioc, [&](auto handler) { stream.async_handshake(net::ssl::stream_base::client, handler); });
    if (ec) throw Failure("TLS with " + url_ + " failed: " + ec.message());
    return exchange(ioc, stream, method, target, std::move(body), type);
  }

  template <class Stream>
  http::response<http::string_body> exchange(net::io_context& ioc, Stream& stream, http::verb method,
                                             const std::string& target, std::string body, const std::string& type) {
    beast::error_code ec;
    http::request<http::string_body> request{method, target, 11};
    request.set(http::field::host, endpoint_.host.find(':') == std::string::npos ? endpoint_.host : "[" + endpoint_.host + "]");
    request.set(http::field::authorization, "Bearer " + token_);
    if (!body.empty()) request.set(http::field::content_type, type);
    request.body() = std::move(body);
    request.prepare_payload();
    beast::get_lowest_layer(stream).expires_after(timeout_);
    ec = run_op(ioc, [&](auto handler) { http::async_write(stream, request, handler); });
    if (ec) throw Failure("cannot send to " + url_ + ": " + ec.message());
    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(1ULL << 32);
    ec = run_op(ioc, [&](auto handler) { http::async_read(stream, buffer, parser, handler); });
    if (ec) throw Failure("no answer from " + url_ + ": " + ec.message());
    auto response = parser.release();
    if (response.result_int() >= 300) {
      auto error = json::parse(response.body(), nullptr, false);
      std::string message = error.is_object() && error.contains("error") ? error["error"].get<std::string>()
                                                                          : response.body();
      throw Failure(std::to_string(response.result_int()) + ": " + message);
    }
    return response;
  }

  json call_json(http::verb method, const std::string& target, std::string body = {}) {
    auto response = call(method, target, std::move(body));
    auto value = json::parse(response.body(), nullptr, false);
    if (value.is_discarded()) throw Failure("the server's answer is not JSON");
    return value;
  }

 private:
  std::string url_;
  Endpoint endpoint_;
  std::string token_;
  std::string cacert_;
  std::chrono::milliseconds timeout_;
};

std::string cell(const json& value) {
  std::string text = value.is_string() ? value.get<std::string>() : value.dump();
  for (char& c : text) {
    if (c == '\n' || c == '\t' || c == '\r') c = ' ';
  }
  if (text.size() > 60) text = text.substr(0, 57) + "...";
  return text;
}

// Prints rows under headers, each column as wide as its widest cell.
void print_table(const std::vector<std::string>& headers, const std::vector<std::vector<std::string>>& rows) {
  std::vector<std::size_t> width(headers.size());
  for (std::size_t i = 0; i < headers.size(); ++i) width[i] = headers[i].size();
  for (const auto& row : rows) {
    for (std::size_t i = 0; i < row.size() && i < width.size(); ++i) width[i] = std::max(width[i], row[i].size());
  }
  auto line = [&](const std::vector<std::string>& cells) {
    std::string out;
    for (std::size_t i = 0; i < headers.size(); ++i) {
      std::string text = i < cells.size() ? cells[i] : "";
      out += text;
      if (i + 1 < headers.size()) out += std::string(width[i] - text.size() + 2, ' ');
    }
    while (!out.empty() && out.back() == ' ') out.pop_back();
    std::cout << out << '\n';
  };
  line(headers);
  std::vector<std::string> rule;
  for (auto w : width) rule.push_back(std::string(w, '-'));
  line(rule);
  for (const auto& row : rows) line(row);
}

std::string actor_path(const std::string& binding, const std::string& name) {
  return "/admin/bindings/" + encode(binding) + "/actors/" + encode(name);
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Failure("cannot read " + path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

std::string token_from(const std::string& token_file) {
  std::string token;
  if (!token_file.empty()) {
    std::ifstream in(token_file);
    if (!in) throw Failure("cannot read --token-file " + token_file);
    std::getline(in, token);
  } else if (const char* env = std::getenv("CAIRN_ADMIN_TOKEN")) {
    token = env;
  }
  auto first = token.find_first_not_of(" \t\r");
  auto last = token.find_last_not_of(" \t\r");
  token = first == std::string::npos ? "" : token.substr(first, last - first + 1);
  if (token.empty()) throw Failure("no admin token: pass --token-file FILE or set CAIRN_ADMIN_TOKEN");
  return token;
}

// One command line (commands separated by ';') to HAProxy's runtime API on a Unix socket, in
// its non-interactive mode: it answers and closes. Returns what it answered.
std::string haproxy_command(const std::string& socket_path, const std::string& line) {
  net::io_context ioc;
  net::local::stream_protocol::socket socket(ioc);
  boost::system::error_code ec;
  socket.connect(net::local::stream_protocol::endpoint(socket_path), ec);
  if (ec) throw Failure("cannot connect to HAProxy's runtime API at " + socket_path + ": " + ec.message());
  net::write(socket, net::buffer(line + "\n"), ec);
  if (ec) throw Failure("cannot write to HAProxy's runtime API: " + ec.message());
  std::string answer;
  char chunk[4096];
  while (true) {
    std::size_t n = socket.read_some(net::buffer(chunk), ec);
    answer.append(chunk, n);
    if (ec) break;  // eof: HAProxy answered everything
  }
  return answer;
}

// Replaces map `map` of the HAProxy behind `socket_path` with `entries` atomically (a new
// version of the map, filled, then committed): requests see the old map or the new one.
void push_haproxy_map(const std::string& socket_path, const std::string& map,
                      const std::vector<std::pair<unsigned, std::string>>& entries) {
  auto prepared = haproxy_command(socket_path, "prepare map " + map);
  auto colon = prepared.find("New version created:");
  if (colon == std::string::npos) throw Failure("HAProxy refused 'prepare map " + map + "': " + prepared);
  std::string version = std::to_string(std::stoul(prepared.substr(colon + 20)));
  // HAProxy reads a command line into one buffer (16 kB by default): a few hundred per line.
  std::string line;
  auto flush = [&] {
    if (line.empty()) return;
    auto answer = haproxy_command(socket_path, line);
    if (answer.find_first_not_of(" \r\n") != std::string::npos) throw Failure("HAProxy refused a map entry: " + answer);
    line.clear();
  };
  for (const auto& [shard, node] : entries) {
    if (!line.empty()) line += ';';
    line += "add map @" + version + " " + map + " " + std::to_string(shard) + " " + node;
    if (line.size() > 8000) flush();
  }
  flush();
  auto committed = haproxy_command(socket_path, "commit map @" + version + " " + map);
  if (committed.find_first_not_of(" \r\n") != std::string::npos) throw Failure("HAProxy refused to commit the map: " + committed);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"cairnctl: operate a cairn server through its admin API"};
  app.require_subcommand(1);
  std::string url = std::getenv("CAIRN_ADMIN_URL") ? std::getenv("CAIRN_ADMIN_URL") : "http://127.0.0.1:8788";
  std::string token_file = std::getenv("CAIRN_ADMIN_TOKEN_FILE") ? std::getenv("CAIRN_ADMIN_TOKEN_FILE") : "";
  std::string cacert = std::getenv("CAIRN_CACERT") ? std::getenv("CAIRN_CACERT") : "";
  bool as_json = false;
  double timeout_s = 600;
  cairn::cli::add_duration(app, "--timeout", timeout_s, "how long an answer may take (a backup of much data takes long)")
      ->check(CLI::Range(0.1, 86400.0))
      ->capture_default_str();
  app.add_option("--url", url, "the admin listener, http:// or https:// ($CAIRN_ADMIN_URL)")->capture_default_str();
  app.add_option("--cacert", cacert,
                 "https: trust the certificates in this PEM file instead of the system's ($CAIRN_CACERT)")
      ->check(CLI::ExistingFile);
  app.add_option("--token-file", token_file, "file with the bearer token ($CAIRN_ADMIN_TOKEN_FILE; or $CAIRN_ADMIN_TOKEN)");
  app.add_flag("--json", as_json, "print the server's JSON instead of a table");

  std::string binding, name, sql, file, dir, prefix, after, data_dir;
  std::size_t limit = 100, max_rows = 100;
  bool all = false;

  auto* bindings = app.add_subcommand("bindings", "list the actor classes and how many actors each has");
  auto* actors = app.add_subcommand("actors", "list or inspect actors");
  actors->require_subcommand(1);
  auto* list = actors->add_subcommand("list", "list a binding's actors by name");
  list->add_option("binding", binding, "e.g. FLIGHT")->required();
  list->add_option("--prefix", prefix, "only names starting with this");
  list->add_option("--after", after, "start after this name (the next page)");
  list->add_option("--limit", limit, "names per page (1-1000)")->check(CLI::Range(1, 1000))->capture_default_str();
  list->add_flag("--all", all, "follow every page");
  auto* inspect = actors->add_subcommand("inspect", "one actor: live or hibernated, tables, sockets, alarms");
  inspect->add_option("binding", binding)->required();
  inspect->add_option("name", name)->required();
  auto* query = app.add_subcommand("sql", "run a read-only SQL query on one actor's database");
  query->add_option("binding", binding)->required();
  query->add_option("name", name)->required();
  query->add_option("query", sql, "one statement that only reads")->required();
  query->add_option("--max-rows", max_rows, "rows at most")->check(CLI::Range(1, 10000))->capture_default_str();
  auto* exporting = app.add_subcommand("export", "save one actor's database as a SQLite file");
  exporting->add_option("binding", binding)->required();
  exporting->add_option("name", name)->required();
  exporting->add_option("file", file, "where to write it")->required();
  auto* importing = app.add_subcommand("import", "load a SQLite file into a new or empty actor");
  importing->add_option("binding", binding)->required();
  importing->add_option("name", name)->required();
  importing->add_option("file", file, "the SQLite file")->required()->check(CLI::ExistingFile);
  auto* removing = app.add_subcommand("delete", "delete one actor: data, alarms, sockets");
  removing->add_option("binding", binding)->required();
  removing->add_option("name", name)->required();
  auto* evicting = app.add_subcommand("evict", "evict one actor from memory now");
  evicting->add_option("binding", binding)->required();
  evicting->add_option("name", name)->required();
  auto* reloading = app.add_subcommand(
      "reload", "load new versions of the server's plugin libraries: their live actors wake on the new code");
  auto* backup = app.add_subcommand("backup", "copy every database into DIR (on the server's machine) while serving");
  backup->add_option("dir", dir, "an absent or empty directory")->required();
  std::vector<std::string> restore_args;
  std::string restore_at;
  auto* restore = app.add_subcommand(
      "restore",
      "BINDING NAME --at TIME: bring one actor back to a moment from its history (through the server); "
      "DIR --data-dir D [--at TIME]: make an empty data directory from a backup (local; no server), "
      "every actor brought back to TIME if given");
  restore->add_option("args", restore_args, "BINDING NAME, or the backup's DIR")->required()->expected(1, 2);
  restore->add_option("--data-dir", data_dir, "with a backup: the data directory to fill (absent or empty)");
  restore->add_option("--at", restore_at, "RFC 3339 (2026-12-02T10:15:00Z) or Unix milliseconds");
  auto* metrics = app.add_subcommand("metrics", "print the server's metrics (Prometheus text)");
  cairn::ctl::TopOptions top_options;
  double top_interval_s = 2;
  auto* top = app.add_subcommand("top", "rates, latencies and the busiest, slowest and failing actors, refreshed "
                                        "(q quits; without a terminal, --iterations frames)");
  cairn::cli::add_duration(*top, "--interval", top_interval_s, "time between readings")
      ->check(CLI::Range(0.1, 3600.0))
      ->capture_default_str();
  top->add_option("--window", top_options.window_seconds, "seconds the actor lists cover (10-300)")
      ->check(CLI::Range(10, 300))
      ->capture_default_str();
  top->add_option("--iterations", top_options.iterations, "frames to draw, then exit (0: until q or Ctrl-C)")
      ->capture_default_str();
  auto* cluster = app.add_subcommand("cluster", "cluster mode: the nodes and their shards");
  cluster->require_subcommand(1);
  bool with_shards = false;
  auto* cluster_status = cluster->add_subcommand("status", "nodes, shards per node, unowned shards, as the server sees them");
  cluster_status->add_flag("--shards", with_shards, "also every shard's owner and epoch (and, with replication, its follower and in-sync set)");
  std::string haproxy_socket, haproxy_map, map_file;
  auto* haproxy = cluster->add_subcommand(
      "haproxy-map", "the shard map for HAProxy (\"<shard> <node id>\" per owned shard): printed, written to --write, "
                     "and/or loaded into a running HAProxy (--socket, --map); run it every few seconds to keep it current");
  haproxy->add_option("--socket", haproxy_socket, "HAProxy's runtime API socket (stats socket ... level admin)");
  haproxy->add_option("--map", haproxy_map, "the map's file name as HAProxy's config names it (with --socket)");
  haproxy->add_option("--write", map_file, "also write the map to this file (for HAProxy's next start)");

  // Global flags also after a subcommand: `cairnctl cluster status --url ...`.
  app.fallthrough();
  cairn::cli::add_version(app, "cairnctl");
  if (int status = cairn::cli::parse(app, argc, argv, "cairnctl"); status >= 0) return status;

  try {
    std::optional<std::int64_t> moment;
    if (restore->parsed() && !restore_at.empty()) {
      auto parsed = cairn::parse_moment(restore_at);
      if (!parsed) throw Failure(parsed.error().message);
      moment = *parsed;
    }
    if (restore->parsed() && restore_args.size() == 1) {
      if (data_dir.empty()) throw Failure("restore DIR needs --data-dir: the data directory to fill");
      if (!std::filesystem::is_directory(restore_args[0])) throw Failure(restore_args[0] + " is not a directory");
      auto restored = cairn::restore_backup(restore_args[0], data_dir, moment);
      if (!restored) throw Failure(restored.error().message);
      if (as_json) {
        std::cout << restored->dump(2) << '\n';
      } else {
        std::cout << "restored " << (*restored)["actors"] << " actors (" << (*restored)["bytes"] << " bytes) into "
                  << data_dir << (moment ? " as they were at " + cairn::format_moment(*moment) : std::string()) << '\n';
      }
      return 0;
    }
    if (restore->parsed()) {
      if (!moment) throw Failure("restore BINDING NAME needs --at: the moment to bring the actor back to");
      if (!data_dir.empty()) throw Failure("--data-dir is for restoring a backup (restore DIR --data-dir D)");
      binding = restore_args[0];
      name = restore_args[1];
    }
    AdminClient client(url, token_from(token_file), cacert,
                       std::chrono::milliseconds(static_cast<long long>(timeout_s * 1000)));
    auto print = [&](const json& value) { std::cout << value.dump(2) << '\n'; };
    if (bindings->parsed()) {
      auto answer = client.call_json(http::verb::get, "/admin/bindings");
      if (as_json) return print(answer), 0;
      std::vector<std::vector<std::string>> rows;
      for (const auto& b : answer["bindings"]) {
        rows.push_back({cell(b["binding"]), cell(b["actors"]), cell(b["live"]), cell(b["hibernated"])});
      }
      print_table({"BINDING", "ACTORS", "LIVE", "HIBERNATED"}, rows);
    } else if (list->parsed()) {
      std::vector<std::vector<std::string>> rows;
      json everything = json::array();
      std::optional<std::string> next = after;
      do {
        std::string target = "/admin/bindings/" + encode(binding) + "/actors?limit=" + std::to_string(limit) +
                             "&prefix=" + encode(prefix) + "&after=" + encode(*next);
        auto page = client.call_json(http::verb::get, target);
        for (const auto& a : page["actors"]) {
          everything.push_back(a);
          rows.push_back({cell(a["name"]), a["id"].get<std::string>().substr(0, 12), a["live"] ? "live" : "evicted",
                          cell(a["websockets"])});
        }
        next = page["next"].is_string() ? std::optional<std::string>(page["next"].get<std::string>()) : std::nullopt;
      } while (all && next);
      if (as_json) return print(everything), 0;
      print_table({"NAME", "ID", "STATE", "SOCKETS"}, rows);
      if (next) std::cerr << "(more: --after " << *next << ", or --all)\n";
    } else if (inspect->parsed()) {
      auto a = client.call_json(http::verb::get, actor_path(binding, name));
      if (as_json) return print(a), 0;
      std::string state = a["live"] ? "live" : (a["sockets"].empty() ? "evicted" : "hibernated");
      std::cout << a["binding"].get<std::string>() << " '" << a["name"].get<std::string>() << "' (" << a["id"].get<std::string>()
                << ")\n  state: " << state << "\n  database: " << a["database_bytes"] << " bytes\n  last event: "
                << (a["last_event_ms"].is_number() ? a["last_event_ms"].dump() + " ms since the epoch" : "none since start")
                << "\n  schema: "
                << (a.value("schema_version", 0) == 0
                        ? std::string("no migrations")
                        : "version " + std::to_string(a["schema_version"].get<std::int64_t>()) + " (" +
                              cell(a["migrations"].back()["name"]) + ")")
                << "\n  history: "
                << (!a.contains("history") || !a["history"].is_object()
                        ? std::string("none")
                        : std::string(a["history"].value("on", false) ? "kept" : "off") + ", " +
                              cell(a["history"]["changes"]) + " changes, " + cell(a["history"]["bytes"]) + " bytes" +
                              (a["history"]["restorable_from_ms"].is_number()
                                   ? ", restorable from " +
                                         cairn::format_moment(a["history"]["restorable_from_ms"].get<std::int64_t>())
                                   : std::string()))
                << "\n\n";
      std::vector<std::vector<std::string>> tables;
      for (const auto& t : a["tables"]) tables.push_back({cell(t["name"]), cell(t["type"]), t.contains("rows") ? cell(t["rows"]) : ""});
      print_table({"TABLE", "TYPE", "ROWS"}, tables);
      std::cout << '\n';
      std::vector<std::vector<std::string>> sockets;
      for (const auto& s : a["sockets"]) sockets.push_back({cell(s["id"]), cell(s["tags"]), cell(s["attachment"])});
      print_table({"SOCKET", "TAGS", "ATTACHMENT"}, sockets);
      std::cout << '\n';
      std::vector<std::vector<std::string>> alarms;
      for (const auto& al : a["alarms"]) alarms.push_back({cell(al["name"]), cell(al["due_ms"]), cell(al["retries"])});
      print_table({"ALARM", "DUE (ms since epoch)", "RETRIES"}, alarms);
    } else if (query->parsed()) {
      auto result = client.call_json(http::verb::post, actor_path(binding, name) + "/query",
                                     json{{"sql", sql}, {"max_rows", max_rows}}.dump());
      if (as_json) return print(result), 0;
      std::vector<std::string> headers;
      for (const auto& c : result["columns"]) headers.push_back(c.get<std::string>());
      std::vector<std::vector<std::string>> rows;
      for (const auto& row : result["rows"]) {
        std::vector<std::string> cells;
        for (const auto& v : row) cells.push_back(v.is_null() ? "NULL" : cell(v));
        rows.push_back(std::move(cells));
      }
      print_table(headers, rows);
      std::cout << "(" << rows.size() << (result["truncated"] ? "+ rows: over --max-rows)\n" : " rows)\n");
    } else if (exporting->parsed()) {
      auto response = client.call(http::verb::get, actor_path(binding, name) + "/export");
      std::ofstream out(file, std::ios::binary | std::ios::trunc);
      out << response.body();
      if (!out) throw Failure("cannot write " + file);
      std::cout << "exported " << response.body().size() << " bytes to " << file << '\n';
    } else if (importing->parsed()) {
      auto result = client.call(http::verb::put, actor_path(binding, name) + "/import", read_file(file),
                                "application/vnd.sqlite3");
      auto answer = json::parse(result.body(), nullptr, false);
      if (as_json) return print(answer), 0;
      std::cout << "imported " << file << " into " << binding << " '" << name << "'\n";
    } else if (removing->parsed()) {
      auto answer = client.call_json(http::verb::delete_, actor_path(binding, name));
      if (as_json) return print(answer), 0;
      std::cout << "deleted " << binding << " '" << name << "' (" << answer["sockets_closed"] << " sockets closed)\n";
    } else if (restore->parsed()) {
      auto answer = client.call_json(http::verb::post, actor_path(binding, name) + "/restore",
                                     json{{"at", *moment}}.dump());
      if (as_json) return print(answer), 0;
      std::cout << "restored " << binding << " '" << name << "' to " << answer["restored_to"].get<std::string>() << " ("
                << answer["changes_undone"] << " changes undone)\n";
    } else if (evicting->parsed()) {
      auto answer = client.call_json(http::verb::post, actor_path(binding, name) + "/evict");
      if (as_json) return print(answer), 0;
      std::cout << (answer["evicted"] ? "evicted " : "not live: ") << binding << " '" << name << "'\n";
    } else if (reloading->parsed()) {
      auto answer = client.call_json(http::verb::post, "/admin/reload");
      if (as_json) return print(answer), 0;
      std::vector<std::vector<std::string>> rows;
      for (const auto& l : answer["libraries"]) {
        rows.push_back({cell(l["library"]), cell(l["outcome"]), l.contains("bindings") ? cell(l["bindings"]) : "",
                        l.contains("evicted") ? cell(l["evicted"]) : ""});
      }
      print_table({"LIBRARY", "OUTCOME", "BINDINGS", "EVICTED"}, rows);
    } else if (backup->parsed()) {
      auto absolute = std::filesystem::absolute(dir).lexically_normal().string();
      auto answer = client.call_json(http::verb::post, "/admin/backup", json{{"dir", absolute}}.dump());
      if (as_json) return print(answer), 0;
      std::cout << "backed up " << answer["actors"] << " actors (" << answer["bytes"] << " bytes) to " << absolute
                << " in " << answer["seconds"] << " s\n";
    } else if (cluster_status->parsed()) {
      auto answer = client.call_json(http::verb::get, std::string("/admin/cluster") + (with_shards ? "?shards=1" : ""));
      if (as_json) return print(answer), 0;
      if (answer["node"].is_null()) throw Failure("the node has not joined its cluster yet");
      std::cout << "node " << answer["node"].get<std::string>() << (answer["fenced"] ? " (FENCED: it may serve nothing)" : "")
                << ", coordinator " << (answer["coordinator"].is_string() ? answer["coordinator"].get<std::string>() : "none")
                << ", " << answer["shards_unowned"] << " of 1024 shards without owner";
      if (answer.contains("shards_not_replicated")) {
        std::cout << ", " << answer["shards_not_replicated"] << " whose follower is not in sync";
      }
      std::cout << "\n\n";
      std::vector<std::vector<std::string>> rows;
      for (const auto& n : answer["nodes"]) rows.push_back({cell(n["node"]), cell(n["advertise"]), cell(n["shards"])});
      print_table({"NODE", "ADVERTISE", "SHARDS"}, rows);
      if (with_shards) {
        std::cout << '\n';
        std::vector<std::vector<std::string>> shards;
        bool replicated = !answer["shards"].empty() && answer["shards"][0].contains("follower");
        for (const auto& sh : answer["shards"]) {
          shards.push_back({cell(sh["shard"]), sh["node"].is_null() ? "-" : cell(sh["node"]),
                            sh["epoch"].is_null() ? "-" : cell(sh["epoch"])});
          if (replicated) {
            std::string in_sync;
            for (const auto& n : sh["in_sync"]) in_sync += (in_sync.empty() ? "" : ",") + n.get<std::string>();
            shards.back().push_back(sh["follower"].is_null() ? "-" : cell(sh["follower"]));
            shards.back().push_back(in_sync.empty() ? "-" : in_sync);
          }
        }
        if (replicated) {
          print_table({"SHARD", "NODE", "EPOCH", "FOLLOWER", "IN SYNC"}, shards);
        } else {
          print_table({"SHARD", "NODE", "EPOCH"}, shards);
        }
      }
    } else if (haproxy->parsed()) {
      if (!haproxy_socket.empty() && haproxy_map.empty()) throw Failure("--socket needs --map (the map's file name in HAProxy's config)");
      auto answer = client.call_json(http::verb::get, "/admin/cluster?shards=1");
      if (answer["node"].is_null()) throw Failure("the node has not joined its cluster yet");
      std::vector<std::pair<unsigned, std::string>> entries;
      std::string text;
      for (const auto& sh : answer["shards"]) {
        if (sh["node"].is_null()) continue;  // no owner: the config's default backend
        entries.emplace_back(sh["shard"].get<unsigned>(), sh["node"].get<std::string>());
        text += std::to_string(entries.back().first) + " " + entries.back().second + "\n";
      }
      if (!map_file.empty()) {
        // Written beside, then renamed: HAProxy never reads half a map.
        auto temporary = map_file + ".tmp";
        {
          std::ofstream out(temporary, std::ios::trunc);
          out << text;
          if (!out.flush()) throw Failure("cannot write " + temporary);
        }
        std::filesystem::rename(temporary, map_file);
      }
      if (!haproxy_socket.empty()) push_haproxy_map(haproxy_socket, haproxy_map, entries);
      if (map_file.empty() && haproxy_socket.empty()) std::cout << text;
      else std::cerr << entries.size() << " shards mapped\n";
    } else if (metrics->parsed()) {
      std::cout << client.call(http::verb::get, "/metrics").body();
    } else if (top->parsed()) {
      top_options.url = url;
      top_options.interval = std::chrono::milliseconds(static_cast<long long>(top_interval_s * 1000));
      // A reading may take a few intervals, not --timeout's 10 minutes: a hung server shows as
      // a failed reading, and Ctrl-C is not kept waiting.
      auto reading_timeout = std::min(std::chrono::milliseconds(static_cast<long long>(timeout_s * 1000)),
                                      std::max(std::chrono::milliseconds(5000), 3 * top_options.interval));
      AdminClient reader(url, token_from(token_file), cacert, reading_timeout);
      return cairn::ctl::run_top(top_options, [&](const std::string& target) {
        return reader.call(http::verb::get, target).body();
      });
    }
    return 0;
  } catch (const Failure& e) {
    std::cerr << "cairnctl: " << e.what() << '\n';
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "cairnctl: " << e.what() << '\n';
    return 1;
  }
}
