#include "app/SharedSecret.h"

#include <doctest/doctest.h>
#include <sys/stat.h>

#include <fstream>
#include <string>

#include "../TestUtil.h"

using namespace sbx;

TEST_CASE("bearerMatches: only \"Bearer <secret>\", exactly") {
  const std::string secret = "s3cret-0123456789abcdef";
  auto matches = [&](const std::string& h) { return app::bearerMatches(&h, secret); };
  CHECK(matches("Bearer " + secret));
  CHECK_FALSE(matches("Bearer " + secret + "x"));              // longer
  CHECK_FALSE(matches("Bearer " + secret.substr(0, 10)));      // a prefix
  CHECK_FALSE(matches("Bearer " + secret.substr(0, 22) + "g"));  // last byte differs
  CHECK_FALSE(matches("Bearer  " + secret));                   // two spaces
  CHECK_FALSE(matches("bearer " + secret));                    // scheme is case-sensitive here
  CHECK_FALSE(matches("Basic " + secret));
  CHECK_FALSE(matches(secret));
  CHECK_FALSE(matches("Bearer "));
  CHECK_FALSE(matches(""));
  CHECK_FALSE(app::bearerMatches(nullptr, secret));
  const std::string empty;
  const std::string h = "Bearer ";
  CHECK_FALSE(app::bearerMatches(&h, empty));  // no secret never matches
}

TEST_CASE("loadOrCreateSecret: generated once, 0600 in a 0700 directory, then read back") {
  test::TempDir tmp("sbx-secret-test");
  const std::string path = tmp.path + "/state/secret";
  auto first = app::loadOrCreateSecret(path);
  REQUIRE(first.ok());
  CHECK(first->size() == 64);
  CHECK(first->find_first_not_of("0123456789abcdef") == std::string::npos);
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  REQUIRE(::stat((tmp.path + "/state").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0700);
  auto again = app::loadOrCreateSecret(path);
  REQUIRE(again.ok());
  CHECK(*again == *first);

  // An operator's file is read as written (trailing newline trimmed); a
  // short one is refused.
  const std::string mine = tmp.path + "/mine";
  std::ofstream(mine) << "operator-chosen-secret-value\n";
  auto read = app::loadOrCreateSecret(mine);
  REQUIRE(read.ok());
  CHECK(*read == "operator-chosen-secret-value");
  const std::string shortOne = tmp.path + "/short";
  std::ofstream(shortOne) << "tooshort\n";
  auto refused = app::loadOrCreateSecret(shortOne);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.message() == shortOne + ": secret shorter than 16 characters");
}

TEST_CASE("secretFileWarning: a secret file others can read or write is named with its mode") {
  test::TempDir tmp("sbx-secret-test");
  const std::string path = tmp.path + "/secret";
  REQUIRE(app::loadOrCreateSecret(path).ok());
  CHECK(app::secretFileWarning(path).empty());  // generated: 0600
  REQUIRE(::chmod(path.c_str(), 0644) == 0);
  CHECK(app::secretFileWarning(path) ==
        path + " has mode 0644: other users can read it or write it (chmod 600)");
  REQUIRE(::chmod(path.c_str(), 0620) == 0);
  CHECK(app::secretFileWarning(path) ==
        path + " has mode 0620: other users can read it or write it (chmod 600)");
  REQUIRE(::chmod(path.c_str(), 0400) == 0);
  CHECK(app::secretFileWarning(path).empty());
  CHECK(app::secretFileWarning(tmp.path + "/none").rfind("stat " + tmp.path + "/none: ", 0) == 0);
}
