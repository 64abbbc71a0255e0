#include "load/LoadMix.h"

#include <doctest/doctest.h>

#include <array>
#include <string>

using namespace sbx;
using namespace sbx::load;

namespace {

std::string parseError(const char* spec) {
  auto r = LoadMix::parse(spec);
  return r.ok() ? std::string("(parsed)") : r.message();
}

}  // namespace

TEST_CASE("LoadMix: parses weights per operation") {
  auto r = LoadMix::parse("create=1,get=4,list=1,statuses=1,delete=1");
  REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.message()));
  const LoadMix& m = *r;
  CHECK(m.weight(LoadOp::Create) == 1);
  CHECK(m.weight(LoadOp::Get) == 4);
  CHECK(m.weight(LoadOp::List) == 1);
  CHECK(m.weight(LoadOp::Statuses) == 1);
  CHECK(m.weight(LoadOp::Delete) == 1);
  CHECK(m.total() == 8);
  CHECK(m.toString() == "create=1,get=4,list=1,statuses=1,delete=1");

  // Any order, spaces, zero weights and left-out ops.
  auto r2 = LoadMix::parse(" delete = 2 , get=0,create=3 ");
  REQUIRE(r2.ok());
  CHECK(r2->weight(LoadOp::Delete) == 2);
  CHECK(r2->weight(LoadOp::Create) == 3);
  CHECK_FALSE(r2->includes(LoadOp::Get));
  CHECK_FALSE(r2->includes(LoadOp::List));
  CHECK(r2->total() == 5);
  CHECK(r2->toString() == "create=3,delete=2");

  CHECK(std::string(loadOpName(LoadOp::Statuses)) == "statuses");
  CHECK(LoadMix().total() == 0);
}

TEST_CASE("LoadMix: errors name what is wrong") {
  CHECK(parseError("create=1,fetch=2") ==
        "mix \"create=1,fetch=2\": unknown operation \"fetch\" (expected create, get, list, "
        "statuses, delete)");
  CHECK(parseError("get=-1") ==
        "mix \"get=-1\": weight of get must be a whole number from 0 to 1000000, got \"-1\"");
  CHECK(parseError("get=x") ==
        "mix \"get=x\": weight of get must be a whole number from 0 to 1000000, got \"x\"");
  CHECK(parseError("get=1.5").find("weight of get must be a whole number") != std::string::npos);
  CHECK(parseError("get=").find("got \"\"") != std::string::npos);
  CHECK(parseError("get=2000000").find("from 0 to 1000000") != std::string::npos);
  CHECK(parseError("get") == "mix \"get\": expected op=weight, got \"get\"");
  CHECK(parseError("get=1,") == "mix \"get=1,\": expected op=weight, got \"\"");
  CHECK(parseError("get=1,get=2") == "mix \"get=1,get=2\": get appears twice");
  CHECK(parseError("get=0,list=0") == "mix \"get=0,list=0\": every weight is 0");
  CHECK(parseError("") == "mix \"\": empty (expected e.g. create=1,get=4)");
  CHECK(parseError("=3").find("unknown operation \"\"") != std::string::npos);
}

TEST_CASE("LoadMix: pick is deterministic and proportional to the weights") {
  auto r = LoadMix::parse("create=1,get=3,delete=2");
  REQUIRE(r.ok());
  const LoadMix& m = *r;
  // Cumulative in enum order: create [0,1), get [1,4), delete [4,6).
  CHECK(m.pick(0) == LoadOp::Create);
  CHECK(m.pick(1) == LoadOp::Get);
  CHECK(m.pick(3) == LoadOp::Get);
  CHECK(m.pick(4) == LoadOp::Delete);
  CHECK(m.pick(5) == LoadOp::Delete);
  CHECK(m.pick(6) == LoadOp::Create);  // modulo the total
  CHECK(m.pick(UINT64_MAX) == m.pick(UINT64_MAX % 6));

  std::array<int, kLoadOpCount> seen{};
  for (uint64_t x = 0; x < 6000; ++x) ++seen[loadOpIndex(m.pick(x))];
  CHECK(seen[loadOpIndex(LoadOp::Create)] == 1000);
  CHECK(seen[loadOpIndex(LoadOp::Get)] == 3000);
  CHECK(seen[loadOpIndex(LoadOp::Delete)] == 2000);
  CHECK(seen[loadOpIndex(LoadOp::List)] == 0);  // weight 0: never
  CHECK(seen[loadOpIndex(LoadOp::Statuses)] == 0);
}
