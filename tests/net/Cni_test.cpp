// Cni: what each plugin is given (a fake CommandRunner), how its answers
// and errors are read, the conflist written and checked; then the real
// plugins in /usr/lib/cni on a bridge, subnet and namespace of the test's
// own (the tests run as root), all removed afterwards.
#include "net/Cni.h"

#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "net/Netns.h"
#include "reactor/Fd.h"

using namespace sbx;
using namespace sbx::net;
namespace fs = std::filesystem;

namespace {

struct CniTempDir {
  std::string path;
  CniTempDir() {
    char tmpl[] = "/tmp/sbx-cni-test.XXXXXX";
    path = ::mkdtemp(tmpl);
  }
  ~CniTempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

std::string readFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void writeFile(const std::string& path, const std::string& text) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path) << text;
}

std::string replaced(std::string s, const std::string& from, const std::string& to) {
  size_t pos = s.find(from);
  REQUIRE_MESSAGE(pos != std::string::npos, from);
  return s.replace(pos, from.size(), to);
}

std::string envValue(const CommandSpec& spec, const std::string& name) {
  for (const auto& kv : spec.env) {
    if (kv.rfind(name + "=", 0) == 0) return kv.substr(name.size() + 1);
  }
  return "<unset>";
}

// "bridge ADD", "loopback DEL", "iptables-save".
std::string callName(const CommandSpec& spec) {
  std::string name = fs::path(spec.argv.at(0)).filename().string();
  std::string command = envValue(spec, "CNI_COMMAND");
  return command == "<unset>" ? name : name + " " + command;
}

// Records every run; answers from `replies` by callName, else exit 0 with
// "{}" (what loopback and DELs print is not read).
struct FakeRunner {
  std::vector<CommandSpec> calls;
  std::map<std::string, CommandResult> replies;
  std::map<std::string, std::string> startErrors;

  CommandRunner runner() {
    return [this](const CommandSpec& spec) -> Result<CommandResult> {
      calls.push_back(spec);
      auto e = startErrors.find(callName(spec));
      if (e != startErrors.end()) return Error(e->second);
      auto r = replies.find(callName(spec));
      if (r != replies.end()) return r->second;
      return CommandResult{0, "{}", ""};
    };
  }
  std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (const auto& c : calls) out.push_back(callName(c));
    return out;
  }
};

// What bridge 1.1.1 prints for an ADD (pretty-printed, as it does).
const std::string kBridgeResult = R"({
    "cniVersion": "1.0.0",
    "interfaces": [
        {"name": "sbx-br0", "mac": "0e:c5:bc:64:df:23"},
        {"name": "veth871aeb5e", "mac": "06:58:23:c7:c1:ef"},
        {"name": "eth0", "mac": "76:8f:4c:2f:d2:47", "sandbox": "/run/netns/sb1"}
    ],
    "ips": [{"interface": 2, "address": "10.89.0.5/16", "gateway": "10.89.0.1"}],
    "routes": [{"dst": "0.0.0.0/0"}],
    "dns": {}
})";
const std::string kBridgeResultMin =
    R"({"cniVersion":"1.0.0","interfaces":[{"name":"sbx-br0","mac":"0e:c5:bc:64:df:23"},)"
    R"({"name":"veth871aeb5e","mac":"06:58:23:c7:c1:ef"},)"
    R"({"name":"eth0","mac":"76:8f:4c:2f:d2:47","sandbox":"/run/netns/sb1"}],)"
    R"("ips":[{"interface":2,"address":"10.89.0.5/16","gateway":"10.89.0.1"}],)"
    R"("routes":[{"dst":"0.0.0.0/0"}],"dns":{}})";

// A config in a temp dir, with stand-in plugin binaries.
struct Fixture {
  CniTempDir tmp;
  CniConfig cfg;
  FakeRunner fake;

  Fixture() {
    cfg.binDir = tmp.path + "/bin";
    cfg.confPath = tmp.path + "/etc/cni/sandboxd.d/20-sbxnet.conflist";
    cfg.bridge = "sbx-br0";
    cfg.subnetCidr = "10.89.0.0/16";
    cfg.ipamDataDir = tmp.path + "/state/cni/networks";
    fs::create_directories(cfg.binDir);
    for (const char* p : {"bridge", "host-local", "portmap", "loopback"}) {
      std::string bin = cfg.binDir + "/" + p;
      writeFile(bin, "#!/bin/sh\nexit 1\n");
      ::chmod(bin.c_str(), 0755);
    }
    fake.replies["bridge ADD"] = CommandResult{0, kBridgeResult, ""};
  }
  std::string ensureError(const std::string& conflist) {
    writeFile(cfg.confPath, conflist);
    Cni cni(cfg, fake.runner());
    Status st = cni.ensureConfig();
    return st.ok() ? "ok" : st.message();
  }
  std::vector<std::string> expectedEnv(const std::string& command, const std::string& id,
                                       const std::string& netns, const std::string& ifname) const {
    return {"CNI_COMMAND=" + command,
            "CNI_CONTAINERID=" + id,
            "CNI_NETNS=" + netns,
            "CNI_IFNAME=" + ifname,
            "CNI_PATH=" + cfg.binDir,
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"};
  }
};

const std::string kLoopbackConf =
    R"({"cniVersion":"1.0.0","name":"sbxnet-sbx-br0","type":"loopback"})";

}  // namespace

TEST_CASE("Cni: the rendered conflist") {
  CniConfig cfg;
  cfg.bridge = "sbx-br0";
  cfg.subnetCidr = "10.89.0.0/16";
  cfg.ipamDataDir = "/var/lib/sbx/cni/networks";
  CHECK(
      renderConflist(cfg) ==
      R"({"cniVersion":"1.0.0","name":"sbxnet-sbx-br0","plugins":[)"
      R"({"type":"bridge","bridge":"sbx-br0","isGateway":true,"ipMasq":false,"hairpinMode":true,)"
      R"("ipam":{"type":"host-local","ranges":[[{"subnet":"10.89.0.0/16"}]],"routes":[{"dst":"0.0.0.0/0"}],)"
      R"("dataDir":"/var/lib/sbx/cni/networks"}},)"
      R"({"type":"portmap","capabilities":{"portMappings":true},"snat":true},)"
      R"({"type":"loopback"}]})"
      "\n");
  cfg.networkName = "custom";
  CHECK(renderConflist(cfg).find(R"("name":"custom")") != std::string::npos);
  CHECK(Cni(cfg).networkName() == "custom");
}

TEST_CASE("Cni: ensureConfig writes a missing conflist, then accepts it") {
  Fixture f;
  Cni cni(f.cfg, f.fake.runner());
  CHECK(cni.networkName() == "sbxnet-sbx-br0");
  const mode_t oldMask = ::umask(077);
  Status st = cni.ensureConfig();
  ::umask(oldMask);
  REQUIRE_MESSAGE(st.ok(), (st.ok() ? "" : st.message()));
  CHECK(readFile(f.cfg.confPath) == renderConflist(f.cfg));
  struct stat sb {};
  REQUIRE(::stat(f.cfg.confPath.c_str(), &sb) == 0);
  CHECK((sb.st_mode & 0777) == 0644);
  // Nothing but the file itself is left in its directory.
  std::vector<std::string> entries;
  for (const auto& e : fs::directory_iterator(fs::path(f.cfg.confPath).parent_path())) {
    entries.push_back(e.path().filename().string());
  }
  CHECK(entries == std::vector<std::string>{"20-sbxnet.conflist"});
  CHECK(f.fake.calls.empty());

  // Present now: read and checked, not rewritten.
  Cni again(f.cfg, f.fake.runner());
  CHECK(again.ensureConfig().ok());
  CHECK(readFile(f.cfg.confPath) == renderConflist(f.cfg));
}

TEST_CASE("Cni: ensureConfig checks an operator's conflist") {
  Fixture f;
  const std::string good = renderConflist(f.cfg);
  const std::string p = f.cfg.confPath + ": ";
  CHECK(f.ensureError(good) == "ok");
  // host-local's older single-subnet form, another cniVersion, extra keys.
  CHECK(f.ensureError(replaced(replaced(good, R"("ranges":[[{"subnet":"10.89.0.0/16"}]])",
                                        R"("subnet":"10.89.0.0/16")"),
                               R"("cniVersion":"1.0.0")", R"("cniVersion":"0.4.0")")) == "ok");
  CHECK(f.ensureError(replaced(good, R"("bridge":"sbx-br0")", R"("bridge":"br9")")) ==
        p + R"(bridge is "br9", want "sbx-br0")");
  CHECK(f.ensureError(replaced(good, R"("bridge":"sbx-br0",)", "")) ==
        p + R"(bridge is missing, want "sbx-br0")");
  CHECK(f.ensureError(replaced(good, R"("subnet":"10.89.0.0/16")", R"("subnet":"10.1.0.0/16")")) ==
        p + R"(bridge ipam subnet is "10.1.0.0/16", want "10.89.0.0/16")");
  CHECK(f.ensureError(replaced(good, R"("type":"host-local")", R"("type":"dhcp")")) ==
        p + R"(bridge ipam type is "dhcp", want "host-local")");
  CHECK(f.ensureError(replaced(good, "/state/cni/networks", "/elsewhere")) ==
        p + "bridge ipam dataDir is \"" + f.tmp.path + "/elsewhere\", want \"" + f.cfg.ipamDataDir +
            "\"");
  CHECK(f.ensureError(replaced(
            good, R"({"type":"portmap","capabilities":{"portMappings":true},"snat":true},)", "")) ==
        p + R"(no "portmap" plugin)");
  CHECK(f.ensureError(replaced(good, R"(,{"type":"loopback"})", "")) ==
        p + R"(no "loopback" plugin)");
  CHECK(f.ensureError(replaced(good, R"("capabilities":{"portMappings":true},)", "")) ==
        p + R"(portmap does not declare "capabilities": {"portMappings": true})");
  CHECK(
      f.ensureError(
          replaced(good, R"({"type":"loopback"})", R"({"type":"loopback"},{"type":"firewall"})")) ==
      p + R"(plugins[3]: plugin "firewall" is not supported (sandboxd runs bridge, portmap, loopback))");
  CHECK(f.ensureError(replaced(good, R"({"type":"loopback"})",
                               R"({"type":"loopback"},{"type":"loopback"})")) ==
        p + R"(plugin "loopback" appears twice)");
  CHECK(f.ensureError(replaced(good, R"("name":"sbxnet-sbx-br0")", R"("name":"other")")) ==
        p + R"(name is "other", want "sbxnet-sbx-br0")");
  CHECK(f.ensureError(R"({"cniVersion":"1.0.0","name":"sbxnet-sbx-br0","type":"bridge"})") ==
        p + R"(not a conflist (no "plugins" array))");
  CHECK(f.ensureError("[1,2]") == p + "not a JSON object");
  std::string notJson = f.ensureError("{\"cniVersion\": ");
  CHECK(notJson.rfind(p + "invalid JSON: ", 0) == 0);
}

TEST_CASE("Cni: ensureConfig rejects bad settings and missing plugins") {
  Fixture f;
  auto error = [&](const CniConfig& cfg) {
    Cni cni(cfg, f.fake.runner());
    Status st = cni.ensureConfig();
    return st.ok() ? std::string("ok") : st.message();
  };
  CniConfig cfg = f.cfg;
  cfg.subnetCidr = "10.89.0.0";
  CHECK(error(cfg) == R"(cni: subnet "10.89.0.0" is not an IPv4 CIDR such as 10.89.0.0/16)");
  cfg.subnetCidr = "10.89.0.0/33";
  CHECK(error(cfg) == R"(cni: subnet "10.89.0.0/33" is not an IPv4 CIDR such as 10.89.0.0/16)");
  cfg = f.cfg;
  cfg.bridge = "a-very-long-bridge";
  CHECK(error(cfg) == R"(cni: bridge name "a-very-long-bridge" is longer than 15 characters)");
  cfg = f.cfg;
  cfg.ipamDataDir.clear();
  CHECK(error(cfg) == "cni: ipamDataDir is not set");
  CHECK_FALSE(fs::exists(f.cfg.confPath));

  fs::remove(f.cfg.binDir + "/portmap");
  CHECK(error(f.cfg) == "cni: plugin " + f.cfg.binDir + "/portmap: No such file or directory");
}

TEST_CASE("Cni: nothing runs before ensureConfig succeeds") {
  Fixture f;
  Cni cni(f.cfg, f.fake.runner());
  CHECK(cni.attach("sb1", "/run/netns/sb1").message() ==
        "cni: attach before a successful ensureConfig");
  CHECK_FALSE(cni.detach("sb1", "/run/netns/sb1", "", {}).ok());
  CHECK_FALSE(cni.publishPorts("sb1", "/run/netns/sb1", kBridgeResult, {{8080, 80, "tcp"}}).ok());
  CHECK(f.fake.calls.empty());
}

TEST_CASE("Cni: attach runs loopback then bridge, with the list's name and version") {
  Fixture f;
  Cni cni(f.cfg, f.fake.runner());
  REQUIRE(cni.ensureConfig().ok());
  auto att = cni.attach("sb1", "/run/netns/sb1");
  REQUIRE_MESSAGE(att.ok(), (att.ok() ? "" : att.message()));
  CHECK(att->ip == "10.89.0.5");
  CHECK(att->gateway == "10.89.0.1");
  CHECK(att->hostVeth == "veth871aeb5e");
  CHECK(att->result == kBridgeResultMin);

  REQUIRE(f.fake.names() == std::vector<std::string>{"loopback ADD", "bridge ADD"});
  const CommandSpec& lo = f.fake.calls[0];
  CHECK(lo.argv == std::vector<std::string>{f.cfg.binDir + "/loopback"});
  CHECK(lo.replaceEnv);
  CHECK(lo.env == f.expectedEnv("ADD", "sb1", "/run/netns/sb1", "lo"));
  CHECK(lo.stdinData == kLoopbackConf);
  CHECK(lo.timeout == std::chrono::milliseconds(30000));

  const CommandSpec& br = f.fake.calls[1];
  CHECK(br.argv == std::vector<std::string>{f.cfg.binDir + "/bridge"});
  CHECK(br.env == f.expectedEnv("ADD", "sb1", "/run/netns/sb1", "eth0"));
  CHECK(
      br.stdinData ==
      R"({"cniVersion":"1.0.0","name":"sbxnet-sbx-br0","type":"bridge","bridge":"sbx-br0","isGateway":true,)"
      R"("ipMasq":false,"hairpinMode":true,"ipam":{"type":"host-local","ranges":[[{"subnet":"10.89.0.0/16"}]],)"
      R"("routes":[{"dst":"0.0.0.0/0"}],"dataDir":")" +
          f.cfg.ipamDataDir + R"("}})");
}

TEST_CASE("Cni: an operator's keys reach the plugin; runtime keys in the file do not") {
  Fixture f;
  std::string conf =
      replaced(renderConflist(f.cfg), R"("hairpinMode":true,)",
               R"("hairpinMode":true,"mtu":1400,"name":"stale","prevResult":{"x":1},)");
  conf = replaced(conf, R"("cniVersion":"1.0.0")", R"("cniVersion":"0.4.0")");
  writeFile(f.cfg.confPath, conf);
  Cni cni(f.cfg, f.fake.runner());
  REQUIRE(cni.ensureConfig().ok());
  REQUIRE(cni.attach("sb1", "/run/netns/sb1").ok());
  const std::string& stdinData = f.fake.calls.at(1).stdinData;
  CHECK(stdinData.rfind(R"({"cniVersion":"0.4.0","name":"sbxnet-sbx-br0","type":"bridge",)", 0) ==
        0);
  CHECK(stdinData.find(R"("hairpinMode":true,"mtu":1400,"ipam")") != std::string::npos);
  CHECK(stdinData.find("stale") == std::string::npos);
  CHECK(stdinData.find("prevResult") == std::string::npos);
}

TEST_CASE("Cni: plugin errors, and an attach that fails is undone") {
  Fixture f;
  Cni cni(f.cfg, f.fake.runner());
  REQUIRE(cni.ensureConfig().ok());

  SUBCASE("the error JSON's msg and details") {
    f.fake.replies["bridge ADD"] = CommandResult{
        1,
        R"({"code":11,"msg":"failed to allocate for range 0","details":"no IP addresses available"})",
        ""};
    auto att = cni.attach("sb1", "/run/netns/sb1");
    REQUIRE_FALSE(att.ok());
    CHECK(att.message() ==
          "cni bridge ADD: failed to allocate for range 0: no IP addresses available");
    CHECK(f.fake.names() ==
          std::vector<std::string>{"loopback ADD", "bridge ADD", "bridge DEL", "loopback DEL"});
    CHECK(f.fake.calls[2].env == f.expectedEnv("DEL", "sb1", "/run/netns/sb1", "eth0"));
  }
  SUBCASE("msg without details; only a code") {
    f.fake.replies["bridge ADD"] = CommandResult{1, R"({"code":7,"msg":"bad config"})", ""};
    CHECK(cni.attach("sb1", "/run/netns/sb1").message() == "cni bridge ADD: bad config");
    f.fake.replies["bridge ADD"] = CommandResult{1, R"({"code":7})", ""};
    CHECK(cni.attach("sb1", "/run/netns/sb1").message() == "cni bridge ADD: error code 7");
  }
  SUBCASE("no error JSON: stderr, then the exit code") {
    f.fake.replies["loopback ADD"] = CommandResult{2, "not json", "panic: boom\nstack..."};
    CHECK(cni.attach("sb1", "/run/netns/sb1").message() ==
          "cni loopback ADD: exited with code 2: panic: boom");
    CHECK(f.fake.names() == std::vector<std::string>{"loopback ADD"});
    f.fake.replies["loopback ADD"] = CommandResult{137, "", ""};
    CHECK(cni.attach("sb1", "/run/netns/sb1").message() ==
          "cni loopback ADD: exited with code 137");
  }
  SUBCASE("the plugin does not start or times out") {
    f.fake.startErrors["bridge ADD"] = f.cfg.binDir + "/bridge timed out after 30000ms";
    CHECK(cni.attach("sb1", "/run/netns/sb1").message() ==
          "cni bridge ADD: " + f.cfg.binDir + "/bridge timed out after 30000ms");
    CHECK(f.fake.names().back() == "loopback DEL");
  }
  SUBCASE("a result without an IPv4 address or host veth") {
    f.fake.replies["bridge ADD"] = CommandResult{
        0,
        R"({"cniVersion":"1.0.0","interfaces":[{"name":"eth0","sandbox":"/x"}],"ips":[{"interface":0,"address":"fd00::5/64"}]})",
        ""};
    auto att = cni.attach("sb1", "/run/netns/sb1");
    CHECK(att.message().rfind(
              "cni bridge ADD: result has no IPv4 address for the sandbox's interface: ", 0) == 0);
    CHECK(f.fake.names() ==
          std::vector<std::string>{"loopback ADD", "bridge ADD", "bridge DEL", "loopback DEL"});
    f.fake.replies["bridge ADD"] = CommandResult{
        0,
        R"({"interfaces":[{"name":"sbx-br0"},{"name":"eth0","sandbox":"/x"}],"ips":[{"interface":1,"address":"10.89.0.9/16"}]})",
        ""};
    CHECK(cni.attach("sb1", "/run/netns/sb1")
              .message()
              .rfind("cni bridge ADD: result names no host-side veth: ", 0) == 0);
    f.fake.replies["bridge ADD"] = CommandResult{0, "garbage", ""};
    CHECK(cni.attach("sb1", "/run/netns/sb1")
              .message()
              .rfind("cni bridge ADD: invalid result: ", 0) == 0);
  }
}

TEST_CASE("Cni: publishPorts and unpublishPorts chain portmap after bridge") {
  Fixture f;
  Cni cni(f.cfg, f.fake.runner());
  REQUIRE(cni.ensureConfig().ok());
  const std::vector<PortMapping> ports = {{8080, 80, "tcp"}, {5353, 53, "udp"}};
  const std::string expected =
      R"({"cniVersion":"1.0.0","name":"sbxnet-sbx-br0","type":"portmap","capabilities":{"portMappings":true},)"
      R"("snat":true,"runtimeConfig":{"portMappings":[{"hostPort":8080,"containerPort":80,"protocol":"tcp"},)"
      R"({"hostPort":5353,"containerPort":53,"protocol":"udp"}]},"prevResult":)" +
      kBridgeResultMin + "}";

  REQUIRE(cni.publishPorts("sb1", "/run/netns/sb1", kBridgeResult, ports).ok());
  REQUIRE(cni.unpublishPorts("sb1", "/run/netns/sb1", kBridgeResultMin, ports).ok());
  REQUIRE(f.fake.names() == std::vector<std::string>{"portmap ADD", "portmap DEL"});
  CHECK(f.fake.calls[0].env == f.expectedEnv("ADD", "sb1", "/run/netns/sb1", "eth0"));
  CHECK(f.fake.calls[0].stdinData == expected);
  CHECK(f.fake.calls[1].env == f.expectedEnv("DEL", "sb1", "/run/netns/sb1", "eth0"));
  CHECK(f.fake.calls[1].stdinData == expected);

  f.fake.calls.clear();
  CHECK(cni.publishPorts("sb1", "/run/netns/sb1", kBridgeResult, {}).ok());
  CHECK(cni.unpublishPorts("sb1", "/run/netns/sb1", kBridgeResult, {}).ok());
  CHECK(cni.publishPorts("sb1", "/run/netns/sb1", "", ports).message() ==
        "cni portmap ADD: the attachment's result is empty");
  CHECK(cni.publishPorts("sb1", "/run/netns/sb1", "[1]", ports).message() ==
        "cni portmap ADD: the attachment's result is not a JSON object");
  CHECK(cni.publishPorts("sb1", "/run/netns/sb1", kBridgeResult, {{0, 80, "tcp"}}).message() ==
        "cni portmap ADD: invalid port mapping 0->80/tcp (ports 1-65535, tcp or udp)");
  CHECK(cni.publishPorts("sb1", "/run/netns/sb1", kBridgeResult, {{80, 80, "sctp"}}).message() ==
        "cni portmap ADD: invalid port mapping 80->80/sctp (ports 1-65535, tcp or udp)");
  CHECK(f.fake.calls.empty());
  // DEL needs no prevResult: an unreadable one is left out.
  REQUIRE(cni.unpublishPorts("sb1", "/run/netns/sb1", "", ports).ok());
  CHECK(f.fake.calls.at(0).stdinData.find("prevResult") == std::string::npos);

  f.fake.replies["portmap ADD"] = CommandResult{1, R"({"code":999,"msg":"port 8080 in use"})", ""};
  CHECK(cni.publishPorts("sb1", "/run/netns/sb1", kBridgeResult, ports).message() ==
        "cni portmap ADD: port 8080 in use");
}

TEST_CASE("Cni: detach deletes in reverse order and tries every plugin") {
  Fixture f;
  Cni cni(f.cfg, f.fake.runner());
  REQUIRE(cni.ensureConfig().ok());
  // A path that is a network namespace: this process's own.
  const std::string ns = "/proc/self/ns/net";
  const std::vector<PortMapping> ports = {{8080, 80, "tcp"}};

  SUBCASE("with ports and a result") {
    REQUIRE(cni.detach("sb1", ns, kBridgeResult, ports).ok());
    // No iptables-save: our bridge does not masquerade (the Firewall does),
    // so it leaves no rule to look for.
    REQUIRE(f.fake.names() == std::vector<std::string>{"portmap DEL", "bridge DEL", "loopback DEL"});
    CHECK(f.fake.calls[0].env == f.expectedEnv("DEL", "sb1", ns, "eth0"));
    CHECK(f.fake.calls[0].stdinData.find(R"("runtimeConfig":{"portMappings":[{"hostPort":8080,)") !=
          std::string::npos);
    CHECK(f.fake.calls[1].env == f.expectedEnv("DEL", "sb1", ns, "eth0"));
    CHECK(f.fake.calls[1].stdinData.rfind(
              R"({"cniVersion":"1.0.0","name":"sbxnet-sbx-br0","type":"bridge",)", 0) == 0);
    CHECK(f.fake.calls[1].stdinData.find(R"(,"prevResult":)" + kBridgeResultMin + "}") !=
          std::string::npos);
    CHECK(f.fake.calls[1].stdinData.find("runtimeConfig") == std::string::npos);
    CHECK(f.fake.calls[2].env == f.expectedEnv("DEL", "sb1", ns, "lo"));
    CHECK(f.fake.calls[2].stdinData == kLoopbackConf);
  }
  SUBCASE("no ports, no result") {
    REQUIRE(cni.detach("sb1", ns, "", {}).ok());
    REQUIRE(f.fake.names() == std::vector<std::string>{"bridge DEL", "loopback DEL"});
    CHECK(f.fake.calls[0].stdinData.find("prevResult") == std::string::npos);
  }
  SUBCASE("errors: every plugin still runs, the first error is returned") {
    f.fake.replies["portmap DEL"] = CommandResult{1, R"({"code":999,"msg":"iptables failed"})", ""};
    f.fake.replies["bridge DEL"] = CommandResult{1, R"({"code":999,"msg":"netlink failed"})", ""};
    Status st = cni.detach("sb1", ns, kBridgeResult, ports);
    CHECK(st.message() == "cni portmap DEL: iptables failed");
    CHECK(f.fake.names() == std::vector<std::string>{"portmap DEL", "bridge DEL", "loopback DEL"});
  }
}

TEST_CASE("Cni: detach after the namespace is gone releases the address and the masquerade rule") {
  Fixture f;
  // An operator's conflist whose bridge masquerades (ours leaves that to
  // the Firewall): its leftover rule is looked for on every detach.
  std::string conf = renderConflist(f.cfg);
  const std::string off = R"("ipMasq":false)";
  REQUIRE(conf.find(off) != std::string::npos);
  conf.replace(conf.find(off), off.size(), R"("ipMasq":true)");
  writeFile(f.cfg.confPath, conf);
  Cni cni(f.cfg, f.fake.runner());
  REQUIRE(cni.ensureConfig().ok());
  // What bridge leaves in nat when it cannot see the namespace, beside the
  // rules of a sandbox whose id starts with this one's.
  const std::string saved = R"(*nat
:POSTROUTING ACCEPT [0:0]
:CNI-aaaaaaaaaaaaaaaaaaaaaaaa - [0:0]
:CNI-bbbbbbbbbbbbbbbbbbbbbbbb - [0:0]
-A POSTROUTING -s 10.89.0.5/32 -m comment --comment "name: \"sbxnet-sbx-br0\" id: \"sb1\"" -j CNI-aaaaaaaaaaaaaaaaaaaaaaaa
-A POSTROUTING -s 10.89.0.6/32 -m comment --comment "name: \"sbxnet-sbx-br0\" id: \"sb10\"" -j CNI-bbbbbbbbbbbbbbbbbbbbbbbb
-A CNI-aaaaaaaaaaaaaaaaaaaaaaaa -d 10.89.0.0/16 -m comment --comment "name: \"sbxnet-sbx-br0\" id: \"sb1\"" -j ACCEPT
COMMIT
)";
  f.fake.replies["iptables-save"] = CommandResult{0, saved, ""};
  const std::string gone = f.tmp.path + "/netns/sb1";
  REQUIRE(cni.detach("sb1", gone, kBridgeResult, {{8080, 80, "tcp"}}).ok());
  REQUIRE(f.fake.names() == std::vector<std::string>{"portmap DEL", "bridge DEL", "iptables-save",
                                                     "iptables-restore", "loopback DEL"});
  CHECK(f.fake.calls[0].env == f.expectedEnv("DEL", "sb1", "", "eth0"));
  CHECK(f.fake.calls[1].env == f.expectedEnv("DEL", "sb1", "", "eth0"));
  CHECK(f.fake.calls[4].env == f.expectedEnv("DEL", "sb1", "", "lo"));
  auto args = [](const CommandSpec& spec) {
    std::vector<std::string> a = spec.argv;
    a[0] = fs::path(a[0]).filename().string();
    return a;
  };
  CHECK(args(f.fake.calls[2]) == std::vector<std::string>{"iptables-save", "-t", "nat"});
  CHECK(args(f.fake.calls[3]) == std::vector<std::string>{"iptables-restore", "-w", "--noflush"});
  CHECK(f.fake.calls[3].stdinData == R"(*nat
-D POSTROUTING -s 10.89.0.5/32 -m comment --comment "name: \"sbxnet-sbx-br0\" id: \"sb1\"" -j CNI-aaaaaaaaaaaaaaaaaaaaaaaa
-F CNI-aaaaaaaaaaaaaaaaaaaaaaaa
-X CNI-aaaaaaaaaaaaaaaaaaaaaaaa
COMMIT
)");

  // Nothing left: no restore.
  f.fake.calls.clear();
  f.fake.replies["iptables-save"] =
      CommandResult{0, "*nat\n:POSTROUTING ACCEPT [0:0]\nCOMMIT\n", ""};
  REQUIRE(cni.detach("sb1", gone, "", {}).ok());
  CHECK(f.fake.names() == std::vector<std::string>{"bridge DEL", "iptables-save", "loopback DEL"});

  f.fake.calls.clear();
  f.fake.replies["iptables-save"] = CommandResult{4, "", "iptables-save: lock busy"};
  const std::string failed = cni.detach("sb1", gone, "", {}).message();
  CHECK(failed.rfind("cni bridge DEL: ", 0) == 0);
  CHECK(failed.ends_with("iptables-save exited with code 4: iptables-save: lock busy"));
  CHECK(f.fake.names().back() == "loopback DEL");
}

// ---------------------------------------------------------------------------
// The real plugins.

namespace {

std::string run(const std::vector<std::string>& argv) {
  CommandSpec spec;
  spec.argv = argv;
  auto r = runCommand(spec);
  return r.ok() ? r->out + r->err : r.message();
}

// Connects to ip:port within 5 s; true when the handshake completed.
bool canConnect(const std::string& ip, uint16_t port) {
  Fd s(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  ::inet_pton(AF_INET, ip.c_str(), &addr.sin_addr);
  if (::connect(s.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) return true;
  if (errno != EINPROGRESS) return false;
  pollfd p{s.get(), POLLOUT, 0};
  if (::poll(&p, 1, 5000) != 1) return false;
  int err = 0;
  socklen_t len = sizeof err;
  ::getsockopt(s.get(), SOL_SOCKET, SO_ERROR, &err, &len);
  return err == 0;
}

// A connection is waiting on the listener (so it reached this one).
bool acceptOne(const Fd& listener) {
  pollfd p{listener.get(), POLLIN, 0};
  if (::poll(&p, 1, 5000) != 1) return false;
  Fd c(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
  return c.valid();
}

// The IPv4 addresses of `ifname` in the calling thread's namespace.
std::vector<std::string> addressesOf(const std::string& ifname) {
  std::vector<std::string> out;
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) return out;
  for (ifaddrs* a = list; a; a = a->ifa_next) {
    if (!a->ifa_addr || a->ifa_addr->sa_family != AF_INET || ifname != a->ifa_name) continue;
    char buf[INET_ADDRSTRLEN];
    ::inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(a->ifa_addr)->sin_addr, buf, sizeof buf);
    out.push_back(buf);
  }
  ::freeifaddrs(list);
  return out;
}

uint16_t freeHostPort() {
  for (int i = 0; i < 200; ++i) {
    uint16_t port = static_cast<uint16_t>(39000 + (::getpid() + i) % 1000);
    Fd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    if (::bind(s.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) return port;
  }
  return 0;
}

// Deletes from nat every rule whose comment names `id`, and the CNI-*
// chains they jump to, except portmap's shared CNI-HOSTPORT-* chains.
void removeRulesOf(const std::string& id) {
  std::istringstream save(run({"iptables-save", "-t", "nat"}));
  const std::string tag = "id: \\\"" + id + "\\\"";
  std::vector<std::string> lines;
  std::set<std::string> chains;
  for (std::string line; std::getline(save, line);) {
    if (line.rfind("-A ", 0) != 0 || line.find(tag) == std::string::npos) continue;
    lines.push_back(line);
    size_t j = line.rfind(" -j CNI-");
    if (j == std::string::npos) continue;
    std::string chain = line.substr(j + 4);
    chain = chain.substr(0, chain.find(' '));
    if (chain.rfind("CNI-HOSTPORT-", 0) != 0) chains.insert(chain);
  }
  std::string restore = "*nat\n";
  for (const auto& line : lines) {
    std::string chain = line.substr(3, line.find(' ', 3) - 3);
    if (!chains.count(chain)) restore += "-D" + line.substr(2) + "\n";
  }
  for (const auto& chain : chains) restore += "-F " + chain + "\n-X " + chain + "\n";
  restore += "COMMIT\n";
  if (lines.empty()) return;
  CommandSpec spec;
  spec.argv = {"iptables-restore", "-w", "--noflush"};
  spec.stdinData = restore;
  (void)runCommand(spec);
}

// Leaves the host as it was, also when a REQUIRE fails half-way.
struct RealNetworkCleanup {
  Netns& netns;
  std::vector<std::string> namespaces;
  std::string bridge;
  std::vector<std::string> ids;
  ~RealNetworkCleanup() {
    for (const auto& n : namespaces) (void)netns.remove(n);
    (void)run({"ip", "link", "del", bridge});
    for (const auto& id : ids) removeRulesOf(id);
  }
};

}  // namespace

TEST_CASE("Cni: the real plugins attach, publish a port, detach") {
  if (::geteuid() != 0 || ::access("/usr/lib/cni/bridge", X_OK) != 0) {
    MESSAGE("skipped: needs root and /usr/lib/cni");
    return;
  }
  const int pid = ::getpid();
  CniTempDir tmp;
  CniConfig cfg;
  cfg.binDir = "/usr/lib/cni";
  cfg.confPath = tmp.path + "/etc/cni/20-sbxnet.conflist";
  cfg.bridge = "sbxt" + std::to_string(pid % 100000);
  cfg.subnetCidr = "10.250." + std::to_string(pid % 256) + ".0/24";
  cfg.ipamDataDir = tmp.path + "/cni/networks";
  cfg.pluginTimeout = std::chrono::milliseconds(60000);
  Cni cni(cfg);
  REQUIRE(cni.ensureConfig().ok());

  Netns netns(tmp.path + "/netns");
  const std::string idA = "cnitest-" + std::to_string(pid) + "-a";
  const std::string idB = "cnitest-" + std::to_string(pid) + "-b";
  RealNetworkCleanup cleanup{netns, {"a", "b"}, cfg.bridge, {idA, idB}};
  auto nsA = netns.create("a");
  REQUIRE_MESSAGE(nsA.ok(), (nsA.ok() ? "" : nsA.message()));

  auto att = cni.attach(idA, *nsA);
  REQUIRE_MESSAGE(att.ok(), (att.ok() ? "" : att.message()));
  MESSAGE("attached: ", att->ip, " via ", att->hostVeth, " gw ", att->gateway);
  CHECK(att->ip.rfind("10.250." + std::to_string(pid % 256) + ".", 0) == 0);
  CHECK(att->gateway == "10.250." + std::to_string(pid % 256) + ".1");
  CHECK(::if_nametoindex(att->hostVeth.c_str()) != 0);
  const std::string lease = cfg.ipamDataDir + "/" + cni.networkName() + "/" + att->ip;
  CHECK(fs::exists(lease));
  CHECK(readFile(lease).rfind(idA, 0) == 0);

  // eth0 inside holds the address; a listener inside is reachable from here.
  const uint16_t containerPort = 8080;
  Fd listener;
  std::vector<std::string> eth0;
  REQUIRE(Netns::runIn(*nsA, [&]() -> Status {
            eth0 = addressesOf("eth0");
            listener = Fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
            sockaddr_in addr{};
            addr.sin_family = AF_INET;
            addr.sin_port = htons(containerPort);
            if (::bind(listener.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
                ::listen(listener.get(), 16) != 0) {
              return Error(std::string("listen: ") + std::strerror(errno));
            }
            return {};
          }).ok());
  CHECK(eth0 == std::vector<std::string>{att->ip});
  CHECK(canConnect(att->ip, containerPort));
  CHECK(acceptOne(listener));

  // A published port, reached through 127.0.0.1.
  const uint16_t hostPort = freeHostPort();
  REQUIRE(hostPort != 0);
  const std::vector<PortMapping> ports = {{hostPort, containerPort, "tcp"}};
  Status pub = cni.publishPorts(idA, *nsA, att->result, ports);
  REQUIRE_MESSAGE(pub.ok(), (pub.ok() ? "" : pub.message()));
  CHECK(canConnect("127.0.0.1", hostPort));
  CHECK(acceptOne(listener));
  REQUIRE(cni.unpublishPorts(idA, *nsA, att->result, ports).ok());
  CHECK(cni.unpublishPorts(idA, *nsA, att->result, ports).ok());
  CHECK_FALSE(canConnect("127.0.0.1", hostPort));
  REQUIRE(cni.publishPorts(idA, *nsA, att->result, ports).ok());
  CHECK(canConnect("127.0.0.1", hostPort));
  CHECK(acceptOne(listener));
  CHECK(run({"iptables-save", "-t", "nat"}).find(idA) != std::string::npos);

  Status det = cni.detach(idA, *nsA, att->result, ports);
  CHECK_MESSAGE(det.ok(), (det.ok() ? "" : det.message()));
  CHECK(::if_nametoindex(att->hostVeth.c_str()) == 0);
  CHECK_FALSE(fs::exists(lease));
  const std::string afterDetach = run({"iptables-save"});
  CHECK_MESSAGE(afterDetach.find(idA) == std::string::npos, afterDetach);
  CHECK_FALSE(canConnect("127.0.0.1", hostPort));
  Status again = cni.detach(idA, *nsA, att->result, ports);
  CHECK_MESSAGE(again.ok(), (again.ok() ? "" : again.message()));
  CHECK(Netns::runIn(*nsA, [&]() -> Status {
          eth0 = addressesOf("eth0");
          return {};
        }).ok());
  CHECK(eth0.empty());

  // A sandbox whose namespace is removed before its network is detached.
  auto nsB = netns.create("b");
  REQUIRE(nsB.ok());
  auto attB = cni.attach(idB, *nsB);
  REQUIRE_MESSAGE(attB.ok(), (attB.ok() ? "" : attB.message()));
  REQUIRE(cni.publishPorts(idB, *nsB, attB->result, ports).ok());
  const std::string leaseB = cfg.ipamDataDir + "/" + cni.networkName() + "/" + attB->ip;
  CHECK(fs::exists(leaseB));
  REQUIRE(netns.remove("b").ok());
  det = cni.detach(idB, *nsB, attB->result, ports);
  CHECK_MESSAGE(det.ok(), (det.ok() ? "" : det.message()));
  CHECK_FALSE(fs::exists(leaseB));
  CHECK(::if_nametoindex(attB->hostVeth.c_str()) == 0);
  const std::string afterGone = run({"iptables-save"});
  CHECK_MESSAGE(afterGone.find(idB) == std::string::npos, afterGone);
  CHECK(cni.detach(idB, *nsB, attB->result, ports).ok());
}
