#include "runtime/OciSpec.h"

#include <doctest/doctest.h>

#include <algorithm>

#include "json/JsonReader.h"

using namespace sbx;
using namespace sbx::runtime;

TEST_CASE("buildOciSpec: process, limits, namespaces, mounts") {
  OciSpecInput in;
  in.args = {"sh", "-c", "echo \"hi\""};
  in.env = {"PATH=/bin", "FOO=bar"};
  in.cwd = "/work";
  in.hostname = "sbx-1";
  in.netnsPath = "/var/run/netns/sbx-1";
  in.cpuMillis = 250;
  in.memoryBytes = 256 << 20;
  in.pidsLimit = 1024;
  in.tmpBytes = 20 << 20;
  in.cgroupsPath = "/sandboxd/sbx-1/web";
  in.annotations["io.kubernetes.cri.container-type"] = "sandbox";

  std::string spec = buildOciSpec(in);
  json::JsonReader r;
  auto root = r.parse(spec);
  REQUIRE(root.ok());
  json::JsonCursor c = *root;

  std::vector<std::string> args;
  c.field({"process"}).field({"args"}).forEach([&](const json::JsonCursor& a) {
    std::string s;
    a.get(s);
    args.push_back(s);
  });
  CHECK(args == in.args);
  std::string cwd, host;
  c.field({"process"}).field({"cwd"}).get(cwd);
  c.field({"hostname"}).get(host);
  CHECK(cwd == "/work");
  CHECK(host == "sbx-1");
  bool nnp = false;
  c.field({"process"}).field({"noNewPrivileges"}).get(nnp);
  CHECK(nnp);
  CHECK(c.field({"process"}).field({"capabilities"}).field({"bounding"}).size() ==
        defaultCapabilities().size());

  auto res = c.field({"linux"}).field({"resources"});
  int64_t quota = 0, period = 0, mem = 0, pids = 0;
  res.field({"cpu"}).field({"quota"}).get(quota);
  res.field({"cpu"}).field({"period"}).get(period);
  res.field({"memory"}).field({"limit"}).get(mem);
  res.field({"pids"}).field({"limit"}).get(pids);
  CHECK(quota == 25000);
  CHECK(period == 100000);
  CHECK(mem == 256 << 20);
  CHECK(pids == 1024);

  std::string netns;
  c.field({"linux"}).field({"namespaces"}).forEach([&](const json::JsonCursor& ns) {
    std::string type;
    ns.field({"type"}).get(type);
    if (type == "network") ns.field({"path"}).get(netns);
  });
  CHECK(netns == "/var/run/netns/sbx-1");

  bool tmpFound = false;
  c.field({"mounts"}).forEach([&](const json::JsonCursor& m) {
    std::string dest;
    m.field({"destination"}).get(dest);
    if (dest != "/tmp") return;
    tmpFound = true;
    std::vector<std::string> opts;
    m.field({"options"}).forEach([&](const json::JsonCursor& o) {
      std::string s;
      o.get(s);
      opts.push_back(s);
    });
    CHECK(std::find(opts.begin(), opts.end(), "size=20971520") != opts.end());
  });
  CHECK(tmpFound);
  CHECK(c.field({"linux"}).field({"maskedPaths"}).size() == 10);
  CHECK(r.ok());
}

TEST_CASE("buildOciSpec: defaults when limits are absent") {
  OciSpecInput in;
  in.args = {"true"};
  json::JsonReader r;
  auto root = r.parse(buildOciSpec(in));
  REQUIRE(root.ok());
  auto res = root->field({"linux"}).field({"resources"});
  CHECK_FALSE(res.field({"memory"}).present());
  CHECK_FALSE(res.field({"cpu"}).present());
  std::string cwd;
  root->field({"process"}).field({"cwd"}).get(cwd);
  CHECK(cwd == "/");
}

TEST_CASE("buildOciSpec: a CPU request under 10m gets the kernel's minimum quota (1 ms)") {
  for (int64_t millis : {1, 5, 9, 10, 11}) {
    OciSpecInput in;
    in.args = {"sleep", "1"};
    in.cpuMillis = millis;
    json::JsonReader r;
    auto root = r.parse(buildOciSpec(in));
    REQUIRE(root.ok());
    int64_t quota = 0;
    root->field({"linux"}).field({"resources"}).field({"cpu"}).field({"quota"}).get(quota);
    CHECK(quota == std::max<int64_t>(1000, millis * 100));
  }
}
