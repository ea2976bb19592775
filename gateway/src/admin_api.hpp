// AdminApi: the admin listener's routes over cairn::Admin, as plain request -> response
// (no networking types; the HTTP session runs it on the admin worker threads, as it
// blocks). The bearer token is checked by the session before this runs.
//
//   GET    /admin/bindings
//   GET    /admin/bindings/<B>/actors[?prefix=&after=&limit=]
//   GET    /admin/bindings/<B>/actors/<name>            inspect
//   DELETE /admin/bindings/<B>/actors/<name>            delete
//   POST   /admin/bindings/<B>/actors/<name>/query      {"sql": "...", "max_rows": n}
//   GET    /admin/bindings/<B>/actors/<name>/export     application/vnd.sqlite3
//   PUT    /admin/bindings/<B>/actors/<name>/import     body: a SQLite file
//   POST   /admin/bindings/<B>/actors/<name>/evict
//   POST   /admin/backup                                {"dir": "/absolute/path"}
#pragma once

#include <string_view>

#include "cairn/admin.hpp"
#include "cairn/http.hpp"

namespace cairn::gateway {

class AdminApi {
 public:
  explicit AdminApi(Runtime& runtime) : admin_(runtime) {}
  // nullopt if `request` is not an admin API route (the session tries its other routes).
  std::optional<Response> handle(const Request& request) const;

 private:
  Admin admin_;
};

// True if `header` (an Authorization value) is "Bearer <token>"; constant time in the
// token's length.
bool bearer_matches(std::string_view header, std::string_view token);

}  // namespace cairn::gateway
