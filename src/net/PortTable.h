#pragma once
// PortTable: which sandbox holds which host port (SPEC §1 "ports[].hostPort")
// so that a port is never published twice, and a port some process on the
// host already listens on is refused before anything is created.
//
// Loop-thread only: reservations happen in the create request's handler,
// atomically with the other admission checks. The host check is a
// sock_diag (netlink) query answered from kernel memory: it never blocks.

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "base/Result.h"

namespace sbx::net {

struct HostPort {
  uint16_t port = 0;
  std::string protocol = "tcp";  // "tcp" | "udp"
};

class PortTable {
 public:
  // Whether something on the host holds port/protocol: an error that says
  // so, or success when the port is free.
  using HostCheck = std::function<Status(uint16_t port, const std::string& protocol)>;

  explicit PortTable(HostCheck check = bindCheck);

  // Reserves every port of `ports` for `sandboxId`, or none:
  //   host port already in use: 30080/tcp (sandbox sbx-old)
  //   host port already in use: 30080/tcp (by a process on this host)
  Status reserve(const std::string& sandboxId, const std::vector<HostPort>& ports);
  // Re-registers ports found in state files at start (no host check: the
  // sandbox published them itself before the restart).
  void restore(const std::string& sandboxId, const std::vector<HostPort>& ports);
  void release(const std::string& sandboxId);

  // The sandbox holding port/protocol, or "".
  std::string holder(uint16_t port, const std::string& protocol) const;
  size_t size() const { return holders_.size(); }

  // Whether a socket on the host listens on tcp port `port` (or is bound to
  // udp port `port`), IPv4 or IPv6, asked of the kernel (sock_diag). A
  // client connection that happens to use the port as its ephemeral port
  // does not count (bind(2) would refuse for it).
  static Status bindCheck(uint16_t port, const std::string& protocol);

 private:
  HostCheck check_;
  std::map<std::pair<uint16_t, std::string>, std::string> holders_;
  std::map<std::string, std::vector<HostPort>> bySandbox_;
};

}  // namespace sbx::net
