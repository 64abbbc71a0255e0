#include "orch/SqliteStore.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <iterator>

#include "reactor/Fd.h"

namespace sbx::orch {

namespace {

// The only table names that ever reach SQL text: a collection name from a
// caller is looked up here, never interpolated.
constexpr const char* kCollections[] = {kNodesCollection, kSandboxesCollection};

// Schema migrations, oldest first: step i takes the schema from version i to
// i + 1, and PRAGMA user_version records how many steps ran.
//
// To add a migration, append a step here; never edit, reorder or remove a
// released one (databases in the field have run it). A new collection also
// goes into kCollections above and into Store.h. Each step runs in one
// transaction together with its user_version bump, so it is all or nothing;
// it therefore cannot use what SQLite refuses inside a transaction (VACUUM,
// PRAGMA journal_mode). PRAGMA foreign_keys is a no-op inside a transaction:
// a step that rebuilds a table (SQLite's ALTER TABLE is limited: create the
// new table, copy, drop, rename) sets PRAGMA defer_foreign_keys=ON and may
// check with PRAGMA foreign_key_check. latestSchemaVersion() follows this
// list, and an older build refuses a database a newer one migrated.
constexpr const char* kMigrations[] = {
    // 1: one table per collection.
    "CREATE TABLE nodes (id TEXT PRIMARY KEY, doc TEXT NOT NULL, updated_at INTEGER NOT NULL);"
    "CREATE TABLE sandboxes (id TEXT PRIMARY KEY, doc TEXT NOT NULL,"
    " updated_at INTEGER NOT NULL);",
};

int collectionIndex(const std::string& name) {
  for (size_t i = 0; i < std::size(kCollections); ++i) {
    if (name == kCollections[i]) return static_cast<int>(i);
  }
  return -1;
}

Error unknownCollection(const std::string& name) {
  return Error("unknown collection \"" + name + "\"");
}

int64_t unixMillis() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

std::string columnText(sqlite3_stmt* stmt, int column) {
  // sqlite3_column_text before sqlite3_column_bytes: the documented order
  // that makes the byte count match the returned pointer.
  const unsigned char* text = sqlite3_column_text(stmt, column);
  const int n = sqlite3_column_bytes(stmt, column);
  return text ? std::string(reinterpret_cast<const char*>(text), static_cast<size_t>(n))
              : std::string();
}

// Resets a cached statement on every way out, and drops its bindings: they
// point into the caller's strings (SQLITE_STATIC), which do not outlive the
// call.
class StatementReset {
 public:
  explicit StatementReset(sqlite3_stmt* stmt) : stmt_(stmt) {}
  ~StatementReset() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
  StatementReset(const StatementReset&) = delete;
  StatementReset& operator=(const StatementReset&) = delete;

 private:
  sqlite3_stmt* stmt_;
};

std::string sysError(const std::string& what) { return what + ": " + std::strerror(errno); }

// mkdir(0700) for each missing directory above `file`. Existing ones are
// left as they are (the parent may well be /var/lib or /tmp); the ones made
// here get exactly 0700 whatever the umask.
Status makeParentDirs(const std::string& file) {
  const std::filesystem::path parent = std::filesystem::path(file).parent_path();
  std::filesystem::path dir;
  for (const auto& part : parent) {
    dir /= part;
    if (::mkdir(dir.c_str(), 0700) == 0) {
      if (::chmod(dir.c_str(), 0700) != 0) return Error(sysError("chmod " + dir.string()));
    } else if (errno != EEXIST) {
      return Error(sysError("mkdir " + dir.string()));
    }
  }
  return {};
}

// Makes the database file exist with mode 0600 before SQLite opens it: SQLite
// would create it 0644 & ~umask, world-readable for a moment. The -wal and
// -shm files SQLite creates take the main file's mode.
//
// An existing file is only chmod'ed, never opened: closing a descriptor of
// our own on it would drop the POSIX locks another connection of this
// process holds on it (SQLite's documented hazard).
Status makeDatabaseFile(const std::string& path) {
  Fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (!fd && errno != EEXIST) return Error(sysError("create " + path));
  if (::chmod(path.c_str(), 0600) != 0) return Error(sysError("chmod " + path));
  return {};
}

}  // namespace

SqliteStore::SqliteStore(std::string path) : path_(std::move(path)) {}

SqliteStore::~SqliteStore() { close(); }

int SqliteStore::latestSchemaVersion() { return static_cast<int>(std::size(kMigrations)); }

Error SqliteStore::sqliteError(const std::string& op) const {
  return Error("sqlite " + path_ + ": " + op + ": " +
               (db_ ? sqlite3_errmsg(db_) : "out of memory"));
}

Error SqliteStore::newerSchema(int version) const {
  return Error("database " + path_ + " has schema version " + std::to_string(version) +
               ", newer than this build's " + std::to_string(latestSchemaVersion()));
}

Error SqliteStore::notOpen(const std::string& op) const {
  return Error("sqlite " + path_ + ": " + op + ": not open");
}

Status SqliteStore::exec(const char* sql, const std::string& op) {
  char* message = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &message) == SQLITE_OK) return {};
  Error err("sqlite " + path_ + ": " + op + ": " + (message ? message : sqlite3_errmsg(db_)));
  sqlite3_free(message);
  return err;
}

void SqliteStore::rollback() {
  // A failed statement may already have rolled the transaction back (SQLite
  // does so on SQLITE_FULL, SQLITE_IOERR, SQLITE_NOMEM...): a ROLLBACK then
  // would only add a second error. The original error is what the caller
  // gets either way.
  if (db_ && !sqlite3_get_autocommit(db_)) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
}

Status SqliteStore::open() {
  if (db_) return {};
  if (Status st = makeParentDirs(path_); !st.ok()) {
    return Error("sqlite " + path_ + ": open: " + st.message());
  }
  if (Status st = makeDatabaseFile(path_); !st.ok()) {
    return Error("sqlite " + path_ + ": open: " + st.message());
  }
  const int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
  if (sqlite3_open_v2(path_.c_str(), &db_, flags, nullptr) != SQLITE_OK) {
    Error err = sqliteError("open");
    close();  // SQLite hands back a handle even when opening failed
    return err;
  }
  Status st = configure();
  if (st.ok()) st = migrate();
  if (st.ok()) st = prepareStatements();
  if (!st.ok()) close();
  return st;
}

Status SqliteStore::configure() {
  // busy_timeout first: reading the version and switching to WAL need locks
  // another process may hold for a moment.
  if (Status st = exec("PRAGMA busy_timeout=5000", "open"); !st.ok()) return st;
  // A database from a newer build is refused before anything here writes to
  // it (journal_mode=WAL changes the file's header). migrate() checks again
  // under the write lock.
  Result<int> version = userVersion();
  if (!version.ok()) return version.error();
  if (*version > latestSchemaVersion()) return newerSchema(*version);
  // synchronous=FULL: in WAL mode NORMAL would be faster but may lose the
  // last commits on a power cut, and a transition must be durable once
  // acknowledged.
  static constexpr const char* kPragmas[] = {
      "PRAGMA journal_mode=WAL",
      "PRAGMA synchronous=FULL",
      "PRAGMA foreign_keys=ON",
  };
  for (const char* pragma : kPragmas) {
    if (Status st = exec(pragma, "open"); !st.ok()) return st;
  }
  return {};
}

Result<int> SqliteStore::userVersion() {
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(db_, "PRAGMA user_version", -1, &stmt, nullptr) != SQLITE_OK) {
    return sqliteError("read schema version");
  }
  int version = 0;
  const int rc = sqlite3_step(stmt);
  if (rc == SQLITE_ROW) version = sqlite3_column_int(stmt, 0);
  Result<int> out =
      rc == SQLITE_ROW ? Result<int>(version) : Result<int>(sqliteError("read schema version"));
  sqlite3_finalize(stmt);
  return out;
}

Status SqliteStore::migrate() {
  const int latest = latestSchemaVersion();
  for (;;) {
    // IMMEDIATE takes the write lock before the version is read: two
    // processes opening the same new file cannot both run a step.
    if (Status st = exec("BEGIN IMMEDIATE", "migrate"); !st.ok()) return st;
    Result<int> version = userVersion();
    if (!version.ok()) {
      rollback();
      return version.error();
    }
    if (*version == latest) return exec("COMMIT", "migrate");
    if (*version > latest) {
      rollback();
      return newerSchema(*version);
    }
    if (*version < 0) {  // never written by us: someone else's database
      rollback();
      return Error("database " + path_ + " has schema version " + std::to_string(*version) +
                   ", unknown to this build");
    }
    const std::string op = "migrate to version " + std::to_string(*version + 1);
    // PRAGMA takes no bound parameters; the number is ours, not input.
    const std::string bump = "PRAGMA user_version=" + std::to_string(*version + 1);
    Status st = exec(kMigrations[*version], op);
    if (st.ok()) st = exec(bump.c_str(), op);
    if (st.ok()) st = exec("COMMIT", op);
    if (!st.ok()) {
      rollback();
      return st;
    }
  }
}

Status SqliteStore::prepareStatements() {
  for (size_t i = 0; i < std::size(kCollections); ++i) {
    const std::string table = kCollections[i];
    const std::string sql[] = {
        "INSERT OR REPLACE INTO " + table + " (id, doc, updated_at) VALUES (?1, ?2, ?3)",
        "DELETE FROM " + table + " WHERE id = ?1",
        "SELECT id, doc FROM " + table + " ORDER BY id",
    };
    sqlite3_stmt** slots[] = {&statements_[i].put, &statements_[i].erase, &statements_[i].all};
    for (size_t k = 0; k < std::size(sql); ++k) {
      // PERSISTENT: a hint that the statement lives long (kept out of
      // SQLite's lookaside memory).
      if (sqlite3_prepare_v3(db_, sql[k].c_str(), -1, SQLITE_PREPARE_PERSISTENT, slots[k],
                             nullptr) != SQLITE_OK) {
        return sqliteError("open: prepare \"" + sql[k] + "\"");
      }
    }
  }
  return {};
}

void SqliteStore::close() {
  for (Statements& s : statements_) {
    for (sqlite3_stmt** stmt : {&s.put, &s.erase, &s.all}) {
      sqlite3_finalize(*stmt);  // a no-op on nullptr
      *stmt = nullptr;
    }
  }
  if (db_) {
    // _v2: never fails for statements left unfinalized (there are none), it
    // would close once they are.
    sqlite3_close_v2(db_);
    db_ = nullptr;
  }
}

Result<std::vector<StoreDocument>> SqliteStore::loadAll(const std::string& collection) {
  const int index = collectionIndex(collection);
  if (index < 0) return unknownCollection(collection);
  if (!db_) return notOpen("loadAll");
  sqlite3_stmt* stmt = statements_[static_cast<size_t>(index)].all;
  StatementReset reset(stmt);
  std::vector<StoreDocument> docs;
  int rc;
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    docs.push_back(StoreDocument{columnText(stmt, 0), columnText(stmt, 1)});
  }
  if (rc != SQLITE_DONE) return sqliteError("loadAll");
  return docs;
}

Status SqliteStore::apply(const std::vector<StoreChange>& changes) {
  if (!db_) return notOpen("apply");
  if (changes.empty()) return {};
  const int64_t now = unixMillis();
  if (Status st = exec("BEGIN IMMEDIATE", "apply"); !st.ok()) return st;
  for (const StoreChange& change : changes) {
    if (Status st = applyOne(change, now); !st.ok()) {
      rollback();
      return st;
    }
  }
  if (Status st = exec("COMMIT", "apply"); !st.ok()) {
    rollback();
    return st;
  }
  return {};
}

Status SqliteStore::applyOne(const StoreChange& change, int64_t nowMs) {
  // Checked here, inside the transaction, rather than before BEGIN: a bad
  // change anywhere in the batch then goes through the same ROLLBACK as any
  // other failure, one path to get right.
  const int index = collectionIndex(change.collection);
  if (index < 0) return unknownCollection(change.collection);
  const Statements& s = statements_[static_cast<size_t>(index)];
  const bool put = change.kind == StoreChange::Kind::Put;
  sqlite3_stmt* stmt = put ? s.put : s.erase;
  StatementReset reset(stmt);
  int rc =
      sqlite3_bind_text64(stmt, 1, change.id.data(), change.id.size(), SQLITE_STATIC, SQLITE_UTF8);
  if (rc == SQLITE_OK && put) {
    rc = sqlite3_bind_text64(stmt, 2, change.doc.data(), change.doc.size(), SQLITE_STATIC,
                             SQLITE_UTF8);
  }
  if (rc == SQLITE_OK && put) rc = sqlite3_bind_int64(stmt, 3, nowMs);
  if (rc == SQLITE_OK) rc = sqlite3_step(stmt);
  if (rc != SQLITE_DONE) return sqliteError("apply");
  return {};
}

}  // namespace sbx::orch
