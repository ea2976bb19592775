// ClusterAdmin: the admin API over a whole cluster (cluster mode). Any node's admin listener
// answers for any actor: an operation on one actor whose shard another node owns is made
// there (over that node's internal listener, /_cairn/admin/..., with the cluster token), and
// the list of a binding's actors by name merges every live node's list, in name order, with
// the same paging. The rest (bindings, backup) stays per node.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>

#include "cairn/cluster/membership.hpp"
#include "cairn/gateway/gateway.hpp"
#include "cairn/http.hpp"

namespace cairn::gateway {

inline constexpr std::string_view internal_admin_prefix = "/_cairn/admin/";

class ClusterAdmin {
 public:
  using Locate = std::function<ShardLocation(unsigned shard)>;
  ClusterAdmin(cluster::Membership& membership, Locate locate, std::string token,
               std::chrono::milliseconds timeout)
      : membership_(membership),
        locate_(std::move(locate)),
        token_(std::move(token)),
        timeout_(timeout) {}

  // The answer to admin request `request` if it concerns other nodes; nullopt if this node
  // answers it alone (`local` is how it does: the node's own AdminApi). Blocks on the
  // network: call it off the I/O threads.
  std::optional<Response> handle(const Request& request,
                                 const std::function<Response(const Request&)>& local) const;

 private:
  Response list(const Request& request, const std::function<Response(const Request&)>& local) const;
  Response forward(const Request& request, const ShardLocation& owner) const;

  cluster::Membership& membership_;
  Locate locate_;
  std::string token_;
  std::chrono::milliseconds timeout_;
};

}  // namespace cairn::gateway
