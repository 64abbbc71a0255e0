#include "../TestUtil.h"
#include "orch/SqliteStore.h"

#include <doctest/doctest.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

using namespace sbx;
using namespace sbx::orch;
namespace fs = std::filesystem;

namespace {

struct TempDir : test::TempDir {
  TempDir() : test::TempDir("sbx-sqlite-test") {}
};

unsigned modeOf(const std::string& path) {
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  return st.st_mode & 07777;
}

// A connection of the test's own, to look under the store and to plant
// what only another program would write.
struct RawDb {
  sqlite3* db = nullptr;
  explicit RawDb(const std::string& path) { REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK); }
  ~RawDb() { sqlite3_close(db); }
  RawDb(const RawDb&) = delete;
  RawDb& operator=(const RawDb&) = delete;

  void exec(const std::string& sql) {
    char* err = nullptr;
    const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
    INFO(sql << ": " << (err ? err : ""));
    sqlite3_free(err);
    REQUIRE(rc == SQLITE_OK);
  }
  std::string text(const std::string& sql) {
    sqlite3_stmt* stmt = nullptr;
    REQUIRE(sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr) == SQLITE_OK);
    std::string out;
    if (sqlite3_step(stmt) == SQLITE_ROW) {
      const unsigned char* t = sqlite3_column_text(stmt, 0);
      out = t ? reinterpret_cast<const char*>(t) : "";
    }
    sqlite3_finalize(stmt);
    return out;
  }
};

std::vector<std::string> ids(const std::vector<StoreDocument>& docs) {
  std::vector<std::string> out;
  for (const auto& d : docs) out.push_back(d.id);
  return out;
}

}  // namespace

TEST_CASE("SqliteStore: open creates the directories (0700) and the file (0600), schema 1") {
  TempDir tmp;
  const std::string path = tmp.path + "/state/orch/sandboxd.db";
  SqliteStore store(path);
  CHECK_FALSE(store.isOpen());
  REQUIRE(store.open().ok());
  CHECK(store.isOpen());
  CHECK(store.open().ok());  // already open: a no-op
  CHECK(modeOf(tmp.path + "/state") == 0700);
  CHECK(modeOf(tmp.path + "/state/orch") == 0700);
  CHECK(modeOf(path) == 0600);
  CHECK(modeOf(tmp.path) == 0700);  // mkdtemp's, left as it was

  CHECK(SqliteStore::latestSchemaVersion() == 1);
  RawDb raw(path);
  CHECK(raw.text("PRAGMA user_version") == "1");
  CHECK(raw.text("PRAGMA journal_mode") == "wal");
  CHECK(raw.text("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN "
                 "('nodes', 'sandboxes')") == "2");
}

TEST_CASE("SqliteStore: an existing file is made 0600") {
  TempDir tmp;
  const std::string path = tmp.path + "/orch.db";
  {
    RawDb raw(path);
    raw.exec("CREATE TABLE other (x)");
  }
  ::chmod(path.c_str(), 0644);
  SqliteStore store(path);
  REQUIRE(store.open().ok());
  CHECK(modeOf(path) == 0600);
}

TEST_CASE("SqliteStore: put, overwrite, erase and loadAll round trip, ordered by id") {
  TempDir tmp;
  SqliteStore store(tmp.path + "/orch.db");
  REQUIRE(store.open().ok());
  const auto before = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  REQUIRE(store
              .apply({StoreChange::put("nodes", "node-b", R"({"name":"node-b"})"),
                      StoreChange::put("nodes", "node-c", R"({"name":"node-c"})"),
                      StoreChange::put("nodes", "node-a", R"({"name":"node-a","v":1})"),
                      StoreChange::put("sandboxes", "sbx-1", R"({"id":"sbx-1"})")})
              .ok());
  REQUIRE(store
              .apply({StoreChange::put("nodes", "node-a", R"({"name":"node-a","v":2})"),
                      StoreChange::erase("nodes", "node-c"),
                      StoreChange::erase("nodes", "never-there")})
              .ok());
  CHECK(store.apply({}).ok());

  auto nodes = store.loadAll("nodes");
  REQUIRE(nodes.ok());
  CHECK(ids(*nodes) == std::vector<std::string>{"node-a", "node-b"});
  CHECK((*nodes)[0].doc == R"({"name":"node-a","v":2})");
  CHECK((*nodes)[1].doc == R"({"name":"node-b"})");
  auto sandboxes = store.loadAll("sandboxes");
  REQUIRE(sandboxes.ok());
  REQUIRE(sandboxes->size() == 1);
  CHECK((*sandboxes)[0].id == "sbx-1");
  CHECK((*sandboxes)[0].doc == R"({"id":"sbx-1"})");

  RawDb raw(store.path());
  const long long updatedAt =
      std::stoll(raw.text("SELECT updated_at FROM nodes WHERE id = 'node-a'"));
  CHECK(updatedAt >= before);
  CHECK(updatedAt < before + 60 * 1000);

  REQUIRE(store.apply({StoreChange::erase("sandboxes", "sbx-1")}).ok());
  sandboxes = store.loadAll("sandboxes");
  REQUIRE(sandboxes.ok());
  CHECK(sandboxes->empty());
}

TEST_CASE("SqliteStore: apply is all or nothing") {
  TempDir tmp;
  SqliteStore store(tmp.path + "/orch.db");
  REQUIRE(store.open().ok());
  REQUIRE(store.apply({StoreChange::put("nodes", "kept", "{}")}).ok());

  SUBCASE("an unknown collection in the middle of the batch") {
    Status st = store.apply(
        {StoreChange::put("nodes", "a", "{}"), StoreChange::erase("nodes", "kept"),
         StoreChange::put("users", "u", "{}"), StoreChange::put("sandboxes", "s", "{}")});
    REQUIRE_FALSE(st.ok());
    CHECK(st.message() == "unknown collection \"users\"");
  }
  SUBCASE("SQLite refusing a change in the middle of the batch") {
    {
      // A trigger planted behind the store's back: a real constraint error
      // from inside SQLite, after earlier changes of the batch went in.
      RawDb raw(store.path());
      raw.exec(
          "CREATE TRIGGER refuse BEFORE INSERT ON sandboxes WHEN NEW.id = 'boom' "
          "BEGIN SELECT RAISE(ABORT, 'boom refused'); END");
    }
    Status st = store.apply(
        {StoreChange::put("nodes", "a", "{}"), StoreChange::erase("nodes", "kept"),
         StoreChange::put("sandboxes", "boom", "{}"), StoreChange::put("sandboxes", "s", "{}")});
    REQUIRE_FALSE(st.ok());
    CHECK(st.message() == "sqlite " + store.path() + ": apply: boom refused");
  }

  auto nodes = store.loadAll("nodes");
  REQUIRE(nodes.ok());
  CHECK(ids(*nodes) == std::vector<std::string>{"kept"});
  auto sandboxes = store.loadAll("sandboxes");
  REQUIRE(sandboxes.ok());
  CHECK(sandboxes->empty());
  // Rolled back, not left open: the next transaction goes through.
  REQUIRE(store.apply({StoreChange::put("nodes", "after", "{}")}).ok());
  nodes = store.loadAll("nodes");
  REQUIRE(nodes.ok());
  CHECK(ids(*nodes) == std::vector<std::string>{"after", "kept"});
}

TEST_CASE("SqliteStore: data survives close and reopen") {
  TempDir tmp;
  const std::string path = tmp.path + "/orch.db";
  {
    SqliteStore store(path);
    REQUIRE(store.open().ok());
    REQUIRE(store
                .apply({StoreChange::put("nodes", "n1", R"({"v":1})"),
                        StoreChange::put("sandboxes", "s1", R"({"v":2})")})
                .ok());
  }
  SqliteStore again(path);
  REQUIRE(again.open().ok());  // schema already at 1: no step runs again
  auto nodes = again.loadAll("nodes");
  REQUIRE(nodes.ok());
  REQUIRE(nodes->size() == 1);
  CHECK((*nodes)[0].doc == R"({"v":1})");

  again.close();
  again.close();  // idempotent
  CHECK_FALSE(again.loadAll("nodes").ok());
  CHECK(again.apply({StoreChange::put("nodes", "x", "{}")}).message() ==
        "sqlite " + path + ": apply: not open");
  REQUIRE(again.open().ok());
  auto sandboxes = again.loadAll("sandboxes");
  REQUIRE(sandboxes.ok());
  REQUIRE(sandboxes->size() == 1);
  CHECK((*sandboxes)[0].doc == R"({"v":2})");
  RawDb raw(path);
  CHECK(raw.text("PRAGMA user_version") == "1");
}

TEST_CASE("SqliteStore: a database from a newer build is refused") {
  TempDir tmp;
  const std::string path = tmp.path + "/orch.db";
  {
    RawDb raw(path);
    raw.exec("PRAGMA user_version = 99");
  }
  SqliteStore store(path);
  Status st = store.open();
  REQUIRE_FALSE(st.ok());
  CHECK(st.message() == "database " + path + " has schema version 99, newer than this build's " +
                            std::to_string(SqliteStore::latestSchemaVersion()));
  CHECK_FALSE(store.isOpen());
  CHECK_FALSE(store.loadAll("nodes").ok());
  RawDb raw(path);
  CHECK(raw.text("PRAGMA user_version") == "99");  // untouched: not even switched to WAL
  CHECK(raw.text("PRAGMA journal_mode") == "delete");
  CHECK(raw.text("SELECT count(*) FROM sqlite_master") == "0");
}

TEST_CASE("SqliteStore: a file that is not a database is refused, left as it was") {
  TempDir tmp;
  const std::string path = tmp.path + "/orch.db";
  const std::string garbage(200, 'x');  // longer than SQLite's 100-byte header
  {
    std::FILE* f = std::fopen(path.c_str(), "w");
    REQUIRE(f);
    std::fputs(garbage.c_str(), f);
    std::fclose(f);
  }
  SqliteStore store(path);
  Status st = store.open();
  REQUIRE_FALSE(st.ok());
  CHECK(st.message() == "sqlite " + path + ": read schema version: file is not a database");
  CHECK_FALSE(store.isOpen());
  CHECK(fs::file_size(path) == garbage.size());
}

TEST_CASE("SqliteStore: unknown collections are refused, never reach SQL") {
  TempDir tmp;
  SqliteStore store(tmp.path + "/orch.db");
  REQUIRE(store.open().ok());
  REQUIRE(store.apply({StoreChange::put("nodes", "n1", "{}")}).ok());

  auto users = store.loadAll("users");
  REQUIRE_FALSE(users.ok());
  CHECK(users.message() == "unknown collection \"users\"");
  const std::string evil = "nodes; DROP TABLE nodes; --";
  Status st = store.apply({StoreChange::erase(evil, "n1")});
  REQUIRE_FALSE(st.ok());
  CHECK(st.message() == "unknown collection \"" + evil + "\"");
  CHECK_FALSE(store.loadAll("").ok());
  CHECK_FALSE(store.loadAll("Nodes").ok());

  auto nodes = store.loadAll("nodes");
  REQUIRE(nodes.ok());
  CHECK(ids(*nodes) == std::vector<std::string>{"n1"});
}

TEST_CASE("SqliteStore: quotes, unicode and a 1 MiB document round-trip") {
  TempDir tmp;
  SqliteStore store(tmp.path + "/orch.db");
  REQUIRE(store.open().ok());

  std::string big;
  big.reserve(1 << 20);
  big = R"({"blob":")";
  for (size_t i = 0; big.size() < (1u << 20) - 2; ++i) big += static_cast<char>('a' + i % 26);
  big += "\"}";
  REQUIRE(big.size() == (1u << 20));

  const std::vector<StoreDocument> docs = {
      {"it's \"quoted\"", R"({"q":"it's \"quoted\"","sql":"'; DROP TABLE nodes; --"})"},
      {"'; DROP TABLE nodes; --", "{}"},
      {"ünïcödé-日本語-🚀", R"({"name":"ünïcödé-日本語-🚀","emoji":"🚀"})"},
      {"big", big},
      {"empty-doc", ""},
      {"back\\slash\ttab\nnewline", R"({"x":"\\"})"},
  };
  std::vector<StoreChange> changes;
  for (const auto& d : docs) changes.push_back(StoreChange::put("sandboxes", d.id, d.doc));
  REQUIRE(store.apply(changes).ok());

  auto loaded = store.loadAll("sandboxes");
  REQUIRE(loaded.ok());
  REQUIRE(loaded->size() == docs.size());
  // Ordered by id in byte order, like std::string's operator<.
  for (size_t i = 1; i < loaded->size(); ++i) CHECK((*loaded)[i - 1].id < (*loaded)[i].id);
  for (const auto& want : docs) {
    bool found = false;
    for (const auto& got : *loaded) {
      if (got.id != want.id) continue;
      found = true;
      CHECK(got.doc == want.doc);
    }
    CHECK_MESSAGE(found, want.id);
  }
  // Erase by the same awkward ids.
  std::vector<StoreChange> erases;
  for (const auto& d : docs) erases.push_back(StoreChange::erase("sandboxes", d.id));
  REQUIRE(store.apply(erases).ok());
  loaded = store.loadAll("sandboxes");
  REQUIRE(loaded.ok());
  CHECK(loaded->empty());
  auto nodes = store.loadAll("nodes");
  REQUIRE(nodes.ok());  // the table is still there
}
