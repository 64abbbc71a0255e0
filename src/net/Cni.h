#pragma once
// Cni: attaches sandboxes' network namespaces to the node's bridge network
// by executing CNI plugins directly (no libcni): loopback, then bridge with
// host-local IPAM, then portmap for published ports, each with the spec's
// environment (CNI_COMMAND, CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME,
// CNI_PATH, and a PATH for the iptables they run) and its configuration on
// stdin. Plugin errors become "cni <plugin> <COMMAND>: <msg>: <details>".
//
// Blocking (fork/exec of plugins that take locks and run iptables): call
// from WorkerPool jobs, never the loop. ensureConfig() must succeed once
// before any other call and must not run concurrently with them; after
// that every method is thread-safe (the loaded configuration is read-only,
// and the plugins serialize their own state with host-local's and
// iptables' locks).

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/Result.h"
#include "net/Command.h"

namespace sbx::net {

struct CniConfig {
  std::string binDir;       // the plugins (and CNI_PATH), e.g. /usr/lib/cni
  std::string confPath;     // e.g. /etc/cni/sandboxd.d/20-sbxnet.conflist
  std::string bridge;       // e.g. sbx-br0 (at most 15 characters)
  std::string subnetCidr;   // IPv4, e.g. 10.89.0.0/16
  std::string ipamDataDir;  // host-local's dataDir, e.g. <state_dir>/cni/networks
  std::string networkName;  // "" = "sbxnet-" + bridge
  std::chrono::milliseconds pluginTimeout{30000};  // per plugin run
};

struct PortMapping {
  uint16_t hostPort = 0;
  uint16_t containerPort = 0;
  std::string protocol = "tcp";  // "tcp" | "udp"
};

struct CniAttachment {
  std::string ip;        // the sandbox's IPv4 address, no prefix, e.g. "10.89.0.5"
  std::string gateway;   // e.g. "10.89.0.1"; "" when the result names none
  std::string hostVeth;  // host-side veth (the result's interface that is neither in
                         // the sandbox nor the bridge)
  std::string result;    // the bridge plugin's ADD result (JSON), kept for
                         // publishPorts/unpublishPorts/detach
};

// Reads the bridge plugin's ADD result (JSON): the sandbox's IPv4 address
// and gateway (the first IPv4 entry of "ips" on the sandbox's interface, the
// first one with a "sandbox", or naming no interface), the host-side veth
// (the first interface that is neither in the sandbox nor `bridge`) and the
// result minified. Errors: "invalid result: ...", "result
// has no IPv4 address for the sandbox's interface: <first line>", "result
// names no host-side veth: <first line>". Pure: thread-safe.
Result<CniAttachment> parseCniResult(std::string_view result, std::string_view bridge);

// The conflist ensureConfig() writes: cniVersion 1.0.0; bridge (isGateway,
// hairpinMode; no ipMasq: Firewall::ensureMasquerade does it once for the
// bridge) with host-local IPAM over cfg.subnetCidr, a default
// route and dataDir cfg.ipamDataDir; portmap (portMappings capability, snat);
// loopback.
std::string renderConflist(const CniConfig& cfg);

class Cni {
 public:
  explicit Cni(CniConfig cfg, CommandRunner runner = runCommand);

  // Writes the conflist at confPath when the file is missing (parent
  // directories created; temp file, fsync, rename; mode 0644). When it is
  // present (an operator wrote it), checks that it is a conflist whose name
  // is networkName(), with a "bridge" plugin on cfg.bridge whose IPAM is
  // host-local with cfg.subnetCidr as its first subnet and cfg.ipamDataDir
  // as its dataDir, a "portmap" plugin with the portMappings capability and
  // a "loopback" plugin, and no other plugins; otherwise an error naming the
  // file and what is wrong, e.g. `/etc/cni/x.conflist: bridge is "br9",
  // want "sbx-br0"`. Also checks that the plugin binaries are executable.
  // Then loads the plugin configurations that the calls below use.
  Status ensureConfig();

  // cfg.networkName, or "sbxnet-" + cfg.bridge. host-local keeps its leases
  // in <ipamDataDir>/<networkName>/<ip>.
  const std::string& networkName() const { return networkName_; }

  // ADD of loopback (CNI_IFNAME=lo) and then of bridge (CNI_IFNAME=eth0) for
  // the sandbox `containerId` in the namespace at `netnsPath`. On failure
  // the plugins are DELeted again (so no address stays allocated) and the
  // ADD's error is returned.
  Result<CniAttachment> attach(const std::string& containerId, const std::string& netnsPath);

  // portmap ADD: DNAT of each host port (also from 127.0.0.1) to the
  // sandbox. `result` is CniAttachment::result. No ports: nothing to do.
  Status publishPorts(const std::string& containerId, const std::string& netnsPath,
                      const std::string& result, const std::vector<PortMapping>& ports);
  // portmap DEL of the rules publishPorts made for `containerId`.
  // Idempotent.
  Status unpublishPorts(const std::string& containerId, const std::string& netnsPath,
                        const std::string& result, const std::vector<PortMapping>& ports);

  // DEL in reverse order: portmap (when `ports` is not empty), bridge, then
  // loopback; `result` (may be "") is passed as prevResult. Every plugin is
  // tried; the first error is returned. Idempotent: detaching twice
  // succeeds. When `netnsPath` is gone (the namespace was removed first),
  // the DELs still run with CNI_NETNS empty so host-local releases the
  // address, and the bridge plugin's masquerade rule for the sandbox, which
  // it only removes when it can see the namespace, is removed here.
  Status detach(const std::string& containerId, const std::string& netnsPath,
                const std::string& result, const std::vector<PortMapping>& ports);

 private:
  // One plugin of the list: its type and its own members (minified JSON
  // values, in file order), without the keys the runtime injects.
  struct Plugin {
    std::string type;
    std::vector<std::pair<std::string, std::string>> members;
  };
  struct Invocation;

  Status loadConflist(const std::string& text);
  Result<std::string> invoke(const Plugin& plugin, const Invocation& call) const;
  Status runPortmap(const char* command, const std::string& containerId,
                    const std::string& netnsPath, const std::string& result,
                    const std::vector<PortMapping>& ports) const;
  Status removeMasqueradeRule(const std::string& containerId) const;

  CniConfig cfg_;
  CommandRunner runner_;
  std::string networkName_;
  bool loaded_ = false;
  std::string cniVersion_;
  Plugin bridge_;
  Plugin portmap_;
  Plugin loopback_;
  // The bridge plugin masquerades (an operator's conflist may say so; ours
  // leaves it to the Firewall): its rules then need the cleanup in detach.
  bool bridgeIpMasq_ = false;
};

}  // namespace sbx::net
