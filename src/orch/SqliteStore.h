#pragma once
// SqliteStore: the Store in one SQLite database file. One table per
// collection: (id TEXT PRIMARY KEY, doc TEXT NOT NULL, updated_at INTEGER
// NOT NULL), updated_at in unix milliseconds.
//
// Durability: WAL journal with synchronous=FULL, so apply() returns ok only
// once its transaction is on disk (a state transition is acknowledged only
// when it would survive a power cut).
//
// Schema: PRAGMA user_version counts the migration steps that ran (see
// kMigrations in SqliteStore.cpp for how to add one). A database written by a
// newer build (a higher version than this build knows) is refused, never
// guessed at.
//
// Threading: not thread-safe; one thread at a time, which may change between
// calls (the connection is opened SQLITE_OPEN_NOMUTEX, SQLite's multi-thread
// mode). Every method blocks on disk I/O.

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "orch/Store.h"

struct sqlite3;
struct sqlite3_stmt;

namespace sbx::orch {

class SqliteStore : public Store {
 public:
  explicit SqliteStore(std::string path);
  // Closes the connection.
  ~SqliteStore() override;
  SqliteStore(const SqliteStore&) = delete;
  SqliteStore& operator=(const SqliteStore&) = delete;

  // Creates missing parent directories (0700) and the file (0600; an
  // existing file is chmod'ed to 0600), opens it, sets the pragmas and runs
  // the pending migrations, each in its own transaction. On failure the
  // store stays closed. A no-op when already open.
  Status open() override;
  // Errors: `unknown collection "x"`, or "sqlite <path>: loadAll: <why>".
  Result<std::vector<StoreDocument>> loadAll(const std::string& collection) override;
  // BEGIN IMMEDIATE, the changes through cached prepared statements, COMMIT;
  // on any failure ROLLBACK and the error: `unknown collection "x"` (checked
  // per change, so nothing of the batch is written), or
  // "sqlite <path>: apply: <why>". An empty list is ok and touches nothing.
  Status apply(const std::vector<StoreChange>& changes) override;

  // Finalizes the statements and closes the connection; open() may be
  // called again. Idempotent.
  void close();
  bool isOpen() const { return db_ != nullptr; }
  const std::string& path() const { return path_; }

  // The schema version this build migrates to (the number of migration
  // steps it knows).
  static int latestSchemaVersion();

 private:
  // Cached per collection, prepared once at open().
  struct Statements {
    sqlite3_stmt* put = nullptr;
    sqlite3_stmt* erase = nullptr;
    sqlite3_stmt* all = nullptr;
  };

  Status configure();
  Status migrate();
  Status prepareStatements();
  Status applyOne(const StoreChange& change, int64_t nowMs);
  Status exec(const char* sql, const std::string& op);
  Result<int> userVersion();
  void rollback();
  Error sqliteError(const std::string& op) const;
  Error notOpen(const std::string& op) const;
  Error newerSchema(int version) const;

  std::string path_;
  sqlite3* db_ = nullptr;
  std::array<Statements, 2> statements_;  // indexed like the collection list
};

}  // namespace sbx::orch
