// ImagePuller and RegistryClient against a real containerd and the loopback
// docker-registry of tests/env/up.sh (through tools/run-integration.sh).
// Everything happens in containerd namespace sbx-it-puller-<pid>; each case
// removes what it created (images, leases, snapshots children first; content
// then goes to containerd's GC).
#include "runtime/ImagePuller.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <thread>

#include "IntegrationEnv.h"

using namespace sbx;
using namespace sbx::runtime;
using namespace std::chrono_literals;

namespace {

using SteadyClock = std::chrono::steady_clock;

constexpr char kMtOciManifest[] = "application/vnd.oci.image.manifest.v1+json";
constexpr char kMtOciIndex[] = "application/vnd.oci.image.index.v1+json";
constexpr char kPullLeaseFilter[] = "labels.\"sandboxd.io/pull\"";

std::string ns() { return "sbx-it-puller-" + std::to_string(::getpid()); }

bool contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

double msSince(SteadyClock::time_point t0) {
  return std::chrono::duration<double, std::milli>(SteadyClock::now() - t0).count();
}

Deadline in(std::chrono::milliseconds d) { return SteadyClock::now() + d; }

// A loopback port with nothing listening (bound, then closed).
int closedPort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0);
  socklen_t len = sizeof(a);
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0);
  ::close(fd);
  return ntohs(a.sin_port);
}

// One containerd client, registry client and puller in the test namespace;
// removes what the case created when it ends.
struct Fixture {
  explicit Fixture(RegistryConfig config, ImagePullerOptions options = {})
      : containerd(clientOptions()),
        registry(std::move(config)),
        puller(containerd, registry, std::move(options)) {}

  ~Fixture() { cleanup(); }

  static ContainerdOptions clientOptions() {
    ContainerdOptions o;
    o.address = test::envOrFail("CONTAINERD_SOCK");
    o.namespaceName = ns();
    o.callTimeout = 20s;
    return o;
  }

  Result<ImageInfo> pull(const ImageRef& ref, std::chrono::milliseconds timeout = 60s) {
    images.push_back(ref.name());
    return puller.pull(ref, in(timeout));
  }

  size_t pullLeases() {
    auto l = containerd.listLeases(kPullLeaseFilter);
    REQUIRE_MESSAGE(l.ok(), l.message());
    return l->size();
  }

  void cleanup() {
    for (const auto& name : images) {
      Status st = containerd.deleteImage(name);
      if (!st.ok() && !isNotFound(st.error())) MESSAGE("cleanup: " << st.message());
    }
    images.clear();
    if (auto leases = containerd.listLeases(""); leases.ok()) {
      for (const auto& l : *leases) (void)containerd.deleteLease(l.id, false);
    }
    // Snapshots, children before their parents.
    for (int round = 0; round < 16; ++round) {
      auto snaps = containerd.listSnapshots("overlayfs");
      if (!snaps.ok() || snaps->empty()) break;
      for (const auto& s : *snaps) {
        bool isParent = std::any_of(snaps->begin(), snaps->end(),
                                    [&](const SnapshotInfo& o) { return o.parent == s.name; });
        if (!isParent) (void)containerd.removeSnapshot("overlayfs", s.name);
      }
    }
    // Deleting a lease with sync runs containerd's GC now: the content the
    // case pulled goes, and the next case starts from an empty store.
    const std::string gcLease = "sbx-it-puller-gc";
    if (containerd.createLease(gcLease, {}).ok()) {
      Status st = containerd.deleteLease(gcLease, true);
      if (!st.ok()) MESSAGE("cleanup: " << st.message());
    }
  }

  ContainerdClient containerd;
  RegistryClient registry;
  ImagePuller puller;
  std::vector<std::string> images;
};

RegistryConfig mirrorConfig(std::vector<std::string> mirrors) {
  RegistryConfig c;
  c.mirrors["docker.io"] = std::move(mirrors);
  return c;
}

std::string registryUrl() { return "http://" + test::envOrFail("REGISTRY_ADDR"); }

// GET of a URL with libcurl, whole body (the fake front's upstream fetch).
std::string httpGet(const std::string& url) {
  std::string body;
  CURL* c = curl_easy_init();
  REQUIRE(c != nullptr);
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(
      c, CURLOPT_WRITEFUNCTION, +[](char* p, size_t s, size_t n, void* ud) -> size_t {
        static_cast<std::string*>(ud)->append(p, s * n);
        return s * n;
      });
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
  CURLcode rc = curl_easy_perform(c);
  curl_easy_cleanup(c);
  CHECK(rc == CURLE_OK);
  return body;
}

// A misbehaving registry in front of the real one. In every mode /v2/
// requests it does not tamper with are redirected (307) to the registry.
//   Token: wants "Bearer tok-123" (from its own /token) on /v2/ requests:
//          the 401 → token → retry dance, the token cache, redirects.
//   FlipBlob / ShortBlob / LongBlob: serves blobs itself, taken from the
//          registry with a byte changed / dropped / added.
//   StallBlob: answers blob requests with headers, then nothing.
//   HugeManifest: serves a 5 MiB "manifest".
// One connection at a time, "Connection: close"; send() with MSG_NOSIGNAL
// since the client may hang up first.
class FakeFront {
 public:
  enum class Mode { Token, FlipBlob, ShortBlob, LongBlob, StallBlob, HugeManifest };

  FakeFront(Mode mode, std::string upstream) : mode_(mode), upstream_(std::move(upstream)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd_ >= 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0);
    REQUIRE(::listen(fd_, 16) == 0);
    socklen_t len = sizeof(a);
    REQUIRE(::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) == 0);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~FakeFront() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
  }

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  int tokenRequests() const { return tokens_; }
  int challenges() const { return challenges_; }
  int blobRequests() const { return blobs_; }
  std::string lastTokenQuery() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return lastTokenQuery_;
  }

 private:
  void serve() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      handle(c);
      ::close(c);
    }
  }

  static bool sendAll(int c, const std::string& data) {
    size_t off = 0;
    while (off < data.size()) {
      ssize_t n = ::send(c, data.data() + off, data.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return false;
      off += static_cast<size_t>(n);
    }
    return true;
  }

  static std::string response(const std::string& status, const std::string& headers,
                              const std::string& body) {
    return "HTTP/1.1 " + status + "\r\n" + headers +
           "Content-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" +
           body;
  }

  void handle(int c) {
    std::string req;
    char buf[4096];
    while (req.find("\r\n\r\n") == std::string::npos) {
      pollfd p{c, POLLIN, 0};
      if (::poll(&p, 1, 2000) <= 0) return;
      ssize_t n = ::read(c, buf, sizeof(buf));
      if (n <= 0) return;
      req.append(buf, static_cast<size_t>(n));
    }
    const size_t sp1 = req.find(' ');
    const size_t sp2 = req.find(' ', sp1 + 1);
    const std::string target = req.substr(sp1 + 1, sp2 - sp1 - 1);
    const bool isBlob = target.find("/blobs/") != std::string::npos;
    const bool isManifest = target.find("/manifests/") != std::string::npos;
    const std::string redirect =
        response("307 Temporary Redirect", "Location: " + upstream_ + target + "\r\n", "");
    if (isBlob) ++blobs_;

    switch (mode_) {
      case Mode::Token:
        if (target.rfind("/token", 0) == 0) {
          ++tokens_;
          {
            std::lock_guard<std::mutex> lock(mutex_);
            lastTokenQuery_ = target;
          }
          sendAll(c, response("200 OK", "Content-Type: application/json\r\n",
                              R"({"token":"tok-123","expires_in":300})"));
        } else if (req.find("\r\nAuthorization: Bearer tok-123\r\n") == std::string::npos) {
          ++challenges_;
          sendAll(
              c,
              response(
                  "401 Unauthorized",
                  "WWW-Authenticate: Bearer realm=\"" + url() +
                      "/token\",service=\"front\","
                      "scope=\"repository:library/alpine:pull\"\r\n"
                      "Content-Type: application/json\r\n",
                  R"({"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]})"));
        } else {
          sendAll(c, redirect);
        }
        return;
      case Mode::FlipBlob:
      case Mode::ShortBlob:
      case Mode::LongBlob: {
        if (!isBlob) break;
        std::string blob = httpGet(upstream_ + target);
        if (mode_ == Mode::FlipBlob && !blob.empty()) blob[0] = static_cast<char>(blob[0] ^ 1);
        if (mode_ == Mode::ShortBlob && !blob.empty()) blob.pop_back();
        if (mode_ == Mode::LongBlob) blob.push_back('x');
        sendAll(c, response("200 OK", "Content-Type: application/octet-stream\r\n", blob));
        return;
      }
      case Mode::StallBlob: {
        if (!isBlob) break;
        sendAll(c, "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\nabc");
        // Until the client gives up (EOF) or the test ends.
        while (!stop_) {
          pollfd p{c, POLLIN, 0};
          int n = ::poll(&p, 1, 20);
          if (n < 0) return;
          if (n > 0 && ::read(c, buf, sizeof(buf)) <= 0) return;
        }
        return;
      }
      case Mode::HugeManifest:
        if (!isManifest) break;
        sendAll(c,
                response("200 OK", "Content-Type: application/vnd.oci.image.manifest.v1+json\r\n",
                         std::string(5 << 20, ' ')));
        return;
    }
    sendAll(c, redirect);
  }

  Mode mode_;
  std::string upstream_;
  int fd_ = -1;
  int port_ = 0;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<int> tokens_{0};
  std::atomic<int> challenges_{0};
  std::atomic<int> blobs_{0};
  mutable std::mutex mutex_;
  std::string lastTokenQuery_;
};

}  // namespace

TEST_SUITE("ImagePuller") {
  TEST_CASE(
      "pull through a docker.io mirror: record, snapshot, GC labels, config; again is local") {
    Fixture f(mirrorConfig({registryUrl()}));
    const ImageRef ref{"docker.io", "library/alpine", "3.20", ""};

    auto t0 = SteadyClock::now();
    auto r = f.pull(ref);
    const double firstMs = msSince(t0);
    REQUIRE_MESSAGE(r.ok(), r.message());
    CHECK(r->name == "docker.io/library/alpine:3.20");
    CHECK(r->targetDigest == test::envOrFail("IMAGE_BASE_MANIFEST"));
    CHECK(r->targetMediaType == kMtOciManifest);
    CHECK(r->manifestDigest == r->targetDigest);
    CHECK(r->configDigest == test::envOrFail("IMAGE_BASE_CONFIG"));
    CHECK(r->platform == "linux/amd64");
    CHECK(r->cmd == std::vector<std::string>{"sh"});
    CHECK(r->entrypoint.empty());
    CHECK(r->diffIds == std::vector<std::string>{test::envOrFail("IMAGE_BASE_DIFF_ID")});
    CHECK(r->chainId == r->diffIds[0]);  // one layer
    CHECK(r->snapshotter == "overlayfs");
    CHECK(r->bytesFetched > 0);

    // The image record, as containerd's own pull would leave it.
    auto img = f.containerd.getImage(r->name);
    REQUIRE_MESSAGE(img.ok(), img.message());
    CHECK(img->target.digest == r->targetDigest);
    CHECK(img->target.mediaType == kMtOciManifest);
    CHECK(img->target.size > 0);
    CHECK(img->labels.empty());

    auto snap = f.containerd.statSnapshot("overlayfs", r->chainId);
    REQUIRE_MESSAGE(snap.ok(), snap.message());
    CHECK(snap->kind == "committed");
    CHECK(snap->parent.empty());

    // GC references from the manifest down to the snapshot.
    auto manifest = f.containerd.contentInfo(r->manifestDigest);
    REQUIRE(manifest.ok());
    CHECK(manifest->labels["containerd.io/gc.ref.content.config"] == r->configDigest);
    CHECK(manifest->labels["containerd.io/gc.ref.content.l.0"] ==
          test::envOrFail("IMAGE_BASE_LAYER"));
    auto config = f.containerd.contentInfo(r->configDigest);
    REQUIRE(config.ok());
    CHECK(config->labels["containerd.io/gc.ref.snapshot.overlayfs"] == r->chainId);
    auto layer = f.containerd.contentInfo(test::envOrFail("IMAGE_BASE_LAYER"));
    REQUIRE(layer.ok());
    CHECK(layer->labels["containerd.io/uncompressed"] == r->diffIds[0]);
    CHECK(f.pullLeases() == 0);

    // Again: the tag is resolved (one manifest GET), nothing else is fetched.
    t0 = SteadyClock::now();
    auto again = f.pull(ref);
    const double secondMs = msSince(t0);
    REQUIRE_MESSAGE(again.ok(), again.message());
    CHECK(again->bytesFetched == 0);
    CHECK(again->chainId == r->chainId);
    CHECK(secondMs < 2000);

    t0 = SteadyClock::now();
    auto local = f.puller.local(ref);
    const double localMs = msSince(t0);
    REQUIRE_MESSAGE(local.ok(), local.message());
    CHECK(local->targetDigest == r->targetDigest);
    CHECK(local->configDigest == r->configDigest);
    CHECK(local->chainId == r->chainId);
    CHECK(local->cmd == r->cmd);
    CHECK(local->env == r->env);
    CHECK(f.pullLeases() == 0);
    MESSAGE("alpine:3.20 (" << r->bytesFetched << " bytes fetched): first pull " << firstMs
                            << " ms, second " << secondMs << " ms, local() " << localMs << " ms");
  }

  TEST_CASE("local() of an image that is not there is kErrNotFound") {
    Fixture f(mirrorConfig({registryUrl()}));
    auto r = f.puller.local(ImageRef{"docker.io", "library/never-pulled", "1", ""});
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == kErrNotFound);
    CHECK(r.message() == "image docker.io/library/never-pulled:1 is not present");
  }

  TEST_CASE("local() finds the record but no snapshot: kErrNotFound so the caller pulls") {
    Fixture f(mirrorConfig({registryUrl()}));
    const ImageRef ref{"docker.io", "library/busybox", "latest", ""};
    auto r = f.pull(ref);
    REQUIRE_MESSAGE(r.ok(), r.message());
    REQUIRE(f.containerd.removeSnapshot("overlayfs", r->chainId).ok());
    auto l = f.puller.local(ref);
    REQUIRE_FALSE(l.ok());
    CHECK(l.error().code == kErrNotFound);
    CHECK(l.message().find("not unpacked") != std::string::npos);
    // A pull repairs it.
    auto again = f.pull(ref);
    REQUIRE_MESSAGE(again.ok(), again.message());
    CHECK(f.puller.local(ref).ok());
  }

  TEST_CASE("image config fields from an insecure registry (sandboxd-test/config:1)") {
    const std::string addr = test::envOrFail("REGISTRY_ADDR");
    RegistryConfig cfg;
    cfg.insecure = {addr};
    Fixture f(cfg);
    const ImageRef ref{addr, "sandboxd-test/config", "1", ""};
    auto r = f.pull(ref);
    REQUIRE_MESSAGE(r.ok(), r.message());
    CHECK(r->name == addr + "/sandboxd-test/config:1");
    CHECK(r->targetDigest == test::envOrFail("IMAGE_CONFIG_MANIFEST"));
    CHECK(r->configDigest == test::envOrFail("IMAGE_CONFIG_CONFIG"));
    CHECK(r->entrypoint == std::vector<std::string>{"/bin/sh", "-c"});
    CHECK(r->cmd == std::vector<std::string>{"echo entry-$FOO-$(pwd); sleep 3600"});
    CHECK(contains(r->env, "FOO=from-image"));
    CHECK(contains(r->env, "BAR=keep"));
    CHECK(r->workingDir == "/work");
    CHECK(r->user.empty());

    auto local = f.puller.local(ref);
    REQUIRE_MESSAGE(local.ok(), local.message());
    CHECK(local->entrypoint == r->entrypoint);
    CHECK(local->cmd == r->cmd);
    CHECK(local->env == r->env);
    CHECK(local->workingDir == "/work");

    // By digest: the same image, and once present no registry is needed.
    ImageRef byDigest{addr, "sandboxd-test/config", "", r->targetDigest};
    auto d = f.pull(byDigest);
    REQUIRE_MESSAGE(d.ok(), d.message());
    CHECK(d->name == addr + "/sandboxd-test/config@" + r->targetDigest);
    CHECK(d->chainId == r->chainId);
    // With the registry unreachable it is still found: nothing is fetched.
    RegistryConfig unreachable;
    unreachable.mirrors[addr] = {"http://127.0.0.1:" + std::to_string(closedPort())};
    RegistryClient deadRegistry(unreachable);
    ImagePuller deadPuller(f.containerd, deadRegistry);
    auto cached = deadPuller.pull(byDigest, in(10s));
    REQUIRE_MESSAGE(cached.ok(), cached.message());
    CHECK(cached->configDigest == r->configDigest);
  }

  TEST_CASE("multi-arch index: this host's manifest is chosen, the index is the target") {
    Fixture f(mirrorConfig({registryUrl()}));
    const ImageRef ref{"docker.io", "sandboxd-test/multiarch", "1", ""};
    auto r = f.pull(ref);
    REQUIRE_MESSAGE(r.ok(), r.message());
    CHECK(r->targetDigest == test::envOrFail("IMAGE_MULTIARCH_INDEX"));
    CHECK(r->targetMediaType == kMtOciIndex);
    REQUIRE(hostPlatform().architecture == "amd64");  // TESTBED: amd64 machines
    CHECK(r->manifestDigest == test::envOrFail("IMAGE_MULTIARCH_AMD64_MANIFEST"));
    CHECK(r->configDigest == test::envOrFail("IMAGE_MULTIARCH_AMD64_CONFIG"));
    CHECK(r->platform == "linux/amd64");
    CHECK(contains(r->env, "SBX_IMAGE_PLATFORM=linux/amd64"));

    auto img = f.containerd.getImage(r->name);
    REQUIRE(img.ok());
    CHECK(img->target.digest == r->targetDigest);
    CHECK(img->target.mediaType == kMtOciIndex);
    auto index = f.containerd.contentInfo(r->targetDigest);
    REQUIRE(index.ok());
    CHECK(index->labels["containerd.io/gc.ref.content.m.0"] == r->manifestDigest);
    // The other platform's manifest was never fetched.
    auto arm = f.containerd.contentInfo(test::envOrFail("IMAGE_MULTIARCH_ARM64_MANIFEST"));
    CHECK_FALSE(arm.ok());

    auto local = f.puller.local(ref);
    REQUIRE_MESSAGE(local.ok(), local.message());
    CHECK(local->manifestDigest == r->manifestDigest);
    CHECK(contains(local->env, "SBX_IMAGE_PLATFORM=linux/amd64"));
  }

  TEST_CASE("multi-arch index with another platform configured") {
    ImagePullerOptions o;
    o.platform = Platform{"linux", "arm64", ""};
    Fixture f(mirrorConfig({registryUrl()}), o);
    auto r = f.pull(ImageRef{"docker.io", "sandboxd-test/multiarch", "1", ""});
    REQUIRE_MESSAGE(r.ok(), r.message());
    CHECK(r->manifestDigest == test::envOrFail("IMAGE_MULTIARCH_ARM64_MANIFEST"));
    CHECK(r->platform == "linux/arm64/v8");
    CHECK(contains(r->env, "SBX_IMAGE_PLATFORM=linux/arm64/v8"));

    ImagePullerOptions s390;
    s390.platform = Platform{"linux", "s390x", ""};
    ImagePuller other(f.containerd, f.registry, s390);
    auto none = other.pull(ImageRef{"docker.io", "sandboxd-test/multiarch", "1", ""}, in(30s));
    REQUIRE_FALSE(none.ok());
    CHECK(none.message().find("no manifest for linux/s390x (index has: linux/arm64/v8, "
                              "linux/amd64)") != std::string::npos);
  }

  TEST_CASE("missing image: 404 with the registry's error code, nothing left behind") {
    Fixture f(mirrorConfig({registryUrl()}));
    auto r = f.pull(ImageRef{"docker.io", "library/nope", "1", ""});
    REQUIRE_FALSE(r.ok());
    MESSAGE(r.message());
    CHECK(r.message().rfind("pull docker.io/library/nope:1: GET " + registryUrl() +
                                "/v2/library/nope/manifests/1: 404 Not Found (",
                            0) == 0);
    CHECK(r.error().code == kErrNotFound);

    auto tag = f.pull(ImageRef{"docker.io", "library/alpine", "no-such-tag", ""});
    REQUIRE_FALSE(tag.ok());
    CHECK(tag.message().find("404 Not Found (MANIFEST_UNKNOWN: manifest unknown)") !=
          std::string::npos);
    CHECK_FALSE(f.containerd.getImage("docker.io/library/alpine:no-such-tag").ok());
    CHECK(f.pullLeases() == 0);
  }

  TEST_CASE("unreachable mirror: connect error; a second mirror is used") {
    const int port = closedPort();
    const std::string dead = "http://127.0.0.1:" + std::to_string(port);
    {
      Fixture f(mirrorConfig({dead}));
      auto t0 = SteadyClock::now();
      auto r = f.pull(ImageRef{"docker.io", "library/alpine", "3.20", ""});
      REQUIRE_FALSE(r.ok());
      MESSAGE(r.message());
      CHECK(r.message().find("connect to 127.0.0.1:" + std::to_string(port) +
                             " failed: Connection refused") != std::string::npos);
      CHECK(r.error().code == kErrUnavailable);
      CHECK(msSince(t0) < 5000);
      CHECK(f.pullLeases() == 0);
    }
    {
      Fixture f(mirrorConfig({dead, registryUrl()}));
      auto r = f.pull(ImageRef{"docker.io", "library/alpine", "3.20", ""});
      REQUIRE_MESSAGE(r.ok(), r.message());
      CHECK(r->targetDigest == test::envOrFail("IMAGE_BASE_MANIFEST"));
    }
  }

  TEST_CASE("deadlines: an expired one fails at once, a tiny one fails cleanly") {
    Fixture f(mirrorConfig({registryUrl()}));
    const ImageRef ref{"docker.io", "library/alpine", "3.20", ""};
    auto expired = f.puller.pull(ref, SteadyClock::now() - 1ms);
    REQUIRE_FALSE(expired.ok());
    CHECK(expired.error().code == kErrTimeout);
    CHECK(expired.message() == "pull docker.io/library/alpine:3.20: deadline exceeded");

    f.images.push_back(ref.name());
    auto tiny = f.puller.pull(ref, in(2ms));
    if (!tiny.ok()) CHECK(tiny.error().code == kErrTimeout);
    CHECK(f.pullLeases() == 0);
  }

  TEST_CASE("a moved tag: an existing record with another target is replaced") {
    Fixture f(mirrorConfig({registryUrl()}));
    const ImageRef ref{"docker.io", "library/alpine", "3.20", ""};
    ImageRecord stale;
    stale.name = ref.name();
    stale.target = Descriptor{kMtOciManifest, test::envOrFail("IMAGE_CONFIG_MANIFEST"), 500, {}};
    f.images.push_back(stale.name);
    REQUIRE(f.containerd.createImage(stale).ok());
    auto r = f.pull(ref);
    REQUIRE_MESSAGE(r.ok(), r.message());
    auto img = f.containerd.getImage(ref.name());
    REQUIRE(img.ok());
    CHECK(img->target.digest == test::envOrFail("IMAGE_BASE_MANIFEST"));
  }

  TEST_CASE("concurrent pulls of images that share their layer") {
    Fixture f(mirrorConfig({registryUrl()}));
    const std::vector<ImageRef> refs = {
        {"docker.io", "library/alpine", "3.20", ""},
        {"docker.io", "library/busybox", "latest", ""},
        {"docker.io", "library/python", "3.12-alpine", ""},
        {"docker.io", "library/mysql", "8.4", ""},
        {"docker.io", "library/alpine", "3.20", ""},
    };
    for (const auto& r : refs) f.images.push_back(r.name());
    std::vector<Result<ImageInfo>> results(refs.size(), Error("not run"));
    std::vector<std::thread> threads;
    const Deadline deadline = in(60s);
    for (size_t i = 0; i < refs.size(); ++i) {
      threads.emplace_back([&, i] { results[i] = f.puller.pull(refs[i], deadline); });
    }
    for (auto& t : threads) t.join();
    int64_t fetched = 0;
    for (size_t i = 0; i < refs.size(); ++i) {
      REQUIRE_MESSAGE(results[i].ok(), refs[i].name() << ": " << results[i].message());
      CHECK(results[i]->chainId == results[0]->chainId);
      CHECK(f.containerd.getImage(refs[i].name()).ok());
      fetched += results[i]->bytesFetched;
    }
    auto snaps = f.containerd.listSnapshots("overlayfs");
    REQUIRE(snaps.ok());
    CHECK(snaps->size() == 1);
    CHECK(f.pullLeases() == 0);
    // Each blob came down once: the shared layer and config.
    auto layer = f.containerd.contentInfo(test::envOrFail("IMAGE_BASE_LAYER"));
    auto config = f.containerd.contentInfo(test::envOrFail("IMAGE_BASE_CONFIG"));
    REQUIRE(layer.ok());
    REQUIRE(config.ok());
    CHECK(fetched == layer->size + config->size);
    MESSAGE("5 concurrent pulls fetched " << fetched << " bytes in total");
  }

  TEST_CASE("Bearer token auth: 401 → token → retry, token cached, redirects followed") {
    FakeFront front(FakeFront::Mode::Token, registryUrl());
    Fixture f(mirrorConfig({front.url()}));
    const ImageRef ref{"docker.io", "library/alpine", "3.20", ""};
    auto r = f.pull(ref);
    REQUIRE_MESSAGE(r.ok(), r.message());
    CHECK(r->targetDigest == test::envOrFail("IMAGE_BASE_MANIFEST"));
    CHECK(front.tokenRequests() == 1);
    CHECK(front.challenges() == 1);
    CHECK(front.lastTokenQuery() ==
          "/token?service=front&scope=repository%3Alibrary%2Falpine%3Apull");
    auto again = f.pull(ref);
    REQUIRE_MESSAGE(again.ok(), again.message());
    CHECK(front.tokenRequests() == 1);  // cached for its lifetime
    CHECK(front.challenges() == 1);

    // Another repository needs its own token.
    auto other = f.pull(ImageRef{"docker.io", "library/busybox", "latest", ""});
    REQUIRE_MESSAGE(other.ok(), other.message());
    CHECK(front.tokenRequests() == 2);
  }

  TEST_CASE("blobs that do not match their digest or size are refused") {
    struct Case {
      FakeFront::Mode mode;
      std::string expect;
    };
    const std::vector<Case> cases = {
        {FakeFront::Mode::FlipBlob,
         "digest mismatch for " + test::envOrFail("IMAGE_BASE_CONFIG") + ": got sha256:"},
        {FakeFront::Mode::ShortBlob,
         "size mismatch for " + test::envOrFail("IMAGE_BASE_CONFIG") + ": got "},
        {FakeFront::Mode::LongBlob,
         "size mismatch for " + test::envOrFail("IMAGE_BASE_CONFIG") + ": more than the expected "},
    };
    for (const auto& c : cases) {
      FakeFront front(c.mode, registryUrl());
      Fixture f(mirrorConfig({front.url()}));
      auto r = f.pull(ImageRef{"docker.io", "library/alpine", "3.20", ""});
      REQUIRE_FALSE(r.ok());
      MESSAGE(r.message());
      CHECK(r.message().find(c.expect) != std::string::npos);
      CHECK(front.blobRequests() == 1);
      CHECK_FALSE(f.containerd.getImage("docker.io/library/alpine:3.20").ok());
      CHECK_FALSE(f.containerd.contentInfo(test::envOrFail("IMAGE_BASE_CONFIG")).ok());
      CHECK(f.pullLeases() == 0);
    }
  }

  TEST_CASE("a stalled blob: the low-speed limit and the deadline both end it") {
    FakeFront front(FakeFront::Mode::StallBlob, registryUrl());
    {
      RegistryClientOptions o;
      o.lowSpeedTime = 1s;
      Fixture f(mirrorConfig({front.url()}));
      RegistryClient slowAware(mirrorConfig({front.url()}), o);
      ImagePuller puller(f.containerd, slowAware);
      auto t0 = SteadyClock::now();
      auto r = puller.pull(ImageRef{"docker.io", "library/alpine", "3.20", ""}, in(30s));
      REQUIRE_FALSE(r.ok());
      MESSAGE(r.message());
      CHECK(r.error().code == kErrTimeout);
      CHECK(r.message().find("too slow") != std::string::npos);
      CHECK(msSince(t0) < 10000);
      CHECK(f.pullLeases() == 0);
    }
    {
      Fixture f(mirrorConfig({front.url()}));
      auto t0 = SteadyClock::now();
      auto r = f.pull(ImageRef{"docker.io", "library/alpine", "3.20", ""}, 1500ms);
      REQUIRE_FALSE(r.ok());
      MESSAGE(r.message());
      CHECK(r.error().code == kErrTimeout);
      // Which clock notices first (curl's transfer timeout, set to the time
      // left, or the puller's own deadline check) depends on scheduling.
      CHECK((r.message().find("deadline exceeded") != std::string::npos ||
             r.message().find("timed out") != std::string::npos));
      CHECK(msSince(t0) < 5000);
      CHECK(f.pullLeases() == 0);
    }
  }

  TEST_CASE("a manifest over 4 MiB is refused") {
    FakeFront front(FakeFront::Mode::HugeManifest, registryUrl());
    Fixture f(mirrorConfig({front.url()}));
    auto r = f.pull(ImageRef{"docker.io", "library/alpine", "3.20", ""});
    REQUIRE_FALSE(r.ok());
    CHECK(r.message().find("manifest larger than 4194304 bytes") != std::string::npos);
  }

  TEST_CASE("no pull lease is left behind") {
    Fixture f(mirrorConfig({registryUrl()}));
    CHECK(f.pullLeases() == 0);
  }

}  // TEST_SUITE
