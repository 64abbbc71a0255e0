#include "net/Firewall.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <optional>
#include <set>

#include "reactor/Fd.h"

namespace sbx::net {

namespace {

constexpr const char* kTagPrefix = "sandboxd:";
// The comment match takes at most 255 bytes; ids are far shorter anyway.
constexpr size_t kMaxIdLength = 200;
constexpr const char* kLinkLocal = "169.254.0.0/16";

std::string errnoText(const std::string& what) { return what + ": " + std::strerror(errno); }

bool isNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '.' || c == '-';
}

// Names go into iptables-restore's input and into sysfs paths: letters,
// digits, '_', '.', '-' only (no quotes, spaces, '/', nor iptables' '+'
// wildcard).
bool isSafeName(const std::string& s, size_t maxLen) {
  if (s.empty() || s.size() > maxLen || s == "." || s == "..") return false;
  return std::all_of(s.begin(), s.end(), isNameChar);
}

Status checkInterfaceName(const std::string& what, const std::string& name) {
  if (isSafeName(name, 15)) return {};
  return Error("invalid " + what + " \"" + name +
               "\": must be 1-15 letters, digits, '_', '.' or '-'");
}

Status checkId(const std::string& id) {
  if (isSafeName(id, kMaxIdLength)) return {};
  return Error("invalid sandbox id \"" + id + "\": must be 1-" + std::to_string(kMaxIdLength) +
               " letters, digits, '_', '.' or '-'");
}

bool isIpv4(const std::string& s) {
  in_addr a{};
  return ::inet_pton(AF_INET, s.c_str(), &a) == 1;
}

bool isIpv4Cidr(const std::string& s) {
  const size_t slash = s.find('/');
  if (slash == std::string::npos || !isIpv4(s.substr(0, slash))) return false;
  const std::string bits = s.substr(slash + 1);
  if (bits.empty() || bits.size() > 2 ||
      !std::all_of(bits.begin(), bits.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return false;
  }
  return std::stoi(bits) <= 32;
}

Status checkConfig(const FirewallConfig& cfg) {
  if (Status st = checkInterfaceName("bridge name", cfg.bridge); !st.ok()) return st;
  if (!isIpv4Cidr(cfg.subnetCidr)) {
    return Error("invalid subnet \"" + cfg.subnetCidr + "\": not an IPv4 CIDR");
  }
  for (const auto& c : cfg.egressDenyCidrs) {
    if (!isIpv4Cidr(c)) return Error("invalid egress deny CIDR \"" + c + "\": not an IPv4 CIDR");
  }
  return {};
}

// Splits a rule line the way iptables-restore does: on spaces, with double
// quotes grouping (iptables-save quotes a comment holding ':') and
// backslash escapes inside them.
std::vector<std::string> tokenize(const std::string& line) {
  std::vector<std::string> out;
  std::string cur;
  bool inToken = false, quoted = false;
  for (size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted) {
      if (c == '\\' && i + 1 < line.size()) {
        cur += line[++i];
      } else if (c == '"') {
        quoted = false;
      } else {
        cur += c;
      }
    } else if (c == ' ' || c == '\t') {
      if (inToken) out.push_back(std::move(cur));
      cur.clear();
      inToken = false;
    } else {
      inToken = true;
      if (c == '"') {
        quoted = true;
      } else {
        cur += c;
      }
    }
  }
  if (inToken) out.push_back(std::move(cur));
  return out;
}

std::optional<std::string> optionValue(const std::vector<std::string>& tokens, const char* option) {
  for (size_t i = 0; i + 1 < tokens.size(); ++i) {
    if (tokens[i] == option) return tokens[i + 1];
  }
  return std::nullopt;
}

// The sandbox id a rule is tagged with, if any.
std::optional<std::string> taggedId(const std::string& ruleLine) {
  auto comment = optionValue(tokenize(ruleLine), "--comment");
  if (!comment || comment->rfind(kTagPrefix, 0) != 0) return std::nullopt;
  return comment->substr(std::strlen(kTagPrefix));
}

// "-A CHAIN spec" -> "-D CHAIN spec": iptables-save prints rules in the
// syntax iptables-restore reads, so the rest of the line can stay as is.
std::string deleteLine(const std::string& appendLine) { return "-D" + appendLine.substr(2) + "\n"; }

}  // namespace

struct Firewall::Ruleset {
  std::set<std::string> chains;
  std::map<std::string, std::vector<std::string>> rules;  // chain -> its "-A" lines, in order

  const std::vector<std::string>& of(const std::string& chain) const {
    static const std::vector<std::string> none;
    auto it = rules.find(chain);
    return it == rules.end() ? none : it->second;
  }
};

std::vector<std::string> Firewall::defaultEgressDenyCidrs() {
  return {"10.0.0.0/8",  "172.16.0.0/12",  "192.168.0.0/16", "100.64.0.0/10",
          "127.0.0.0/8", "169.254.0.0/16", "224.0.0.0/4"};
}

Firewall::Firewall(FirewallConfig cfg, CommandRunner runner)
    : cfg_(std::move(cfg)),
      runner_(std::move(runner)),
      configStatus_(checkConfig(cfg_)),
      fwdChain_("SBX-FWD-" + cfg_.bridge),
      egrChain_("SBX-EGR-" + cfg_.bridge),
      inChain_("SBX-IN-" + cfg_.bridge),
      natChain_("SBX-NAT-" + cfg_.bridge) {}

Result<Firewall::Ruleset> Firewall::readRules(const std::string& tableName) const {
  CommandSpec spec;
  spec.argv = {"iptables-save", "-t", tableName};
  auto out = runCommandChecked(runner_, spec);
  if (!out.ok()) return out.error();
  Ruleset rs;
  std::string table;
  size_t pos = 0;
  while (pos < out->size()) {
    size_t end = out->find('\n', pos);
    if (end == std::string::npos) end = out->size();
    std::string line = out->substr(pos, end - pos);
    pos = end + 1;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || line[0] == '#') continue;
    if (line[0] == '*') {
      table = line.substr(1);
    } else if (table != tableName) {
      continue;
    } else if (line[0] == ':') {
      rs.chains.insert(line.substr(1, line.find(' ') - 1));
    } else if (line.rfind("-A ", 0) == 0) {
      const size_t nameEnd = line.find(' ', 3);
      rs.rules[line.substr(3, nameEnd == std::string::npos ? std::string::npos : nameEnd - 3)]
          .push_back(line);
    }
  }
  return rs;
}

Status Firewall::applyRules(const std::string& payload, const std::string& what,
                            const std::string& table) const {
  CommandSpec spec;
  // -w: wait for the xtables lock that CNI plugins' iptables calls take.
  spec.argv = {"iptables-restore", "-w", "--noflush"};
  spec.stdinData = "*" + table + "\n" + payload + "COMMIT\n";
  auto out = runCommandChecked(runner_, spec);
  if (!out.ok()) return Error(what + ": " + out.message());
  return {};
}

Status Firewall::ensureBase() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!configStatus_.ok()) return configStatus_;
  auto rs = readRules();
  if (!rs.ok()) return rs.error();

  const std::string& br = cfg_.bridge;
  // Spelled the way iptables-save prints them, so that rules already in
  // place compare equal and are left alone. Were the spelling to drift (another
  // iptables version), the chain would merely be rewritten on every call.
  const std::vector<std::string> fwdRules = {
      "-A " + fwdChain_ + " -o " + br + " -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
      "-A " + fwdChain_ + " -i " + br + " -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
      // Host ports published by the portmap plugin.
      "-A " + fwdChain_ + " ! -i " + br + " -o " + br + " -m conntrack --ctstate DNAT -j ACCEPT",
      "-A " + fwdChain_ + " ! -i " + br + " -o " + br + " -j DROP",
      "-A " + fwdChain_ + " -i " + br + " -j " + egrChain_,
      "-A " + fwdChain_ + " -i " + br + " -j DROP",
  };
  const std::vector<std::string> inRules = {
      "-A " + inChain_ + " -i " + br + " -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
      "-A " + inChain_ + " -i " + br + " -j DROP",
  };

  std::string payload;
  // Only missing chains are declared: with --noflush, declaring an existing
  // user chain flushes it, which would drop every sandbox's SBX-EGR rules.
  for (const std::string* chain : {&fwdChain_, &egrChain_, &inChain_}) {
    if (!rs->chains.count(*chain)) payload += ":" + *chain + " - [0:0]\n";
  }
  auto rewrite = [&](const std::string& chain, const std::vector<std::string>& want) {
    if (rs->of(chain) == want) return;
    if (rs->chains.count(chain)) payload += "-F " + chain + "\n";
    for (const auto& r : want) payload += r + "\n";
  };
  rewrite(fwdChain_, fwdRules);
  rewrite(inChain_, inRules);

  // Our jump must come before anyone else's ACCEPT (a CNI firewall plugin or
  // Docker inserts theirs at the top too); only the SBX- jumps of instances
  // on other bridges may precede it, so that two instances do not keep
  // moving each other's.
  auto firstJump = [&](const std::string& builtin, const std::string& target) {
    const std::string jump = "-A " + builtin + " -j " + target;
    const std::string ours = "-A " + builtin + " -j SBX-";
    const auto& rules = rs->of(builtin);
    for (const auto& r : rules) {
      if (r == jump) return;
      if (r.rfind(ours, 0) != 0 || r.find(' ', ours.size()) != std::string::npos) break;
    }
    for (const auto& r : rules) {
      if (r == jump) payload += deleteLine(r);
    }
    payload += "-I " + builtin + " 1 -j " + target + "\n";
  };
  firstJump("FORWARD", fwdChain_);
  firstJump("INPUT", inChain_);

  if (payload.empty()) return {};
  return applyRules(payload, "write base chains");
}

std::vector<std::string> Firewall::sandboxRules(const std::string& id, const std::string& ip,
                                                bool egress) const {
  const std::string head = "-A " + egrChain_ + " -s " + ip + "/32";
  const std::string tag = " -m comment --comment \"" + std::string(kTagPrefix) + id + "\"";
  if (!egress) return {head + tag + " -j DROP"};
  // Link-local is refused whatever the deny list says (the SPEC's promise,
  // and cloud metadata services live there).
  std::vector<std::string> deny = {cfg_.subnetCidr};
  deny.insert(deny.end(), cfg_.egressDenyCidrs.begin(), cfg_.egressDenyCidrs.end());
  if (std::find(deny.begin(), deny.end(), kLinkLocal) == deny.end()) deny.push_back(kLinkLocal);

  // Its own address first: the sandbox may reach itself through its own
  // published host port (hairpin), which the subnet rule would refuse.
  std::vector<std::string> out = {head + " -d " + ip + "/32" + tag + " -j ACCEPT"};
  for (const auto& cidr : deny) out.push_back(head + " -d " + cidr + tag + " -j DROP");
  out.push_back(head + tag + " -j ACCEPT");
  return out;
}

Status Firewall::isolatePort(const std::string& hostVeth) const {
  const std::string dev = cfg_.sysfsRoot + "/class/net/" + hostVeth;
  struct stat st {};
  if (::stat(dev.c_str(), &st) != 0) {
    if (errno == ENOENT) return Error("host veth " + hostVeth + " not found");
    return Error(errnoText("stat " + dev));
  }
  char link[PATH_MAX];
  const ssize_t n = ::readlink((dev + "/brport/bridge").c_str(), link, sizeof link - 1);
  if (n < 0) {
    if (errno == ENOENT) return Error("host veth " + hostVeth + " is not a bridge port");
    return Error(errnoText("readlink " + dev + "/brport/bridge"));
  }
  std::string master(link, static_cast<size_t>(n));
  master = master.substr(master.rfind('/') + 1);  // npos + 1 == 0: no slash
  if (master != cfg_.bridge) {
    return Error("host veth " + hostVeth + " is a port of bridge " + master + ", not " +
                 cfg_.bridge);
  }
  // Isolated ports do not forward to one another: sandboxes cannot talk at
  // layer 2, where iptables does not see them (no br_netfilter needed).
  const std::string isolated = dev + "/brport/isolated";
  Fd f(::open(isolated.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC));
  if (!f || ::write(f.get(), "1", 1) != 1) {
    return Error(errnoText("isolate bridge port " + hostVeth + " (" + isolated + ")"));
  }
  // The rules are IPv4 only: without IPv6 on the bridge and the port, a
  // sandbox cannot reach the node at the bridge's fe80:: address either.
  // (A kernel without IPv6 has no such files: nothing to close then.)
  for (const std::string& dev : {cfg_.bridge, hostVeth}) {
    const std::string knob = cfg_.procRoot + "/sys/net/ipv6/conf/" + dev + "/disable_ipv6";
    Fd k(::open(knob.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC));
    if (!k) {
      if (errno == ENOENT) continue;
      return Error(errnoText("disable IPv6 on " + dev + " (" + knob + ")"));
    }
    if (::write(k.get(), "1", 1) != 1) return Error(errnoText("disable IPv6 on " + dev));
  }
  return {};
}

Status Firewall::addSandbox(const std::string& id, const std::string& ip, bool egress,
                            const std::string& hostVeth) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!configStatus_.ok()) return configStatus_;
  if (Status st = checkId(id); !st.ok()) return st;
  if (!isIpv4(ip)) return Error("invalid sandbox address \"" + ip + "\": not an IPv4 address");
  if (Status st = checkInterfaceName("host veth name", hostVeth); !st.ok()) return st;
  if (Status st = isolatePort(hostVeth); !st.ok()) return st;

  auto rs = readRules();
  if (!rs.ok()) return rs.error();
  if (!rs->chains.count(egrChain_)) {
    return Error("chain " + egrChain_ + " is missing (base rules not set up)");
  }
  // Replace, not append: a retried create must not double the rules, and a
  // dead sandbox's rules on this address (egress:true ACCEPTs, say) must not
  // decide for the new one.
  std::string payload;
  const std::string source = ip + "/32";
  for (const auto& r : rs->of(egrChain_)) {
    if (taggedId(r) == id || optionValue(tokenize(r), "-s") == source) payload += deleteLine(r);
  }
  for (const auto& r : sandboxRules(id, ip, egress)) payload += r + "\n";
  return applyRules(payload, "add rules of sandbox " + id);
}

Status Firewall::removeSandbox(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!configStatus_.ok()) return configStatus_;
  if (Status st = checkId(id); !st.ok()) return st;
  auto rs = readRules();
  if (!rs.ok()) return rs.error();
  std::string payload;
  for (const auto& r : rs->of(egrChain_)) {
    if (taggedId(r) == id) payload += deleteLine(r);
  }
  if (payload.empty()) return {};
  return applyRules(payload, "remove rules of sandbox " + id);
}

Result<std::vector<std::string>> Firewall::sandboxIds() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!configStatus_.ok()) return configStatus_.error();
  auto rs = readRules();
  if (!rs.ok()) return rs.error();
  std::set<std::string> ids;
  for (const auto& r : rs->of(egrChain_)) {
    if (auto id = taggedId(r); id && !id->empty()) ids.insert(*id);
  }
  return std::vector<std::string>(ids.begin(), ids.end());
}

Status Firewall::removeBase() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!configStatus_.ok()) return configStatus_;
  auto rs = readRules();
  if (!rs.ok()) return rs.error();
  std::string payload;
  const std::pair<std::string, std::string> jumps[] = {{"FORWARD", fwdChain_}, {"INPUT", inChain_}};
  for (const auto& [builtin, target] : jumps) {
    const std::string jump = "-A " + builtin + " -j " + target;
    for (const auto& r : rs->of(builtin)) {
      if (r == jump) payload += deleteLine(r);
    }
  }
  // Flush all before deleting any: SBX-FWD jumps to SBX-EGR.
  std::vector<const std::string*> present;
  for (const std::string* chain : {&fwdChain_, &egrChain_, &inChain_}) {
    if (rs->chains.count(*chain)) present.push_back(chain);
  }
  for (const auto* chain : present) payload += "-F " + *chain + "\n";
  for (const auto* chain : present) payload += "-X " + *chain + "\n";
  if (payload.empty()) return {};
  return applyRules(payload, "remove base chains");
}

Status Firewall::ensureMasquerade() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!configStatus_.ok()) return configStatus_;
  auto rs = readRules("nat");
  if (!rs.ok()) return rs.error();
  // As iptables-save prints them (see ensureBase).
  const std::vector<std::string> want = {
      "-A " + natChain_ + " -d " + cfg_.subnetCidr + " -j RETURN",
      "-A " + natChain_ + " -d 224.0.0.0/4 -j RETURN",
      "-A " + natChain_ + " -j MASQUERADE",
  };
  std::string payload;
  if (!rs->chains.count(natChain_)) payload += ":" + natChain_ + " - [0:0]\n";
  if (rs->of(natChain_) != want) {
    if (rs->chains.count(natChain_)) payload += "-F " + natChain_ + "\n";
    for (const auto& r : want) payload += r + "\n";
  }
  const std::string jump = "-A POSTROUTING -s " + cfg_.subnetCidr + " -j " + natChain_;
  const auto& post = rs->of("POSTROUTING");
  if (std::find(post.begin(), post.end(), jump) == post.end()) payload += jump + "\n";
  if (payload.empty()) return {};
  return applyRules(payload, "write the masquerade chain", "nat");
}

Status Firewall::removeMasquerade() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!configStatus_.ok()) return configStatus_;
  auto rs = readRules("nat");
  if (!rs.ok()) return rs.error();
  std::string payload;
  const std::string target = " -j " + natChain_;
  for (const auto& r : rs->of("POSTROUTING")) {
    if (r.size() > target.size() && r.compare(r.size() - target.size(), target.size(), target) == 0) {
      payload += deleteLine(r);
    }
  }
  if (rs->chains.count(natChain_)) payload += "-F " + natChain_ + "\n-X " + natChain_ + "\n";
  if (payload.empty()) return {};
  return applyRules(payload, "remove the masquerade chain", "nat");
}

}  // namespace sbx::net
