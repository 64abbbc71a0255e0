#include "node/SandboxStore.h"

#include <doctest/doctest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "../TestUtil.h"
#include "reactor/WorkerPool.h"

using namespace sbx;
using namespace sbx::node;
namespace fs = std::filesystem;

namespace {
struct TempDir : test::TempDir {
  TempDir() : test::TempDir("sbx-store-test") {}
};

SandboxState sample(const std::string& id, int version) {
  SandboxSpec spec;
  spec.id = id;
  ContainerSpec c;
  c.name = "main";
  c.image = "alpine:3.20";
  c.resource.cpu = "100m";
  c.resource.memory = "64Mi";
  c.resource.cpuMillis = 100;
  c.resource.memoryBytes = 64 << 20;
  spec.containers.push_back(c);
  SandboxState s = newSandboxState(spec, "2026-11-28T00:00:00Z");
  s.version = static_cast<uint64_t>(version);
  return s;
}
}  // namespace

TEST_CASE("SandboxStore: atomic write, read back, list, remove") {
  TempDir tmp;
  SandboxStore store(tmp.path + "/sandboxes");
  REQUIRE(store.init().ok());
  REQUIRE(store.write("sbx-a", encodeStateFile(sample("sbx-a", 1))).ok());
  REQUIRE(store.write("sbx-a", encodeStateFile(sample("sbx-a", 2))).ok());
  REQUIRE(store.write("sbx-b", encodeStateFile(sample("sbx-b", 1))).ok());
  CHECK_FALSE(fs::exists(store.sandboxDir("sbx-a") + "/state.json.tmp"));
  CHECK(fs::is_directory(store.sandboxDir("sbx-a") + "/logs"));
  CHECK((fs::status(tmp.path + "/sandboxes").permissions() & fs::perms::others_read) == fs::perms::none);
  auto a = store.read("sbx-a");
  REQUIRE(a.ok());
  CHECK(a->version == 2);
  CHECK(store.listIds() == std::vector<std::string>{"sbx-a", "sbx-b"});

  // A torn or foreign file is reported, not fatal, and does not hide others.
  std::ofstream(store.sandboxDir("sbx-b") + "/state.json") << "{\"format\":1,";
  REQUIRE(store.prepare("sbx-c").ok());  // a directory without state (crash before first write)
  std::vector<std::string> problems;
  auto all = store.loadAll(problems);
  REQUIRE(all.size() == 1);
  CHECK(all[0].id() == "sbx-a");
  CHECK(problems.size() == 2);
  CHECK_FALSE(fs::exists(store.sandboxDir("sbx-c")));  // never accepted: removed
  CHECK(fs::exists(store.sandboxDir("sbx-b")));         // unreadable: kept for a human
  CHECK(store.read("missing").error().code == 404);

  REQUIRE(store.remove("sbx-a").ok());
  CHECK_FALSE(fs::exists(store.sandboxDir("sbx-a")));
  CHECK(store.remove("sbx-a").ok());
  CHECK_FALSE(store.remove("..").ok());
  CHECK_FALSE(store.remove("a/b").ok());
}

TEST_CASE("StatePersister: coalesces writes, last state wins, erase after writes") {
  TempDir tmp;
  EventLoop loop;
  WorkerPool pool(loop, {.threads = 2, .maxQueued = 64});
  SandboxStore store(tmp.path + "/sandboxes");
  REQUIRE(store.init().ok());
  StatePersister persister(store, pool);
  int done = 0;
  for (int v = 1; v <= 50; ++v) {
    persister.persist(sample("sbx-x", v), [&](Status st) {
      CHECK(st.ok());
      ++done;
    });
  }
  CHECK(test::runUntil(loop, [&] { return done == 50 && persister.inFlight() == 0; }));
  auto x = store.read("sbx-x");
  REQUIRE(x.ok());
  CHECK(x->version == 50);

  bool erased = false;
  persister.persist(sample("sbx-x", 51));
  persister.erase("sbx-x", [&](Status st) {
    CHECK(st.ok());
    erased = true;
  });
  CHECK(test::runUntil(loop, [&] { return erased && persister.inFlight() == 0; }));
  CHECK_FALSE(fs::exists(store.sandboxDir("sbx-x")));
}
