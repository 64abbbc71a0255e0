// ContainerdClient and TaskEventStream against a real containerd (private to
// the test run), with runc and runsc.
#include "runtime/ContainerdClient.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <doctest/doctest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "../TestUtil.h"
#include "IntegrationEnv.h"
#include "reactor/EventLoop.h"
#include "runtime/OciSpec.h"
#include "runtime/TaskEventStream.h"

using namespace sbx;
using namespace sbx::runtime;
using namespace std::chrono_literals;

namespace {

std::string fetch(const std::string& url) {
  std::string body;
  CURL* c = curl_easy_init();
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION,
                   +[](char* p, size_t s, size_t n, void* ud) -> size_t {
                     static_cast<std::string*>(ud)->append(p, s * n);
                     return s * n;
                   });
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
  CURLcode rc = curl_easy_perform(c);
  curl_easy_cleanup(c);
  REQUIRE(rc == CURLE_OK);
  return body;
}

// Alive and not a zombie (an orphaned containerd may wait a moment to be
// reaped by init after it exited).
bool processAlive(pid_t pid) {
  if (::kill(pid, 0) != 0) return false;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(stat, line);
  size_t close = line.rfind(')');
  return close != std::string::npos && close + 2 < line.size() && line[close + 2] != 'Z';
}

// Snapshot removal right after a task's delete can race the shim's unmount
// of the rootfs on a loaded machine: retry briefly.
bool removeSnapshotSoon(ContainerdClient& c, const std::string& key) {
  for (int i = 0; i < 50; ++i) {
    if (c.removeSnapshot("overlayfs", key).ok()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return false;
}

std::string ns() { return "sbx-it-ctrd-" + std::to_string(::getpid()); }

ContainerdClient makeClient() {
  ContainerdOptions o;
  o.address = test::envOrFail("CONTAINERD_SOCK");
  o.namespaceName = ns();
  // Generous: a loaded 2-core CI machine can take seconds to start runsc.
  o.callTimeout = 60s;
  return ContainerdClient(o);
}

// Puts the busybox test layer into the content store and unpacks it into a
// committed snapshot named by its diff id; returns that name.
std::string baseSnapshot(ContainerdClient& c) {
  const std::string layer = test::envOrFail("IMAGE_BASE_LAYER");
  const std::string diffId = test::envOrFail("IMAGE_BASE_DIFF_ID");
  if (c.statSnapshot("overlayfs", diffId).ok()) return diffId;
  std::string blob = fetch("http://" + test::envOrFail("REGISTRY_ADDR") +
                           "/v2/library/busybox/blobs/" + layer);
  // The lease stays: it keeps the base snapshot from containerd's garbage
  // collector (which runs, among other times, when containerd restarts).
  auto lease = c.createLease("it-base", {});
  REQUIRE((lease.ok() || isAlreadyExists(lease.error())));
  ContainerdCall call;
  call.lease = "it-base";
  REQUIRE(c.writeBlob("it-layer", layer, blob, {}, call).ok());
  auto mounts = c.prepareSnapshot("overlayfs", "it-extract", "", {}, call);
  REQUIRE(mounts.ok());
  Descriptor d{"application/vnd.oci.image.layer.v1.tar+gzip", layer,
               static_cast<int64_t>(blob.size()), {}};
  auto applied = c.applyLayer(d, *mounts, call);
  REQUIRE(applied.ok());
  CHECK(applied->digest == diffId);
  REQUIRE(c.commitSnapshot("overlayfs", diffId, "it-extract", {}, call).ok());
  return diffId;
}

}  // namespace

TEST_CASE("containerd: version, leases, content, errors mapped") {
  ContainerdClient c = makeClient();
  auto v = c.version();
  REQUIRE(v.ok());
  CHECK(v->rfind("1.", 0) == 0);

  REQUIRE(c.createLease("it-lease-1", {{"sandboxd.io/test", "yes"}}).ok());
  auto dup = c.createLease("it-lease-1", {});
  REQUIRE_FALSE(dup.ok());
  CHECK(isAlreadyExists(dup.error()));
  auto leases = c.listLeases("labels.\"sandboxd.io/test\"==yes");
  REQUIRE(leases.ok());
  REQUIRE(leases->size() == 1);
  CHECK(leases->at(0).id == "it-lease-1");

  // A blob written under the lease can be read back and is verified.
  ContainerdCall call;
  call.lease = "it-lease-1";
  const std::string data = "hello sandboxd";
  // printf 'hello sandboxd' | sha256sum
  const std::string digest = "sha256:89fb12765f6acbbb87addafbefe1851d42a7aab269fcefe76ed44ff409714271";
  REQUIRE(c.writeBlob("it-blob", digest, data, {}, call).ok());
  auto info = c.contentInfo(digest);
  REQUIRE(info.ok());
  CHECK(info->size == static_cast<int64_t>(data.size()));
  auto back = c.readContent(digest, 1024);
  REQUIRE(back.ok());
  CHECK(*back == data);
  CHECK_FALSE(c.readContent(digest, 4).ok());  // over the read limit
  CHECK(c.writeBlob("it-blob-2", digest, data, {}, call).ok());  // already present: fine
  // A wrong digest is refused at commit: containerd verifies.
  const std::string wrongDigest = "sha256:" + std::string(64, 'a');
  CHECK_FALSE(c.writeBlob("it-blob-bad", wrongDigest, data, {}, call).ok());

  auto missing = c.getContainer("does-not-exist");
  REQUIRE_FALSE(missing.ok());
  CHECK(isNotFound(missing.error()));
  CHECK(missing.message().find("containers.Get does-not-exist: not found") != std::string::npos);
  auto task = c.getTask("does-not-exist");
  REQUIRE(task.ok());
  CHECK(task->status == TaskStatus::NotFound);

  REQUIRE(c.deleteLease("it-lease-1", true).ok());
  auto gone = c.deleteLease("it-lease-1", false);
  CHECK_FALSE(gone.ok());
}

TEST_CASE("containerd: an unreachable socket is Unavailable, not a hang") {
  ContainerdOptions o;
  o.address = "/nonexistent/containerd.sock";
  o.callTimeout = 2s;
  ContainerdClient c(o);
  auto t0 = std::chrono::steady_clock::now();
  auto v = c.version();
  REQUIRE_FALSE(v.ok());
  CHECK((v.error().code == kErrUnavailable || v.error().code == kErrTimeout));
  CHECK(std::chrono::steady_clock::now() - t0 < 5s);
}

TEST_CASE("containerd: snapshot → container → task → exit event, runc and runsc") {
  ContainerdClient c = makeClient();
  const std::string parent = baseSnapshot(c);
  namespace fs = std::filesystem;
  fs::path logDir = fs::temp_directory_path() / ("sbx-it-logs-" + std::to_string(::getpid()));
  fs::create_directories(logDir);
  // Removed however the test ends (a failed REQUIRE leaves the scope early).
  struct RemoveDir {
    fs::path p;
    ~RemoveDir() { fs::remove_all(p); }
  } removeLogDir{logDir};

  struct Runtime {
    const char* name;
    std::string binary;
    std::string root;
  };
  std::vector<Runtime> runtimes = {
      {"runc", "", test::envOrFail("RUNC_ROOT")},
      {"runsc", test::envOrFail("RUNSC_NONE"), test::envOrFail("RUNSC_ROOT")},
  };

  for (const Runtime& rt : runtimes) {
    CAPTURE(rt.name);
    const std::string id = std::string("it-") + rt.name + "-" + std::to_string(::getpid());
    EventLoop loop;
    std::vector<TaskEvent> events;
    TaskEventStream stream(
        loop, c, [&](const TaskEvent& e) { events.push_back(e); }, [](const std::string&) {});
    stream.start();

    auto mounts = c.prepareSnapshot("overlayfs", id, parent, {});
    REQUIRE(mounts.ok());
    OciSpecInput in;
    in.args = {"sh", "-c", "echo hello from $RT in $(pwd); exit 3"};
    in.env = {"PATH=/bin", std::string("RT=") + rt.name};
    in.cwd = "/tmp";
    in.hostname = id;
    in.memoryBytes = 64 << 20;
    in.cpuMillis = 500;
    in.pidsLimit = 64;
    in.tmpBytes = 8 << 20;
    ContainerCreate cc;
    cc.id = id;
    cc.labels = {{"sandboxd.io/sandbox", "it"}};
    cc.runtimeBinary = rt.binary;
    cc.runtimeRoot = rt.root;
    cc.specJson = buildOciSpec(in);
    cc.snapshotKey = id;
    REQUIRE(c.createContainer(cc).ok());
    auto again = c.createContainer(cc);
    CHECK(isAlreadyExists(again.error()));
    auto listed = c.listContainers("labels.\"sandboxd.io/sandbox\"==it");
    REQUIRE(listed.ok());
    CHECK(listed->size() == 1);
    auto rec = c.getContainer(id);
    REQUIRE(rec.ok());
    CHECK(rec->specJson == cc.specJson);

    const std::string log = (logDir / (id + ".log")).string();
    TaskCreate tc;
    tc.containerId = id;
    tc.rootfs = *mounts;
    tc.stdoutUri = "file://" + log;
    tc.stderrUri = "file://" + log;
    auto pid = c.createTask(tc);
    if (!pid.ok()) {
      // Seen twice in CI only, under load, never here: say what containerd
      // answered and try once more (the second must work).
      MESSAGE(rt.name << ": first createTask failed: " << pid.message());
      (void)c.deleteTask(id);
      pid = c.createTask(tc);
    }
    REQUIRE_MESSAGE(pid.ok(), (pid.ok() ? "" : pid.message()));
    CHECK(*pid > 0);
    auto started = c.startTask(id);
    REQUIRE(started.ok());

    bool exited = test::runUntil(loop, [&] {
      for (const auto& e : events) {
        if (e.kind == TaskEvent::Kind::Exit && e.containerId == id && e.execId == id) return true;
      }
      return false;
    }, 20s);
    REQUIRE(exited);
    for (const auto& e : events) {
      if (e.kind == TaskEvent::Kind::Exit && e.containerId == id) CHECK(e.exitStatus == 3);
    }
    auto info = c.getTask(id);
    REQUIRE(info.ok());
    CHECK(info->status == TaskStatus::Stopped);
    auto del = c.deleteTask(id);
    REQUIRE(del.ok());
    CHECK(del->exitStatus == 3);

    std::ifstream f(log);
    std::stringstream ss;
    ss << f.rdbuf();
    CHECK(ss.str() == std::string("hello from ") + rt.name + " in /tmp\n");

    REQUIRE(c.deleteContainer(id).ok());
    REQUIRE(removeSnapshotSoon(c, id));
    CHECK(isNotFound(c.getContainer(id).error()));
    CHECK(isNotFound(c.statSnapshot("overlayfs", id).error()));
    stream.stop();
    CHECK(stream.connects() >= 1);
  }
  // Leave the namespace's base snapshot for other cases; the environment's
  // teardown removes containerd's whole root.
}

TEST_CASE("containerd restart: the event stream reconnects and events flow again") {
  // Restarts the environment's containerd (same config, root, socket) and
  // records the new PID in env.sh, where tests/env/down.sh finds it.
  const std::string config = test::envOrFail("CONTAINERD_CONFIG");
  const std::string envFile = test::envOrFail("SBX_ENV_DIR") + "/env.sh";
  const std::string logFile = test::envOrFail("CONTAINERD_LOG");
  pid_t oldPid = static_cast<pid_t>(std::stol(test::envOrFail("CONTAINERD_PID")));
  // An earlier restart in this process already moved the PID on.
  if (const char* moved = std::getenv("SBX_TEST_CONTAINERD_PID")) oldPid = std::stoi(moved);

  ContainerdClient c = makeClient();
  const std::string parent = baseSnapshot(c);
  EventLoop loop;
  std::vector<TaskEvent> events;
  int reconnects = 0;
  TaskEventStream stream(
      loop, c, [&](const TaskEvent& e) { events.push_back(e); },
      [&](const std::string&) { ++reconnects; });
  stream.start();
  REQUIRE(test::runUntil(loop, [&] { return stream.connects() >= 1; }, 10s));

  REQUIRE(::kill(oldPid, SIGTERM) == 0);
  auto gone = std::chrono::steady_clock::now() + 15s;
  while (processAlive(oldPid) && std::chrono::steady_clock::now() < gone) loop.runOnce(20ms);
  REQUIRE_FALSE(processAlive(oldPid));

  pid_t pid = 0;
  {
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, logFile.c_str(), O_WRONLY | O_APPEND | O_CREAT, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    std::vector<std::string> args = {"containerd", "--config", config};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    REQUIRE(::posix_spawnp(&pid, "containerd", &fa, nullptr, argv.data(), environ) == 0);
    posix_spawn_file_actions_destroy(&fa);
  }
  std::ofstream(envFile, std::ios::app) << "CONTAINERD_PID=" << pid << "\n";
  ::setenv("SBX_TEST_CONTAINERD_PID", std::to_string(pid).c_str(), 1);

  // The stream notices, reconnects on its own, and tells the owner.
  REQUIRE(test::runUntil(loop, [&] { return c.version().ok(); }, 20s));
  REQUIRE(test::runUntil(loop, [&] { return reconnects >= 1 && stream.connects() >= 2; }, 20s));

  // And task exits after the restart arrive as events again. Events published
  // while the stream was between connections are lost by design (the owner
  // resynchronises on reconnect), so start short tasks until one is seen.
  bool exited = false;
  for (int attempt = 0; attempt < 10 && !exited; ++attempt) {
    const std::string id = "it-restart-" + std::to_string(::getpid()) + "-" + std::to_string(attempt);
    auto mounts = c.prepareSnapshot("overlayfs", id, parent, {});
    REQUIRE_MESSAGE(mounts.ok(), (mounts.ok() ? "" : mounts.message()));
    OciSpecInput in;
    in.args = {"sh", "-c", "exit 7"};
    in.env = {"PATH=/bin"};
    in.hostname = id;
    ContainerCreate cc;
    cc.id = id;
    cc.runtimeRoot = test::envOrFail("RUNC_ROOT");
    cc.specJson = buildOciSpec(in);
    cc.snapshotKey = id;
    REQUIRE(c.createContainer(cc).ok());
    TaskCreate tc;
    tc.containerId = id;
    tc.rootfs = *mounts;
    // A containerd that has only just come back may still fail the first
    // task (seen once in CI under load); say why and try the next one — the
    // CHECK below still fails when no task after the restart is ever seen.
    auto created = c.createTask(tc);
    auto started = created.ok() ? c.startTask(id) : Result<uint32_t>(created.error());
    if (!started.ok()) {
      MESSAGE("attempt " << attempt << ": " << started.message());
      (void)c.deleteTask(id);
      CHECK(c.deleteContainer(id).ok());
      CHECK(removeSnapshotSoon(c, id));
      continue;
    }
    exited = test::runUntil(loop, [&] {
      for (const auto& e : events) {
        if (e.kind == TaskEvent::Kind::Exit && e.containerId == id && e.exitStatus == 7) return true;
      }
      return false;
    }, 3s);
    // Wait for the task to stop before deleting it (no event needed).
    for (int i = 0; i < 100; ++i) {
      auto t = c.getTask(id);
      if (!t.ok() || t->status == TaskStatus::Stopped) break;
      loop.runOnce(20ms);
    }
    CHECK(c.deleteTask(id).ok());
    CHECK(c.deleteContainer(id).ok());
    CHECK(removeSnapshotSoon(c, id));
  }
  CHECK(exited);
  stream.stop();
}
