#include "net/PortTable.h"

#include <doctest/doctest.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "reactor/Fd.h"

using namespace sbx;
using namespace sbx::net;

TEST_CASE("PortTable: a port is held by one sandbox at a time, all or nothing") {
  PortTable t([](uint16_t, const std::string&) { return Status(); });
  REQUIRE(t.reserve("sbx-old", {{30080, "tcp"}}).ok());
  auto clash = t.reserve("sbx-new", {{30081, "tcp"}, {30080, "tcp"}});
  REQUIRE(!clash.ok());
  CHECK(clash.message() == "host port already in use: 30080/tcp (sandbox sbx-old)");
  CHECK(t.holder(30081, "tcp").empty());  // nothing of the failed request stays
  CHECK(t.reserve("sbx-new", {{30080, "udp"}}).ok());  // another protocol is another port
  t.release("sbx-old");
  CHECK(t.reserve("sbx-new2", {{30080, "tcp"}}).ok());
  CHECK(t.holder(30080, "tcp") == "sbx-new2");
  t.restore("sbx-new2", {});
  CHECK(t.holder(30080, "tcp").empty());
}

TEST_CASE("PortTable: the host check refuses a port a process listens on") {
  Fd l(::socket(AF_INET, SOCK_STREAM, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(l.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  REQUIRE(::listen(l.get(), 1) == 0);
  socklen_t len = sizeof a;
  ::getsockname(l.get(), reinterpret_cast<sockaddr*>(&a), &len);
  const uint16_t port = ntohs(a.sin_port);

  PortTable t;
  auto r = t.reserve("sbx-a", {{port, "tcp"}});
  REQUIRE(!r.ok());
  CHECK(r.message() == "host port already in use: " + std::to_string(port) + "/tcp (by a process on this host)");
  l.reset();
  CHECK(t.reserve("sbx-a", {{port, "tcp"}}).ok());
}

TEST_CASE("PortTable: a client's ephemeral port is not a held port; udp and IPv6 listeners are") {
  // A listener and a client connected to it: the client's local port is
  // bound, but nothing listens on it.
  Fd l(::socket(AF_INET, SOCK_STREAM, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(l.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  REQUIRE(::listen(l.get(), 1) == 0);
  socklen_t len = sizeof a;
  ::getsockname(l.get(), reinterpret_cast<sockaddr*>(&a), &len);
  Fd c(::socket(AF_INET, SOCK_STREAM, 0));
  REQUIRE(::connect(c.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  sockaddr_in local{};
  len = sizeof local;
  ::getsockname(c.get(), reinterpret_cast<sockaddr*>(&local), &len);
  CHECK(PortTable::bindCheck(ntohs(local.sin_port), "tcp").ok());
  CHECK(!PortTable::bindCheck(ntohs(a.sin_port), "tcp").ok());

  Fd u(::socket(AF_INET6, SOCK_DGRAM, 0));
  sockaddr_in6 a6{};
  a6.sin6_family = AF_INET6;
  a6.sin6_addr = in6addr_loopback;
  if (::bind(u.get(), reinterpret_cast<sockaddr*>(&a6), sizeof a6) == 0) {  // a host without IPv6 skips this
    len = sizeof a6;
    ::getsockname(u.get(), reinterpret_cast<sockaddr*>(&a6), &len);
    auto r = PortTable::bindCheck(ntohs(a6.sin6_port), "udp");
    CHECK(r.message() == "host port already in use: " + std::to_string(ntohs(a6.sin6_port)) +
                             "/udp (by a process on this host)");
    CHECK(PortTable::bindCheck(ntohs(a6.sin6_port), "tcp").ok());
  }
}
