#include "net/Cni.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <simdjson.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "json/JsonWriter.h"
#include "reactor/Fd.h"

namespace sbx::net {

namespace dom = simdjson::dom;

namespace {

// Plugins run iptables (and modprobe through it) by name.
constexpr const char* kPluginPath =
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
constexpr const char* kCniVersion = "1.0.0";
constexpr size_t kMaxConfBytes = 1 << 20;
constexpr size_t kMaxIfNameLen = 15;  // IFNAMSIZ - 1

// iptables-save and iptables-restore by path: posix_spawnp searches this
// process's PATH, which may lack the sbin directories.
std::string toolPath(const std::string& name) {
  for (const char* dir : {"/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/bin", "/bin"}) {
    std::string path = std::string(dir) + "/" + name;
    if (::access(path.c_str(), X_OK) == 0) return path;
  }
  return name;
}

std::string errnoText(const std::string& what) { return what + ": " + std::strerror(errno); }

std::string jsonQuoted(std::string_view s) {
  std::string out;
  json::JsonWriter::appendQuoted(out, s);
  return out;
}

bool isIpv4(std::string_view s) {
  in_addr a{};
  return ::inet_pton(AF_INET, std::string(s).c_str(), &a) == 1;
}

bool isIpv4Cidr(const std::string& cidr) {
  size_t slash = cidr.find('/');
  if (slash == std::string::npos || !isIpv4(std::string_view(cidr).substr(0, slash))) return false;
  std::string prefix = cidr.substr(slash + 1);
  if (prefix.empty() || prefix.size() > 2 ||
      prefix.find_first_not_of("0123456789") != std::string::npos) {
    return false;
  }
  return std::stoi(prefix) <= 32;
}

// A pinned network namespace, as opposed to a path that is gone or is only
// the empty file left when the bind mount was undone.
bool isNetns(const std::string& path) {
  struct statfs fs;
  return !path.empty() && ::statfs(path.c_str(), &fs) == 0 && fs.f_type == NSFS_MAGIC;
}

// Members of `o`: the string at `key`, or "" when it is missing or not a string.
std::string_view stringAt(dom::object o, std::string_view key) {
  std::string_view s;
  if (o[key].get_string().get(s) != simdjson::SUCCESS) return {};
  return s;
}

bool has(dom::object o, std::string_view key) {
  dom::element el;
  return o[key].get(el) == simdjson::SUCCESS;
}

Result<std::string> minifiedObject(std::string_view text) {
  if (text.find_first_not_of(" \t\r\n") == std::string_view::npos) return Error("empty");
  dom::parser parser;
  dom::element root;
  if (auto err = parser.parse(text.data(), text.size()).get(root)) {
    return Error(std::string("invalid JSON: ") + simdjson::error_message(err));
  }
  if (!root.is_object()) return Error("not a JSON object");
  return simdjson::minify(root);
}

// The text of a plugin's error: its error JSON's msg and details, else the
// first line of what it printed, else the exit code.
std::string pluginError(const CommandResult& r) {
  dom::parser parser;
  dom::object o;
  if (parser.parse(r.out.data(), r.out.size()).get_object().get(o) == simdjson::SUCCESS) {
    std::string msg(stringAt(o, "msg"));
    std::string_view details = stringAt(o, "details");
    int64_t code = 0;
    if (msg.empty() && o["code"].get_int64().get(code) == simdjson::SUCCESS) {
      msg = "error code " + std::to_string(code);
    }
    if (!msg.empty()) {
      if (!details.empty()) msg += ": " + std::string(details);
      return msg;
    }
  }
  std::string why = firstLine(r.err);
  if (why.empty()) why = firstLine(r.out);
  std::string msg = "exited with code " + std::to_string(r.exitCode);
  if (!why.empty()) msg += ": " + why;
  return msg;
}

}  // namespace

Result<CniAttachment> parseCniResult(std::string_view out, std::string_view bridge) {
  dom::parser parser;
  dom::object root;
  if (auto err = parser.parse(out.data(), out.size()).get_object().get(root)) {
    return Error(std::string("invalid result: ") + simdjson::error_message(err));
  }
  CniAttachment att;
  int64_t sandboxIndex = -1;
  dom::array interfaces;
  if (root["interfaces"].get_array().get(interfaces) == simdjson::SUCCESS) {
    int64_t i = 0;
    for (dom::element e : interfaces) {
      dom::object iface;
      if (e.get_object().get(iface) == simdjson::SUCCESS) {
        std::string_view name = stringAt(iface, "name");
        if (!stringAt(iface, "sandbox").empty()) {
          if (sandboxIndex < 0) sandboxIndex = i;
        } else if (att.hostVeth.empty() && !name.empty() && name != bridge) {
          att.hostVeth = name;
        }
      }
      ++i;
    }
  }
  dom::array ips;
  if (root["ips"].get_array().get(ips) == simdjson::SUCCESS) {
    for (dom::element e : ips) {
      dom::object ip;
      if (e.get_object().get(ip) != simdjson::SUCCESS) continue;
      std::string_view address = stringAt(ip, "address");
      address = address.substr(0, address.find('/'));
      int64_t index = -1;
      bool onSandbox =
          ip["interface"].get_int64().get(index) != simdjson::SUCCESS || index == sandboxIndex;
      if (!onSandbox || !isIpv4(address)) continue;
      att.ip = address;
      att.gateway = stringAt(ip, "gateway");
      break;
    }
  }
  if (att.ip.empty()) {
    return Error("result has no IPv4 address for the sandbox's interface: " +
                 firstLine(std::string(out)));
  }
  if (att.hostVeth.empty()) {
    return Error("result names no host-side veth: " + firstLine(std::string(out)));
  }
  att.result = simdjson::minify(root);
  return att;
}

namespace {

Status mkdirs(const std::string& dir) {
  size_t pos = 0;
  while (pos != std::string::npos) {
    pos = dir.find('/', pos + 1);
    std::string cur = dir.substr(0, pos);
    if (cur.empty()) continue;
    if (::mkdir(cur.c_str(), 0755) != 0 && errno != EEXIST) return Error(errnoText("mkdir " + cur));
  }
  return {};
}

// Readers see the old file or the whole new one, also after a crash.
Status writeFileAtomically(const std::string& path, const std::string& content) {
  size_t slash = path.rfind('/');
  std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
  std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
  Status st = mkdirs(dir);
  if (!st.ok()) return st;
  // A dot name that no *.conflist glob (ours or another runtime's) matches.
  std::string tmp = dir + "/." + base + ".tmp-" + std::to_string(::getpid());
  Fd f(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!f) return Error(errnoText("create " + tmp));
  bool ok = ::fchmod(f.get(), 0644) == 0;  // whatever the umask
  for (size_t done = 0; ok && done < content.size();) {
    ssize_t w = ::write(f.get(), content.data() + done, content.size() - done);
    if (w < 0 && errno == EINTR) continue;
    ok = w > 0;
    if (ok) done += static_cast<size_t>(w);
  }
  ok = ok && ::fsync(f.get()) == 0;
  ok = ok && ::close(f.release()) == 0;
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) {
    Error err(errnoText("write " + path));
    ::unlink(tmp.c_str());
    return err;
  }
  Fd d(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (d) ::fsync(d.get());
  return {};
}

Result<std::string> readSmallFile(const std::string& path) {
  Fd f(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!f) return Error(errnoText("open " + path));
  std::string text;
  char buf[16384];
  for (;;) {
    ssize_t r = ::read(f.get(), buf, sizeof buf);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return Error(errnoText("read " + path));
    if (r == 0) break;
    text.append(buf, static_cast<size_t>(r));
    if (text.size() > kMaxConfBytes) return Error(path + ": larger than 1 MiB");
  }
  return text;
}

std::string defaultNetworkName(const CniConfig& cfg) {
  return cfg.networkName.empty() ? "sbxnet-" + cfg.bridge : cfg.networkName;
}

Status checkSettings(const CniConfig& cfg) {
  const std::pair<const char*, const std::string*> required[] = {
      {"binDir", &cfg.binDir},         {"confPath", &cfg.confPath},       {"bridge", &cfg.bridge},
      {"subnetCidr", &cfg.subnetCidr}, {"ipamDataDir", &cfg.ipamDataDir},
  };
  for (const auto& [name, value] : required) {
    if (value->empty()) return Error(std::string("cni: ") + name + " is not set");
  }
  if (cfg.bridge.size() > kMaxIfNameLen) {
    return Error("cni: bridge name " + jsonQuoted(cfg.bridge) + " is longer than 15 characters");
  }
  if (!isIpv4Cidr(cfg.subnetCidr)) {
    return Error("cni: subnet " + jsonQuoted(cfg.subnetCidr) +
                 " is not an IPv4 CIDR such as 10.89.0.0/16");
  }
  return {};
}

}  // namespace

std::string renderConflist(const CniConfig& cfg) {
  json::JsonWriter w(1024);
  w.beginObject().kv("cniVersion", kCniVersion).kv("name", defaultNetworkName(cfg));
  w.key("plugins").beginArray();

  w.beginObject().kv("type", "bridge").kv("bridge", cfg.bridge);
  // No ipMasq: Firewall::ensureMasquerade() masquerades the subnet with one
  // chain, where the plugin would run ~8 iptables commands per ADD and DEL.
  w.kv("isGateway", true).kv("ipMasq", false).kv("hairpinMode", true);
  w.key("ipam").beginObject().kv("type", "host-local");
  w.key("ranges").beginArray().beginArray();
  w.beginObject().kv("subnet", cfg.subnetCidr).endObject();
  w.endArray().endArray();
  w.key("routes").beginArray().beginObject().kv("dst", "0.0.0.0/0").endObject().endArray();
  w.kv("dataDir", cfg.ipamDataDir);
  w.endObject().endObject();

  w.beginObject().kv("type", "portmap");
  w.key("capabilities").beginObject().kv("portMappings", true).endObject();
  w.kv("snat", true).endObject();

  w.beginObject().kv("type", "loopback").endObject();

  w.endArray().endObject();
  return w.take() + "\n";
}

// One plugin run: the CNI_* environment and what the runtime adds to the
// plugin's configuration.
struct Cni::Invocation {
  Invocation(const char* cmd, const std::string& id, std::string netns, const char* ifname)
      : command(cmd), containerId(id), netnsPath(std::move(netns)), ifName(ifname) {}

  const char* command;  // "ADD" | "DEL"
  const std::string& containerId;
  std::string netnsPath;
  const char* ifName;
  std::string prevResult;                                  // minified object or ""
  const std::vector<PortMapping>* portMappings = nullptr;  // runtimeConfig.portMappings
};

Cni::Cni(CniConfig cfg, CommandRunner runner)
    : cfg_(std::move(cfg)), runner_(std::move(runner)), networkName_(defaultNetworkName(cfg_)) {}

Status Cni::ensureConfig() {
  loaded_ = false;
  Status st = checkSettings(cfg_);
  if (!st.ok()) return st;

  std::string text;
  struct stat sb;
  if (::stat(cfg_.confPath.c_str(), &sb) != 0) {
    if (errno != ENOENT) return Error(errnoText("cni: stat " + cfg_.confPath));
    text = renderConflist(cfg_);
    st = writeFileAtomically(cfg_.confPath, text);
    if (!st.ok()) return Error("cni: " + st.message());
  } else {
    auto read = readSmallFile(cfg_.confPath);
    if (!read.ok()) return Error("cni: " + read.message());
    text = std::move(*read);
  }
  st = loadConflist(text);
  if (!st.ok()) return Error(cfg_.confPath + ": " + st.message());

  for (const char* type : {"loopback", "bridge", "host-local", "portmap"}) {
    std::string bin = cfg_.binDir + "/" + type;
    if (::access(bin.c_str(), X_OK) != 0) return Error(errnoText("cni: plugin " + bin));
  }
  loaded_ = true;
  return {};
}

Status Cni::loadConflist(const std::string& text) {
  dom::parser parser;
  dom::element root;
  if (auto err = parser.parse(text).get(root)) {
    return Error(std::string("invalid JSON: ") + simdjson::error_message(err));
  }
  dom::object list;
  if (root.get_object().get(list)) return Error("not a JSON object");
  dom::array plugins;
  if (list["plugins"].get_array().get(plugins)) {
    return Error("not a conflist (no \"plugins\" array)");
  }
  std::string_view version = stringAt(list, "cniVersion");
  if (version.empty()) return Error("cniVersion is missing");
  std::string_view name = stringAt(list, "name");
  if (name != networkName_) {
    return Error("name is " + jsonQuoted(name) + ", want " + jsonQuoted(networkName_));
  }

  Plugin bridge, portmap, loopback;
  dom::object bridgeConf, portmapConf;
  size_t index = 0;
  for (dom::element e : plugins) {
    const std::string where = "plugins[" + std::to_string(index++) + "]";
    dom::object conf;
    if (e.get_object().get(conf)) return Error(where + " is not an object");
    std::string_view type = stringAt(conf, "type");
    Plugin* slot = type == "bridge"     ? &bridge
                   : type == "portmap"  ? &portmap
                   : type == "loopback" ? &loopback
                                        : nullptr;
    if (!slot) {
      return Error(where + ": plugin " + jsonQuoted(type) +
                   " is not supported (sandboxd runs bridge, portmap, loopback)");
    }
    if (!slot->type.empty()) return Error("plugin " + jsonQuoted(type) + " appears twice");
    slot->type = type;
    for (auto [key, value] : conf) {
      // The runtime's to set, per plugin run (CNI spec, "Section 3").
      const bool injected =
          key == "cniVersion" || key == "name" || key == "prevResult" || key == "runtimeConfig";
      if (!injected) slot->members.emplace_back(std::string(key), simdjson::minify(value));
    }
    if (slot == &bridge) bridgeConf = conf;
    if (slot == &portmap) portmapConf = conf;
  }
  if (bridge.type.empty()) return Error("no \"bridge\" plugin");
  if (portmap.type.empty()) return Error("no \"portmap\" plugin");
  if (loopback.type.empty()) return Error("no \"loopback\" plugin");

  if (!has(bridgeConf, "bridge")) {
    return Error("bridge is missing, want " + jsonQuoted(cfg_.bridge));
  }
  std::string_view bridgeName = stringAt(bridgeConf, "bridge");
  if (bridgeName != cfg_.bridge) {
    return Error("bridge is " + jsonQuoted(bridgeName) + ", want " + jsonQuoted(cfg_.bridge));
  }
  dom::object ipam;
  if (bridgeConf["ipam"].get_object().get(ipam)) return Error("bridge has no \"ipam\" object");
  std::string_view ipamType = stringAt(ipam, "type");
  if (ipamType != "host-local") {
    return Error("bridge ipam type is " + jsonQuoted(ipamType) + ", want \"host-local\"");
  }
  // host-local takes ranges (a list of range sets) or, in old files, one subnet.
  std::string_view subnet;
  dom::array rangeSet;
  dom::object range;
  if (ipam["ranges"].at(0).get_array().get(rangeSet) == simdjson::SUCCESS) {
    if (rangeSet.at(0).get_object().get(range) == simdjson::SUCCESS) {
      subnet = stringAt(range, "subnet");
    }
  } else {
    subnet = stringAt(ipam, "subnet");
  }
  if (subnet != cfg_.subnetCidr) {
    return Error("bridge ipam subnet is " + jsonQuoted(subnet) + ", want " +
                 jsonQuoted(cfg_.subnetCidr));
  }
  std::string_view dataDir = stringAt(ipam, "dataDir");
  if (dataDir != cfg_.ipamDataDir) {
    return Error("bridge ipam dataDir is " + jsonQuoted(dataDir) + ", want " +
                 jsonQuoted(cfg_.ipamDataDir));
  }
  bool portMappings = false;
  if (portmapConf["capabilities"]["portMappings"].get_bool().get(portMappings) || !portMappings) {
    return Error("portmap does not declare \"capabilities\": {\"portMappings\": true}");
  }

  cniVersion_ = version;
  bool ipMasq = false;
  if (bridgeConf["ipMasq"].get_bool().get(ipMasq) != simdjson::SUCCESS) ipMasq = false;
  bridgeIpMasq_ = ipMasq;
  bridge_ = std::move(bridge);
  portmap_ = std::move(portmap);
  loopback_ = std::move(loopback);
  return {};
}

Result<std::string> Cni::invoke(const Plugin& plugin, const Invocation& call) const {
  // The plugin's own members plus what a runtime injects into each plugin of
  // a list: the list's cniVersion and name, the capabilities' runtimeConfig
  // and the previous result.
  json::JsonWriter conf(512);
  conf.beginObject().kv("cniVersion", cniVersion_).kv("name", networkName_);
  for (const auto& [key, value] : plugin.members) conf.key(key).raw(value);
  if (call.portMappings) {
    conf.key("runtimeConfig").beginObject().key("portMappings").beginArray();
    for (const PortMapping& p : *call.portMappings) {
      conf.beginObject().kv("hostPort", unsigned{p.hostPort});
      conf.kv("containerPort", unsigned{p.containerPort}).kv("protocol", p.protocol).endObject();
    }
    conf.endArray().endObject();
  }
  if (!call.prevResult.empty()) conf.key("prevResult").raw(call.prevResult);
  conf.endObject();

  CommandSpec spec;
  spec.argv = {cfg_.binDir + "/" + plugin.type};
  spec.env = {
      std::string("CNI_COMMAND=") + call.command,
      "CNI_CONTAINERID=" + call.containerId,
      "CNI_NETNS=" + call.netnsPath,
      std::string("CNI_IFNAME=") + call.ifName,
      "CNI_PATH=" + cfg_.binDir,
      kPluginPath,
  };
  spec.replaceEnv = true;
  spec.stdinData = conf.take();
  spec.timeout = cfg_.pluginTimeout;

  const std::string what = "cni " + plugin.type + " " + call.command + ": ";
  auto r = runner_(spec);
  if (!r.ok()) return Error(what + r.message());
  if (r->exitCode != 0) return Error(what + pluginError(*r));
  return std::move(r->out);
}

Result<CniAttachment> Cni::attach(const std::string& containerId, const std::string& netnsPath) {
  if (!loaded_) return Error("cni: attach before a successful ensureConfig");
  if (containerId.empty()) return Error("cni: attach: empty container id");
  auto lo = invoke(loopback_, {"ADD", containerId, netnsPath, "lo"});
  if (!lo.ok()) return lo.error();

  Error failure;
  auto added = invoke(bridge_, {"ADD", containerId, netnsPath, "eth0"});
  if (added.ok()) {
    auto att = parseCniResult(*added, cfg_.bridge);
    if (att.ok()) return att;
    failure = Error("cni bridge ADD: " + att.message());
  } else {
    failure = added.error();
  }
  // Undo, so that no address stays allocated and no veth or rule is left for
  // a sandbox that will not run. The ADD's error is the one to report.
  (void)invoke(bridge_, {"DEL", containerId, netnsPath, "eth0"});
  (void)invoke(loopback_, {"DEL", containerId, netnsPath, "lo"});
  return failure;
}

Status Cni::runPortmap(const char* command, const std::string& containerId,
                       const std::string& netnsPath, const std::string& result,
                       const std::vector<PortMapping>& ports) const {
  if (!loaded_) {
    return Error(std::string("cni portmap ") + command + ": before a successful ensureConfig");
  }
  if (ports.empty()) return {};
  Invocation call{command, containerId, netnsPath, "eth0"};
  call.portMappings = &ports;
  const bool add = std::strcmp(command, "ADD") == 0;
  if (add) {
    for (const PortMapping& p : ports) {
      if (p.hostPort == 0 || p.containerPort == 0 || (p.protocol != "tcp" && p.protocol != "udp")) {
        return Error("cni portmap ADD: invalid port mapping " + std::to_string(p.hostPort) + "->" +
                     std::to_string(p.containerPort) + "/" + p.protocol +
                     " (ports 1-65535, tcp or udp)");
      }
    }
  }
  auto prev = minifiedObject(result);
  if (prev.ok()) {
    call.prevResult = std::move(*prev);
  } else if (add) {
    // portmap ADD finds the sandbox's address in prevResult; DEL does not need it.
    return Error("cni portmap ADD: the attachment's result is " + prev.message());
  }
  auto r = invoke(portmap_, call);
  if (!r.ok()) return r.error();
  return {};
}

Status Cni::publishPorts(const std::string& containerId, const std::string& netnsPath,
                         const std::string& result, const std::vector<PortMapping>& ports) {
  return runPortmap("ADD", containerId, netnsPath, result, ports);
}

Status Cni::unpublishPorts(const std::string& containerId, const std::string& netnsPath,
                           const std::string& result, const std::vector<PortMapping>& ports) {
  return runPortmap("DEL", containerId, netnsPath, result, ports);
}

Status Cni::detach(const std::string& containerId, const std::string& netnsPath,
                   const std::string& result, const std::vector<PortMapping>& ports) {
  if (!loaded_) return Error("cni: detach before a successful ensureConfig");
  if (containerId.empty()) return Error("cni: detach: empty container id");
  // A namespace that is gone must not be named: the plugins would fail to
  // open it. With CNI_NETNS empty they still release what is on the host.
  const std::string netns = isNetns(netnsPath) ? netnsPath : "";
  Status first;
  auto keep = [&first](Status st) {
    if (!st.ok() && first.ok()) first = std::move(st);
  };
  keep(runPortmap("DEL", containerId, netns, result, ports));

  Invocation bridgeDel{"DEL", containerId, netns, "eth0"};
  auto prev = minifiedObject(result);
  if (prev.ok()) bridgeDel.prevResult = std::move(*prev);
  auto r = invoke(bridge_, bridgeDel);
  keep(r.ok() ? Status() : Status(r.error()));
  // Always, when the bridge plugin masquerades: it also leaves its rule when
  // the namespace exists but the interface lost its address (a crash
  // mid-ADD, runsc's netstack).
  if (bridgeIpMasq_) keep(removeMasqueradeRule(containerId));

  r = invoke(loopback_, {"DEL", containerId, netns, "lo"});
  keep(r.ok() ? Status() : Status(r.error()));
  return first;
}

// The bridge plugin learns which masquerade rule to delete from the
// addresses on the sandbox's interface, so with the namespace gone it
// releases the address but leaves its POSTROUTING rule and CNI-<hash> chain
// behind. They carry its comment `name: "<network>" id: "<container>"`, so
// find them in iptables-save's output and delete them in one restore.
Status Cni::removeMasqueradeRule(const std::string& containerId) const {
  // iptables-save prints the comment quoted, with its quotes escaped; the
  // closing quote keeps id "ab" from matching id "abc".
  const std::string comment =
      "--comment \"name: \\\"" + networkName_ + "\\\" id: \\\"" + containerId + "\\\"\"";
  CommandSpec save;
  save.argv = {toolPath("iptables-save"), "-t", "nat"};
  save.env = {kPluginPath};
  save.replaceEnv = true;
  save.timeout = cfg_.pluginTimeout;
  auto rules = runCommandChecked(runner_, save);
  if (!rules.ok()) return Error("cni bridge DEL: " + rules.message());

  std::string restore = "*nat\n";
  std::vector<std::string> chains;
  size_t pos = 0;
  while (pos < rules->size()) {
    size_t end = rules->find('\n', pos);
    if (end == std::string::npos) end = rules->size();
    std::string_view line(rules->data() + pos, end - pos);
    pos = end + 1;
    const bool ours =
        line.starts_with("-A POSTROUTING ") && line.find(comment) != std::string_view::npos;
    if (!ours) continue;
    size_t jump = line.rfind(" -j CNI-");
    if (jump == std::string_view::npos) continue;
    std::string_view chain = line.substr(jump + 4);
    chain = chain.substr(0, chain.find(' '));
    restore += "-D";
    restore += line.substr(2);
    restore += '\n';
    chains.emplace_back(chain);
  }
  if (chains.empty()) return {};
  for (const std::string& chain : chains) restore += "-F " + chain + "\n-X " + chain + "\n";
  restore += "COMMIT\n";

  CommandSpec apply;
  apply.argv = {toolPath("iptables-restore"), "-w", "--noflush"};
  apply.env = {kPluginPath};
  apply.replaceEnv = true;
  apply.stdinData = std::move(restore);
  apply.timeout = cfg_.pluginTimeout;
  auto applied = runCommandChecked(runner_, apply);
  if (!applied.ok()) return Error("cni bridge DEL: remove masquerade rule: " + applied.message());
  return {};
}

}  // namespace sbx::net
