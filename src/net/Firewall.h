#pragma once
// Firewall: the node's iptables (filter table) rules that keep sandboxes on
// the bridge apart from the node, from each other and, by their egress flag,
// from the outside. Chains are named after the bridge, so instances on two
// bridges never touch each other's rules:
//   SBX-FWD-<bridge>  jumped to first from FORWARD: replies, published host
//                     ports (DNAT) and nothing else into sandboxes; what
//                     sandboxes send goes to SBX-EGR, anything left is dropped
//   SBX-EGR-<bridge>  per-sandbox rules, each tagged "sandboxd:<id>"
//   SBX-IN-<bridge>   jumped to first from INPUT: sandboxes never reach the
//                     node (only replies to the node's own connections)
// A sandbox with egress reaches itself (hairpin through its host port) and
// outside addresses, but not the sandbox subnet, link-local addresses or
// the deny list; one without egress sends nothing but replies. Every change
// is one atomic `iptables-restore --noflush`. Layer 2 is closed by port
// isolation on the sandbox's host veth (iptables does not see bridged
// frames without br_netfilter).
//
// Blocking (fork/exec of iptables-save/-restore): call from WorkerPool
// jobs, never the loop. Thread-safe: calls are serialized by a mutex (each
// reads the rules and then rewrites them). The commands inherit the calling
// thread's network namespace.

#include <mutex>
#include <string>
#include <vector>

#include "base/Result.h"
#include "net/Command.h"

namespace sbx::net {

struct FirewallConfig {
  std::string bridge;                        // e.g. "sbx-br0" (at most 15 characters)
  std::string subnetCidr;                    // the sandboxes' IPv4 subnet, e.g. "10.89.0.0/16"
  std::vector<std::string> egressDenyCidrs;  // IPv4; normally Firewall::defaultEgressDenyCidrs()
  std::string sysfsRoot = "/sys";
  std::string procRoot = "/proc";  // <root>/sys/net/ipv6/conf/<dev>/disable_ipv6            // where <root>/class/net/<veth>/brport lives
};

class Firewall {
 public:
  explicit Firewall(FirewallConfig cfg, CommandRunner runner = runCommand);

  // Creates the three chains when missing, (re)writes the rules of
  // SBX-FWD/SBX-IN when they differ from what they should be (never touching
  // SBX-EGR's sandbox rules), and makes the FORWARD and INPUT jumps the first
  // rules of their chains (only other bridges' SBX- jumps may precede them).
  // Idempotent: nothing is written when all is in place.
  Status ensureBase();

  // Replaces the rules of sandbox `id` at IPv4 address `ip` (no prefix) with
  // those for `egress`; rules of another id on the same address (left by a
  // sandbox that no longer exists: addresses are unique among live ones) go
  // too. First isolates `hostVeth`'s bridge port: an error, and no rule
  // written, when the veth is missing or not a port of our bridge.
  // ensureBase() must have succeeded before.
  Status addSandbox(const std::string& id, const std::string& ip, bool egress,
                    const std::string& hostVeth);

  // Removes every rule tagged with exactly `id`. Idempotent.
  Status removeSandbox(const std::string& id);

  // Ids that have tagged rules in our SBX-EGR chain, sorted (for reconcile).
  Result<std::vector<std::string>> sandboxIds();

  // Removes the jumps and the three chains with all their rules (tests, and
  // an operator's cleanup). Idempotent.
  Status removeBase();

  // Thread-safe, idempotent. The source NAT of egress, once for the bridge
  // (nat table): POSTROUTING -s <subnet> jumps to SBX-NAT-<bridge>, which
  // leaves traffic to the subnet itself and to multicast alone and
  // masquerades the rest. (The CNI bridge plugin's ipMasq does the same per
  // sandbox with about eight iptables execs on ADD and as many on DEL: 40 ms
  // of every create and 50 ms of every delete on this machine.) Egress
  // itself is decided in the filter table (SBX-EGR); this only rewrites the
  // source of what is allowed out.
  Status ensureMasquerade();
  // Removes the jump and SBX-NAT-<bridge>.
  Status removeMasquerade();

  // 10/8, 172.16/12, 192.168/16, 100.64/10, 127/8, 169.254/16, 224/4.
  static std::vector<std::string> defaultEgressDenyCidrs();

 private:
  struct Ruleset;

  Result<Ruleset> readRules(const std::string& table = "filter") const;
  Status applyRules(const std::string& payload, const std::string& what,
                    const std::string& table = "filter") const;
  Status isolatePort(const std::string& hostVeth) const;
  std::vector<std::string> sandboxRules(const std::string& id, const std::string& ip,
                                        bool egress) const;

  const FirewallConfig cfg_;
  const CommandRunner runner_;
  const Status configStatus_;  // the config's validity, returned by every call
  const std::string fwdChain_;
  const std::string egrChain_;
  const std::string inChain_;
  const std::string natChain_;
  std::mutex mu_;
};

}  // namespace sbx::net
