#pragma once
// NodeAddress: which addresses a node may be registered at, and the base URL
// the control plane calls it on.
//
// A node's ip comes from the API (POST /api/v1/nodes) or the config file,
// and the control plane then sends requests there with its node secret.
// Refusing addresses that are never a node (unspecified, multicast,
// link-local such as the cloud metadata service 169.254.169.254, broadcast)
// keeps node registration from becoming a way to make the control plane
// call them (SSRF). Loopback and private addresses stay allowed: nodes live
// on private networks, and tests run on one host.
//
// Pure functions; thread-safe.

#include <string>
#include <string_view>

#include "base/Result.h"

namespace sbx::orch {

// Accepts an IPv4 literal in dotted-decimal form (no leading zeros, no
// shorthand such as "127.1") or an IPv6 literal (no brackets, no zone id),
// as inet_pton(3) reads them. Refuses, with these messages:
//   invalid node ip "x": not an IP address
//   invalid node ip "0.0.0.0": unspecified address     0.0.0.0/8, ::
//   invalid node ip "224.0.0.1": multicast address      224.0.0.0/4, ff00::/8
//   invalid node ip "169.254.1.1": link-local address   169.254.0.0/16, fe80::/10
//   invalid node ip "255.255.255.255": broadcast address
// and the IPv4-mapped IPv6 form (::ffff:a.b.c.d) of every refused IPv4
// address. The value is quoted cut to 64 bytes, non-printable bytes as '?'.
Status validateNodeAddress(std::string_view ip);

// "http://10.0.0.5:8080" for an IPv4 ip, "http://[::1]:8080" for an IPv6
// one (any ip containing ':' is bracketed). Does not validate.
std::string nodeBaseUrl(std::string_view ip, int port);

}  // namespace sbx::orch
