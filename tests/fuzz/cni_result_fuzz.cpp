// The bridge plugin's ADD result as sbxlet reads it (net/Cni.h,
// parseCniResult): an accepted result names an IPv4 address and a host-side
// veth other than the bridge, and its minified form, kept in the state file
// and passed to later plugin calls, reads back to the same attachment.

#include <arpa/inet.h>

#include <string>
#include <string_view>

#include "FuzzTarget.h"
#include "net/Cni.h"

namespace {

constexpr std::string_view kBridge = "sbx-br0";

bool isIpv4(const std::string& s) {
  in_addr a{};
  return ::inet_pton(AF_INET, s.c_str(), &a) == 1;
}

}  // namespace

SBX_FUZZ_TARGET(cni_result) {
  auto att = sbx::net::parseCniResult(input, kBridge);
  if (!att.ok()) {
    SBX_FUZZ_CHECK(!att.message().empty());
    return;
  }
  SBX_FUZZ_CHECK(isIpv4(att->ip));
  SBX_FUZZ_CHECK(!att->hostVeth.empty());
  SBX_FUZZ_CHECK(att->hostVeth != kBridge);
  SBX_FUZZ_CHECK(!att->result.empty());

  auto again = sbx::net::parseCniResult(att->result, kBridge);
  SBX_FUZZ_CHECK(again.ok());
  SBX_FUZZ_CHECK(again->ip == att->ip);
  SBX_FUZZ_CHECK(again->gateway == att->gateway);
  SBX_FUZZ_CHECK(again->hostVeth == att->hostVeth);
  SBX_FUZZ_CHECK(again->result == att->result);
}
