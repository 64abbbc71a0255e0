#include "orch/NodeAddress.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstdint>

namespace sbx::orch {

namespace {

// The value comes from API clients: keep the message short and printable
// so that it cannot forge log lines.
std::string quoteValue(std::string_view s) {
  constexpr size_t kMaxShown = 64;
  std::string out = "\"";
  for (char c : s.substr(0, kMaxShown)) {
    out.push_back(c >= 0x20 && c < 0x7f ? c : '?');
  }
  if (s.size() > kMaxShown) out.append("...");
  out.push_back('"');
  return out;
}

// Why an IPv4 address (host byte order) is never a node's, or nullptr.
const char* refusedIpv4(uint32_t a) {
  // 0.0.0.0/8 is "this network" (RFC 1122): only ever a source address, and
  // connecting to 0.0.0.0 reaches the local host on Linux.
  if ((a >> 24) == 0) return "unspecified address";
  if (a == 0xffffffffu) return "broadcast address";
  if ((a >> 28) == 0xe) return "multicast address";
  if ((a >> 16) == 0xa9fe) return "link-local address";
  return nullptr;
}

const char* refusedIpv6(const in6_addr& addr) {
  const uint8_t* b = addr.s6_addr;
  bool zeroPrefix = true;  // the first 10 bytes
  for (int i = 0; i < 10; ++i) zeroPrefix = zeroPrefix && b[i] == 0;
  // ::ffff:a.b.c.d reaches a.b.c.d through a dual-stack socket: judge the
  // IPv4 address it carries.
  if (zeroPrefix && b[10] == 0xff && b[11] == 0xff) {
    const uint32_t v4 = (uint32_t{b[12]} << 24) | (uint32_t{b[13]} << 16) | (uint32_t{b[14]} << 8) |
                        uint32_t{b[15]};
    return refusedIpv4(v4);
  }
  bool allZero = zeroPrefix;
  for (int i = 10; i < 16; ++i) allZero = allZero && b[i] == 0;
  if (allZero) return "unspecified address";
  if (b[0] == 0xff) return "multicast address";
  if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) return "link-local address";
  return nullptr;
}

}  // namespace

Status validateNodeAddress(std::string_view ip) {
  auto refuse = [&](std::string_view why) {
    return Error("invalid node ip " + quoteValue(ip) + ": " + std::string(why));
  };
  // inet_pton reads a C string: an embedded NUL would cut the text short
  // and accept "1.2.3.4\0junk". Anything longer than the longest literal
  // cannot be one.
  if (ip.empty() || ip.size() >= INET6_ADDRSTRLEN || ip.find('\0') != std::string_view::npos) {
    return refuse("not an IP address");
  }
  const std::string text(ip);
  in_addr v4{};
  if (::inet_pton(AF_INET, text.c_str(), &v4) == 1) {
    if (const char* why = refusedIpv4(ntohl(v4.s_addr))) return refuse(why);
    return Status();
  }
  in6_addr v6{};
  if (::inet_pton(AF_INET6, text.c_str(), &v6) == 1) {
    if (const char* why = refusedIpv6(v6)) return refuse(why);
    return Status();
  }
  return refuse("not an IP address");
}

std::string nodeBaseUrl(std::string_view ip, int port) {
  std::string url = "http://";
  if (ip.find(':') != std::string_view::npos) {
    url.push_back('[');
    url.append(ip);
    url.push_back(']');
  } else {
    url.append(ip);
  }
  url.push_back(':');
  url.append(std::to_string(port));
  return url;
}

}  // namespace sbx::orch
