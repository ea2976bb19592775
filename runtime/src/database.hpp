// Database: one actor's SQLite connection, opened by its host and closed on reset or stop.
// Owns the Sql surface the actor uses and runs the host's own transaction statements.
#pragma once

#include <filesystem>
#include <memory>
#include <string_view>

#include "cairn/runtime.hpp"
#include "cairn/sql.hpp"

struct sqlite3;

namespace cairn {

class Database {
 public:
  // Opens (creating) `path` in WAL mode with exclusive locking, the durability's synchronous
  // level, Durable Objects' limits and the authorizer that guards user SQL. Throws SqlError.
  Database(const std::filesystem::path& path, Durability durability);
  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  Sql& sql() noexcept { return sql_; }

  // The host's statements: not subject to the user-SQL authorizer. Throw SqlError.
  void begin();
  void commit();
  void rollback() noexcept;
  void savepoint();
  void release();
  void rollback_to_savepoint();

 private:
  sqlite3* db_ = nullptr;
  Sql sql_;
};

}  // namespace cairn
