// Unit tests for the registry client's and image puller's pure parts: no
// network, no containerd.
#include "runtime/RegistryClient.h"

#include <doctest/doctest.h>

#include "runtime/ImagePuller.h"

using namespace sbx;
using namespace sbx::runtime;

namespace {

const AuthChallenge* find(const std::vector<AuthChallenge>& cs, const std::string& scheme) {
  for (const auto& c : cs) {
    if (c.scheme == scheme) return &c;
  }
  return nullptr;
}

// Digests of made-up layer contents, computed outside this code base
// (Python's hashlib), so the chain id check does not grade its own homework.
constexpr char kDiff0[] = "sha256:0139c1c77468f75e6763a4612262743bd47a36b26cb2863d662756b3377bb029";
constexpr char kDiff1[] = "sha256:4381142a944dccfafc4428f3b1d4469713054b918f3c97f2e7f1cac2c25e0cc4";
constexpr char kDiff2[] = "sha256:6c743db43f0448c007a51265ac822887f39ea7e6600820511cc46f9f63690fd5";
// sha256(kDiff0 + " " + kDiff1), sha256(kChain1 + " " + kDiff2)
constexpr char kChain1[] =
    "sha256:aff998a96a2f925843dfb74108505e06ba8a26c9ff277ee74ede14a9bd9090b0";
constexpr char kChain2[] =
    "sha256:0c591124fb48bc3416c43b04465bf075a13e4949d16e3c58b274b18a00494da7";

const std::string kAmdDigest = "sha256:" + std::string(64, 'a');
const std::string kArmDigest = "sha256:" + std::string(64, 'b');
const std::string kOtherDigest = "sha256:" + std::string(64, 'c');

std::string entry(const std::string& digest, const std::string& platformJson,
                  const std::string& mediaType = "application/vnd.oci.image.manifest.v1+json") {
  std::string e = "{\"mediaType\":\"" + mediaType + "\",\"digest\":\"" + digest + "\",\"size\":123";
  if (!platformJson.empty()) e += ",\"platform\":" + platformJson;
  return e + "}";
}

std::string index(const std::vector<std::string>& entries) {
  std::string s =
      "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\","
      "\"manifests\":[";
  for (size_t i = 0; i < entries.size(); ++i) s += (i ? "," : "") + entries[i];
  return s + "]}";
}

}  // namespace

// ---- WWW-Authenticate ----------------------------------------------------------------

TEST_CASE("WWW-Authenticate: Docker Hub's Bearer challenge") {
  auto cs = parseWwwAuthenticate(
      R"(Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull")");
  REQUIRE(cs.size() == 1);
  CHECK(cs[0].scheme == "bearer");
  CHECK(cs[0].param("realm") == "https://auth.docker.io/token");
  CHECK(cs[0].param("service") == "registry.docker.io");
  CHECK(cs[0].param("scope") == "repository:library/alpine:pull");
  CHECK(cs[0].params.size() == 3);
}

TEST_CASE("WWW-Authenticate: Basic with a realm containing spaces") {
  auto cs = parseWwwAuthenticate(R"(Basic realm="Registry Realm")");
  REQUIRE(cs.size() == 1);
  CHECK(cs[0].scheme == "basic");
  CHECK(cs[0].param("realm") == "Registry Realm");
}

TEST_CASE("WWW-Authenticate: scheme and parameter names are case-insensitive") {
  auto cs = parseWwwAuthenticate(R"(BEARER Realm="https://a/t",SERVICE="s")");
  REQUIRE(cs.size() == 1);
  CHECK(cs[0].scheme == "bearer");
  CHECK(cs[0].param("realm") == "https://a/t");
  CHECK(cs[0].param("service") == "s");
}

TEST_CASE("WWW-Authenticate: escapes inside quoted strings") {
  auto cs = parseWwwAuthenticate(R"(Bearer realm="a\"b\\c\d",service="x")");
  REQUIRE(cs.size() == 1);
  CHECK(cs[0].param("realm") == R"(a"b\cd)");
  CHECK(cs[0].param("service") == "x");
}

TEST_CASE("WWW-Authenticate: whitespace around '=' and commas, token values") {
  auto cs =
      parseWwwAuthenticate("Bearer   realm = \"https://a/t\" ,  service=registry.local ,scope=x");
  REQUIRE(cs.size() == 1);
  CHECK(cs[0].param("realm") == "https://a/t");
  CHECK(cs[0].param("service") == "registry.local");
  CHECK(cs[0].param("scope") == "x");
}

TEST_CASE("WWW-Authenticate: several challenges in one header") {
  auto cs = parseWwwAuthenticate(
      R"(Basic realm="basic-realm", Bearer realm="https://a/t",service="svc", Negotiate)");
  REQUIRE(cs.size() == 3);
  CHECK(cs[0].scheme == "basic");
  CHECK(cs[0].param("realm") == "basic-realm");
  CHECK(cs[1].scheme == "bearer");
  CHECK(cs[1].param("realm") == "https://a/t");
  CHECK(cs[1].param("service") == "svc");
  CHECK(cs[2].scheme == "negotiate");
  CHECK(cs[2].params.empty());
}

TEST_CASE("WWW-Authenticate: commas and spaces inside a quoted value") {
  auto cs = parseWwwAuthenticate(
      R"(Bearer realm="https://a/t",scope="repository:a/b:pull,push repository:c:pull",error="insufficient_scope")");
  REQUIRE(cs.size() == 1);
  CHECK(cs[0].param("scope") == "repository:a/b:pull,push repository:c:pull");
  CHECK(cs[0].param("error") == "insufficient_scope");
}

TEST_CASE("WWW-Authenticate: empty and blank headers") {
  CHECK(parseWwwAuthenticate("").empty());
  CHECK(parseWwwAuthenticate("   ").empty());
  CHECK(parseWwwAuthenticate(" , ,, ").empty());
}

TEST_CASE("WWW-Authenticate: token68 then another challenge") {
  auto cs = parseWwwAuthenticate(R"(Negotiate abc/def+123==, Basic realm="r")");
  REQUIRE(cs.size() == 2);
  CHECK(cs[0].scheme == "negotiate");
  CHECK(cs[0].param("") == "abc/def+123==");
  CHECK(cs[1].scheme == "basic");
  CHECK(cs[1].param("realm") == "r");
}

TEST_CASE("WWW-Authenticate: extra commas between parameters and challenges") {
  auto cs = parseWwwAuthenticate(R"(, Bearer realm="x" ,, service="y",, , Basic realm="z",)");
  REQUIRE(cs.size() == 2);
  CHECK(cs[0].param("realm") == "x");
  CHECK(cs[0].param("service") == "y");
  CHECK(cs[1].scheme == "basic");
  CHECK(cs[1].param("realm") == "z");
}

TEST_CASE("WWW-Authenticate: unterminated quoted string runs to the end") {
  auto cs = parseWwwAuthenticate(R"(Bearer service="s",realm="https://a/t)");
  REQUIRE(cs.size() == 1);
  CHECK(cs[0].param("service") == "s");
  CHECK(cs[0].param("realm") == "https://a/t");
}

TEST_CASE("WWW-Authenticate: a repeated parameter keeps its first value") {
  auto cs = parseWwwAuthenticate(R"(Bearer realm="first",realm="second")");
  REQUIRE(cs.size() == 1);
  CHECK(cs[0].param("realm") == "first");
}

TEST_CASE("WWW-Authenticate: empty quoted value and junk are tolerated") {
  auto cs = parseWwwAuthenticate(R"(Bearer realm="",service="s" trailing junk, Basic realm=r)");
  REQUIRE(cs.size() == 2);
  CHECK(cs[0].params.count("realm") == 1);
  CHECK(cs[0].param("realm").empty());
  CHECK(cs[0].param("service") == "s");
  REQUIRE(find(cs, "basic") != nullptr);
  CHECK(find(cs, "basic")->param("realm") == "r");
}

TEST_CASE("WWW-Authenticate: joined repeated headers") {
  // Two WWW-Authenticate headers arrive joined with ", ".
  auto cs = parseWwwAuthenticate(R"(Bearer realm="https://a/t",service="svc", Basic realm="b")");
  REQUIRE(cs.size() == 2);
  CHECK(find(cs, "bearer")->param("service") == "svc");
  CHECK(find(cs, "basic")->param("realm") == "b");
}

TEST_CASE("WWW-Authenticate: arbitrary input ends and stays within bounds") {
  // Deterministic pseudo-random headers over the characters that matter to
  // the grammar: every parse must terminate (each step consumes input).
  const std::string alphabet = "ab=,\" \\\t/Br";
  uint32_t x = 12345;
  int bad = 0;
  for (int n = 0; n < 3000; ++n) {
    std::string h;
    const int len = n % 40;
    for (int i = 0; i < len; ++i) {
      x = x * 1664525u + 1013904223u;
      h.push_back(alphabet[(x >> 16) % alphabet.size()]);
    }
    auto cs = parseWwwAuthenticate(h);
    if (cs.size() > h.size()) ++bad;
    for (const auto& c : cs) bad += c.scheme.empty() ? 1 : 0;
  }
  CHECK(bad == 0);
}

// ---- endpoints -------------------------------------------------------------------------------

TEST_CASE("endpoints: docker.io without mirrors is registry-1.docker.io over https") {
  RegistryConfig cfg;
  auto eps = registryEndpoints(cfg, "docker.io");
  REQUIRE(eps.size() == 1);
  CHECK(eps[0].baseUrl == "https://registry-1.docker.io");
  CHECK_FALSE(eps[0].mirror);
}

TEST_CASE("endpoints: other registries over https, insecure ones over http") {
  RegistryConfig cfg;
  cfg.insecure = {"127.0.0.1:5000", "registry.local"};
  CHECK(registryEndpoints(cfg, "ghcr.io").at(0).baseUrl == "https://ghcr.io");
  CHECK(registryEndpoints(cfg, "127.0.0.1:5000").at(0).baseUrl == "http://127.0.0.1:5000");
  CHECK(registryEndpoints(cfg, "registry.local").at(0).baseUrl == "http://registry.local");
  CHECK(registryEndpoints(cfg, "registry.local:443").at(0).baseUrl == "https://registry.local:443");
}

TEST_CASE("endpoints: mirrors only, in order, never the registry itself") {
  RegistryConfig cfg;
  cfg.mirrors["docker.io"] = {"http://127.0.0.1:5000/", "https://mirror.example", "mirror2:5001"};
  cfg.insecure = {"mirror2:5001"};
  auto eps = registryEndpoints(cfg, "docker.io");
  REQUIRE(eps.size() == 3);
  CHECK(eps[0].baseUrl == "http://127.0.0.1:5000");
  CHECK(eps[1].baseUrl == "https://mirror.example");
  CHECK(eps[2].baseUrl == "http://mirror2:5001");
  for (const auto& e : eps) {
    CHECK(e.mirror);
    CHECK(e.baseUrl.find("docker.io") == std::string::npos);
  }
  // Other registries are unaffected by docker.io's mirrors.
  auto q = registryEndpoints(cfg, "quay.io");
  REQUIRE(q.size() == 1);
  CHECK(q[0].baseUrl == "https://quay.io");
}

TEST_CASE("endpoints: an empty mirror list means the registry itself") {
  RegistryConfig cfg;
  cfg.mirrors["ghcr.io"] = {};
  auto eps = registryEndpoints(cfg, "ghcr.io");
  REQUIRE(eps.size() == 1);
  CHECK(eps[0].baseUrl == "https://ghcr.io");
  CHECK_FALSE(eps[0].mirror);
}

// ---- references and digests -----------------------------------------------------------------

TEST_CASE("ImageRef: name and reference") {
  ImageRef r{"docker.io", "library/alpine", "3.20", ""};
  CHECK(r.name() == "docker.io/library/alpine:3.20");
  CHECK(r.reference() == "3.20");
  const std::string d = "sha256:" + std::string(64, '0');
  ImageRef byDigest{"docker.io", "library/alpine", "", d};
  CHECK(byDigest.name() == "docker.io/library/alpine@" + d);
  CHECK(byDigest.reference() == d);
  ImageRef both{"127.0.0.1:5000", "a/b", "1", d};
  CHECK(both.name() == "127.0.0.1:5000/a/b:1@" + d);
  CHECK(both.reference() == d);
  CHECK(ImageRef{"ghcr.io", "x/y", "", ""}.reference() == "latest");
}

TEST_CASE("sha256Digest and isSha256Digest") {
  CHECK(sha256Digest("abc") ==
        "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(sha256Digest("") ==
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(isSha256Digest(kDiff0));
  CHECK_FALSE(isSha256Digest("sha256:ABC"));
  CHECK_FALSE(isSha256Digest("sha512:" + std::string(64, 'a')));
  CHECK_FALSE(isSha256Digest("sha256:" + std::string(63, 'a') + "G"));
  CHECK_FALSE(isSha256Digest(""));
}

// ---- chain ids
// ------------------------------------------------------------------------------------

TEST_CASE("chainIds: first is the diff id, then sha256(parent + ' ' + diff id)") {
  CHECK(chainIds({}).empty());
  auto one = chainIds({kDiff0});
  REQUIRE(one.size() == 1);
  CHECK(one[0] == kDiff0);
  auto two = chainIds({kDiff0, kDiff1});
  REQUIRE(two.size() == 2);
  CHECK(two[0] == kDiff0);
  CHECK(two[1] == kChain1);
  auto three = chainIds({kDiff0, kDiff1, kDiff2});
  REQUIRE(three.size() == 3);
  CHECK(three[2] == kChain2);
}

// ---- platforms
// ------------------------------------------------------------------------------------

TEST_CASE("platformFromMachine maps uname names to OCI ones") {
  CHECK(platformFromMachine("x86_64").str() == "linux/amd64");
  CHECK(platformFromMachine("aarch64").str() == "linux/arm64/v8");
  CHECK(platformFromMachine("armv7l").str() == "linux/arm/v7");
  CHECK(platformFromMachine("i686").str() == "linux/386");
  CHECK(platformFromMachine("s390x").str() == "linux/s390x");
  CHECK(hostPlatform().os == "linux");
  CHECK_FALSE(hostPlatform().architecture.empty());
}

TEST_CASE("selectPlatformManifest: amd64 picked even when arm64 comes first") {
  std::string idx = index({
      entry(kArmDigest, R"({"architecture":"arm64","os":"linux","variant":"v8"})"),
      entry(kAmdDigest, R"({"architecture":"amd64","os":"linux"})"),
  });
  auto d = selectPlatformManifest(idx, Platform{"linux", "amd64", ""});
  REQUIRE(d.ok());
  CHECK(d->digest == kAmdDigest);
  CHECK(d->size == 123);
  CHECK(d->mediaType == "application/vnd.oci.image.manifest.v1+json");

  auto arm = selectPlatformManifest(idx, Platform{"linux", "arm64", "v8"});
  REQUIRE(arm.ok());
  CHECK(arm->digest == kArmDigest);
  // arm64 with no variant is v8.
  auto arm2 = selectPlatformManifest(idx, Platform{"linux", "arm64", ""});
  REQUIRE(arm2.ok());
  CHECK(arm2->digest == kArmDigest);
}

TEST_CASE("selectPlatformManifest: Docker manifest list, attestations and windows skipped") {
  const std::string dockerMt = "application/vnd.docker.distribution.manifest.v2+json";
  std::string idx =
      "{\"schemaVersion\":2,\"mediaType\":"
      "\"application/vnd.docker.distribution.manifest.list.v2+json\",\"manifests\":[" +
      entry(kOtherDigest, R"({"architecture":"unknown","os":"unknown"})") + "," +
      entry(kArmDigest, R"({"architecture":"amd64","os":"windows"})", dockerMt) + "," +
      entry(kAmdDigest, R"({"architecture":"amd64","os":"linux"})", dockerMt) + "]}";
  auto d = selectPlatformManifest(idx, Platform{"linux", "amd64", ""});
  REQUIRE(d.ok());
  CHECK(d->digest == kAmdDigest);
  CHECK(d->mediaType == dockerMt);
}

TEST_CASE("selectPlatformManifest: the variant decides between entries") {
  std::string idx = index({
      entry(kOtherDigest, R"({"architecture":"arm","os":"linux","variant":"v6"})"),
      entry(kArmDigest, R"({"architecture":"arm","os":"linux","variant":"v7"})"),
      entry(kAmdDigest, R"({"architecture":"arm","os":"linux","variant":"v8"})"),
  });
  auto v7 = selectPlatformManifest(idx, Platform{"linux", "arm", "v7"});
  REQUIRE(v7.ok());
  CHECK(v7->digest == kArmDigest);
  auto v6 = selectPlatformManifest(idx, Platform{"linux", "arm", "v6"});
  REQUIRE(v6.ok());
  CHECK(v6->digest == kOtherDigest);
  // amd64 variants (v2, v3) are not needed to choose: still a match.
  std::string amd =
      index({entry(kAmdDigest, R"({"architecture":"amd64","os":"linux","variant":"v3"})")});
  auto a = selectPlatformManifest(amd, Platform{"linux", "amd64", ""});
  REQUIRE(a.ok());
  CHECK(a->digest == kAmdDigest);
}

TEST_CASE("selectPlatformManifest: no match names what the index has") {
  std::string idx = index({
      entry(kArmDigest, R"({"architecture":"arm64","os":"linux","variant":"v8"})"),
      entry(kOtherDigest, R"({"architecture":"s390x","os":"linux"})"),
  });
  auto d = selectPlatformManifest(idx, Platform{"linux", "amd64", ""});
  REQUIRE_FALSE(d.ok());
  CHECK(d.message() == "no manifest for linux/amd64 (index has: linux/arm64/v8, linux/s390x)");
  CHECK(d.error().code == kErrNotFound);
}

TEST_CASE("selectPlatformManifest: entries without a platform are a last resort") {
  std::string idx = index(
      {entry(kOtherDigest, ""), entry(kAmdDigest, R"({"architecture":"amd64","os":"linux"})")});
  auto d = selectPlatformManifest(idx, Platform{"linux", "amd64", ""});
  REQUIRE(d.ok());
  CHECK(d->digest == kAmdDigest);
  auto only =
      selectPlatformManifest(index({entry(kOtherDigest, "")}), Platform{"linux", "amd64", ""});
  REQUIRE(only.ok());
  CHECK(only->digest == kOtherDigest);
}

TEST_CASE("selectPlatformManifest: malformed documents") {
  CHECK_FALSE(selectPlatformManifest("not json", Platform{"linux", "amd64", ""}).ok());
  auto none = selectPlatformManifest(R"({"schemaVersion":2})", Platform{"linux", "amd64", ""});
  REQUIRE_FALSE(none.ok());
  CHECK(none.message() == "index has no manifests");
  // A bad digest disqualifies only its own entry.
  std::string idx = index({entry("sha256:short", R"({"architecture":"amd64","os":"linux"})")});
  CHECK_FALSE(selectPlatformManifest(idx, Platform{"linux", "amd64", ""}).ok());
}

// ---- manifests and configs
// ------------------------------------------------------------------------

TEST_CASE("parseImageManifest: config and layers") {
  std::string m = R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
    "config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":")" +
                  kAmdDigest + R"(","size":456},
    "layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":")" +
                  std::string(kDiff0) + R"(","size":1000,"annotations":{"a":"b"}},
              {"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","digest":")" +
                  std::string(kDiff1) + R"(","size":2000}]})";
  auto r = parseImageManifest(m);
  REQUIRE(r.ok());
  CHECK(r->config.digest == kAmdDigest);
  CHECK(r->config.size == 456);
  REQUIRE(r->layers.size() == 2);
  CHECK(r->layers[0].digest == kDiff0);
  CHECK(r->layers[0].size == 1000);
  CHECK(r->layers[0].mediaType == "application/vnd.oci.image.layer.v1.tar+gzip");
  CHECK(r->layers[0].annotations.at("a") == "b");
  CHECK(r->layers[1].mediaType == "application/vnd.docker.image.rootfs.diff.tar.gzip");
}

TEST_CASE("parseImageManifest: errors") {
  auto v1 = parseImageManifest(R"({"schemaVersion":1,"fsLayers":[]})");
  REQUIRE_FALSE(v1.ok());
  CHECK(v1.message() == "unsupported schemaVersion 1");
  auto noConfig = parseImageManifest(R"({"schemaVersion":2,"layers":[]})");
  REQUIRE_FALSE(noConfig.ok());
  CHECK(noConfig.message() == "manifest has no config");
  auto bad = parseImageManifest(R"({"schemaVersion":2,"config":{"digest":")" + kAmdDigest +
                                R"(","size":1},"layers":[{"digest":"md5:x","size":1}]})");
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.message() == "layers[0]: unsupported or invalid digest \"md5:x\"");
}

TEST_CASE("parseImageConfig: the fields a sandbox needs") {
  std::string cfg = R"({"architecture":"amd64","os":"linux","created":"2024-01-01T00:00:00Z",
    "config":{"User":"1000:1000","Env":["PATH=/usr/bin:/bin","FOO=from-image"],
              "Entrypoint":["/bin/sh","-c"],"Cmd":["echo \"hi\""],"WorkingDir":"/work",
              "Labels":{"x":"y"},"ExposedPorts":{"80/tcp":{}}},
    "rootfs":{"type":"layers","diff_ids":[")" +
                    std::string(kDiff0) + R"(",")" + kDiff1 + R"("]},
    "history":[{"created_by":"x"}]})";
  auto r = parseImageConfig(cfg);
  REQUIRE(r.ok());
  CHECK(r->platform.str() == "linux/amd64");
  CHECK(r->entrypoint == std::vector<std::string>{"/bin/sh", "-c"});
  CHECK(r->cmd == std::vector<std::string>{"echo \"hi\""});
  CHECK(r->env == std::vector<std::string>{"PATH=/usr/bin:/bin", "FOO=from-image"});
  CHECK(r->workingDir == "/work");
  CHECK(r->user == "1000:1000");
  CHECK(r->diffIds == std::vector<std::string>{kDiff0, kDiff1});
}

TEST_CASE("parseImageConfig: null and missing fields are empty") {
  auto r = parseImageConfig(
      R"({"architecture":"arm64","variant":"v8","os":"linux","config":{"Entrypoint":null,"Cmd":["sh"]},)"
      R"("rootfs":{"type":"layers","diff_ids":[")" +
      std::string(kDiff2) + R"("]}})");
  REQUIRE(r.ok());
  CHECK(r->platform.str() == "linux/arm64/v8");
  CHECK(r->entrypoint.empty());
  CHECK(r->cmd == std::vector<std::string>{"sh"});
  CHECK(r->env.empty());
  CHECK(r->workingDir.empty());
  CHECK(r->diffIds.size() == 1);
  auto bare = parseImageConfig(R"({"rootfs":{"diff_ids":[]}})");
  REQUIRE(bare.ok());
  CHECK(bare->diffIds.empty());
}

TEST_CASE("parseImageConfig: errors") {
  CHECK_FALSE(parseImageConfig("{").ok());
  auto wrongType = parseImageConfig(R"({"config":{"Cmd":"sh"}})");
  REQUIRE_FALSE(wrongType.ok());
  CHECK(wrongType.message() == "config.Cmd: expected array");
  auto badDiff = parseImageConfig(R"({"rootfs":{"diff_ids":["sha256:zz"]}})");
  REQUIRE_FALSE(badDiff.ok());
  CHECK(badDiff.message() == "rootfs.diff_ids[0]: unsupported or invalid diff id \"sha256:zz\"");
}

TEST_CASE("media types") {
  CHECK(isIndexMediaType("application/vnd.oci.image.index.v1+json"));
  CHECK(isIndexMediaType("application/vnd.docker.distribution.manifest.list.v2+json"));
  CHECK_FALSE(isIndexMediaType("application/vnd.oci.image.manifest.v1+json"));
  CHECK(isManifestMediaType("application/vnd.oci.image.manifest.v1+json"));
  CHECK(isManifestMediaType("application/vnd.docker.distribution.manifest.v2+json"));
  CHECK_FALSE(isManifestMediaType("application/vnd.docker.distribution.manifest.v1+prettyjws"));
}
