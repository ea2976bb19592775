#include "cluster_admin.hpp"

#include <algorithm>
#include <boost/beast/http.hpp>
#include <map>
#include <nlohmann/json.hpp>
#include <vector>

#include "cairn/actor_id.hpp"
#include "peer.hpp"

namespace cairn::gateway {

namespace http = boost::beast::http;
using nlohmann::json;
using Steady = std::chrono::steady_clock;

namespace {

constexpr std::string_view admin_prefix = "/admin/bindings/";

Response from_upstream(const http::response<http::string_body>& got) {
  Response out{static_cast<int>(got.result_int()), {}, got.body()};
  for (const auto* name : {"Content-Type", "Content-Disposition", "Retry-After", "Allow"}) {
    if (auto field = got.find(name); field != got.end())
      out.headers.emplace_back(name, std::string(field->value()));
  }
  return out;
}

}  // namespace

std::optional<Response> ClusterAdmin::handle(
    const Request& request, const std::function<Response(const Request&)>& local) const {
  std::string_view path = request.path();
  if (!path.starts_with(admin_prefix)) return std::nullopt;
  // <binding>/actors[/<name>[/<action>]]
  std::vector<std::string_view> parts;
  for (auto rest = path.substr(admin_prefix.size()); !rest.empty();) {
    auto slash = rest.find('/');
    parts.push_back(rest.substr(0, slash));
    if (slash == std::string_view::npos) break;
    rest = rest.substr(slash + 1);
  }
  if (parts.size() < 2 || parts[1] != "actors") return std::nullopt;
  if (parts.size() == 2)
    return request.method == "GET" ? std::optional<Response>(list(request, local)) : std::nullopt;
  auto binding = url_decode(parts[0], false);
  auto name = url_decode(parts[2], false);
  if (!binding || !name) return std::nullopt;  // the local API says what is wrong
  auto id = ActorId::make(*binding, *name);
  if (!id) return std::nullopt;
  auto where = locate_(id->shard());
  if (where.kind == ShardLocation::Kind::here) return std::nullopt;
  if (where.kind == ShardLocation::Kind::nowhere) {
    auto refused = Response::error(Code::unavailable,
                                   "actor " + *binding + "'s shard " + std::to_string(id->shard()) +
                                       " has no owner now (moving, or its node is down); "
                                       "ask again shortly");
    refused.headers.emplace_back("Retry-After", "1");
    return refused;
  }
  return forward(request, where);
}

Response ClusterAdmin::forward(const Request& request, const ShardLocation& owner) const {
  Peer peer(owner.host, owner.port);
  auto content_type = request.header("Content-Type").value_or("application/json");
  auto got = peer.send(http::string_to_verb(request.method), "/_cairn" + request.target,
                       request.body, token_, Steady::now() + timeout_, std::string(content_type));
  if (!got.ok()) {
    return Response::error(
        Code::unavailable,
        "node " + owner.node + ", the actor's owner, did not answer: " + got.error().message);
  }
  return from_upstream(got.value());
}

Response ClusterAdmin::list(const Request& request,
                            const std::function<Response(const Request&)>& local) const {
  // Every live node lists what it holds, with the same prefix, after and limit; the merge
  // keeps the first `limit` names. A name a node did not send (past its own limit) sorts
  // after all it sent, so it is after the merged page's last name too: paging on that name
  // misses nothing.
  std::size_t limit = 100;
  if (auto asked = request.query_param("limit"); asked && *asked) {
    try {
      limit = std::stoul(**asked);
    } catch (const std::exception&) {
      return local(request);  // the local API says what is wrong
    }
  }
  auto mine = local(request);
  if (mine.status != 200) return mine;  // a bad argument: the same everywhere
  std::map<std::string, json> merged;
  bool more = false;
  auto take = [&](const std::string& body) {
    auto page = json::parse(body, nullptr, false);
    if (!page.is_object() || !page.contains("actors") || !page["actors"].is_array()) return false;
    for (auto& actor : page["actors"]) {
      if (actor.is_object() && actor.contains("name") && actor["name"].is_string()) {
        merged.emplace(actor["name"].get<std::string>(), std::move(actor));
      }
    }
    if (page.contains("next") && !page["next"].is_null()) more = true;
    return true;
  };
  take(mine.body);
  json unreachable = json::array();
  const std::string& me = membership_.options().node_id;
  auto deadline = Steady::now() + timeout_;
  for (const auto& [node, url] : membership_.nodes()) {
    if (node == me) continue;
    auto endpoint = cluster::parse_endpoints(url);
    if (!endpoint.ok()) {
      unreachable.push_back(node);
      continue;
    }
    Peer peer(endpoint.value().front().host, endpoint.value().front().port);
    auto got = peer.send(http::verb::get, "/_cairn" + request.target, {}, token_, deadline,
                         "application/json");
    if (!got.ok() || got.value().result_int() != 200 || !take(got.value().body()))
      unreachable.push_back(node);
  }
  json actors = json::array();
  for (auto& [name, actor] : merged) {
    if (actors.size() == limit) {
      more = true;
      break;
    }
    actors.push_back(std::move(actor));
  }
  json out{{"actors", actors},
           {"next", more && !actors.empty() ? json(actors.back()["name"]) : json()},
           {"unreachable_nodes", std::move(unreachable)}};
  return Response::json(200, out);
}

}  // namespace cairn::gateway
