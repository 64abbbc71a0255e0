#include "orch/NodeAddress.h"

#include <doctest/doctest.h>

#include <string>

using namespace sbx;
using namespace sbx::orch;

namespace {

// The reason after the quoted value, or "ok".
std::string verdict(std::string_view ip) {
  Status s = validateNodeAddress(ip);
  if (s.ok()) return "ok";
  const std::string& m = s.message();
  const size_t colon = m.rfind(": ");
  return colon == std::string::npos ? m : m.substr(colon + 2);
}

}  // namespace

TEST_CASE("NodeAddress: ordinary IPv4 and IPv6 addresses are accepted") {
  for (const char* ip : {"10.0.0.5",
                         "192.168.1.20",
                         "172.16.0.1",
                         "100.64.0.1",
                         "8.8.8.8",
                         "203.0.113.10",
                         "127.0.0.1",
                         "127.0.0.53",
                         "1.0.0.0",
                         "223.255.255.255",
                         "169.253.255.255",
                         "169.255.0.1",
                         "255.255.255.254",
                         "::1",
                         "fd00::5",
                         "2001:db8::1",
                         "fec0::1",
                         "fe7f::1",
                         "fec0::",
                         "feff::1",
                         "::ffff:10.0.0.5",
                         "::ffff:127.0.0.1",
                         "::ffff:a00:5",
                         "2001:DB8:0:0:0:0:0:1",
                         "64:ff9b::a9fe:a9fe"}) {
    CAPTURE(ip);
    CHECK(verdict(ip) == "ok");
  }
}

TEST_CASE("NodeAddress: not an IP address") {
  for (const char* ip : {"",
                         " ",
                         "localhost",
                         "node-a.example",
                         "10.0.0",
                         "10.0.0.5.6",
                         "10.0.0.256",
                         "010.0.0.5",
                         "10.0.0.05",
                         "0x0a.0.0.5",
                         "167772165",
                         "127.1",
                         " 10.0.0.5",
                         "10.0.0.5 ",
                         "10.0.0.5:8080",
                         "[::1]",
                         "::1%lo",
                         "fe80::1%eth0",
                         "::g",
                         "1:2:3:4:5:6:7:8:9",
                         "10.0.0.0/8",
                         "http://10.0.0.5"}) {
    CAPTURE(ip);
    CHECK(verdict(ip) == "not an IP address");
  }
  // An embedded NUL would end the C string early.
  CHECK(verdict(std::string("10.0.0.5\0junk", 13)) == "not an IP address");
  // Longer than any literal.
  CHECK(verdict(std::string(100, '1')) == "not an IP address");
  CHECK(validateNodeAddress("localhost").message() ==
        "invalid node ip \"localhost\": not an IP address");
}

TEST_CASE("NodeAddress: unspecified addresses") {
  for (const char* ip : {"0.0.0.0", "0.1.2.3", "0.255.255.255", "::", "0:0:0:0:0:0:0:0",
                         "::ffff:0.0.0.0", "::ffff:0:0"}) {
    CAPTURE(ip);
    CHECK(verdict(ip) == "unspecified address");
  }
  CHECK(validateNodeAddress("0.0.0.0").message() ==
        "invalid node ip \"0.0.0.0\": unspecified address");
}

TEST_CASE("NodeAddress: multicast addresses") {
  for (const char* ip :
       {"224.0.0.1", "224.0.0.0", "239.255.255.255", "230.1.2.3", "ff02::1",
        "ff00::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "FF05::2", "::ffff:224.0.0.251"}) {
    CAPTURE(ip);
    CHECK(verdict(ip) == "multicast address");
  }
  CHECK(validateNodeAddress("ff02::1").message() ==
        "invalid node ip \"ff02::1\": multicast address");
}

TEST_CASE("NodeAddress: link-local addresses") {
  for (const char* ip :
       {"169.254.169.254", "169.254.0.0", "169.254.255.255", "fe80::1", "fe80::", "febf:ffff::1",
        "FE80::a:b", "::ffff:169.254.169.254", "::ffff:a9fe:a9fe"}) {
    CAPTURE(ip);
    CHECK(verdict(ip) == "link-local address");
  }
  CHECK(validateNodeAddress("169.254.169.254").message() ==
        "invalid node ip \"169.254.169.254\": link-local address");
}

TEST_CASE("NodeAddress: the IPv4 broadcast address") {
  CHECK(verdict("255.255.255.255") == "broadcast address");
  CHECK(verdict("::ffff:255.255.255.255") == "broadcast address");
  CHECK(verdict("::ffff:ffff:ffff") == "broadcast address");
  CHECK(validateNodeAddress("255.255.255.255").message() ==
        "invalid node ip \"255.255.255.255\": broadcast address");
}

TEST_CASE("NodeAddress: the value in the message is bounded and printable") {
  const std::string m = validateNodeAddress(std::string(80, 'x')).message();
  CHECK(m == "invalid node ip \"" + std::string(64, 'x') + "...\": not an IP address");
  CHECK(validateNodeAddress("a\nb\x01").message() == "invalid node ip \"a?b?\": not an IP address");
}

TEST_CASE("NodeAddress: base URLs bracket IPv6") {
  CHECK(nodeBaseUrl("1.2.3.4", 8080) == "http://1.2.3.4:8080");
  CHECK(nodeBaseUrl("127.0.0.1", 1) == "http://127.0.0.1:1");
  CHECK(nodeBaseUrl("::1", 8080) == "http://[::1]:8080");
  CHECK(nodeBaseUrl("fd00::5", 65535) == "http://[fd00::5]:65535");
  CHECK(nodeBaseUrl("::ffff:10.0.0.5", 9000) == "http://[::ffff:10.0.0.5]:9000");
}
