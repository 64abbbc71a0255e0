#include "config/ConfigSchema.h"

#include <doctest/doctest.h>

#include <map>
#include <string>
#include <vector>

using namespace sbx;
using namespace sbx::config;
using namespace std::chrono_literals;

namespace {

// One field of every key type.
struct TestConfig {
  std::string name;
  bool verbose = false;
  int count = 0;
  uint16_t port = 0;
  std::chrono::nanoseconds timeout{0};
  std::chrono::nanoseconds grace{0};
  int64_t limit = 0;
  StringList tags;
  StringListMap mirrors;
  std::string nodes;
  std::string token;
  std::string legacy;
};

ConfigSchema<TestConfig> testSchema() {
  using C = TestConfig;
  ConfigSchema<C> s(SchemaInfo{"testd", "a test daemon", "TESTD_", "/etc/testd.json"});
  s.string("name", "alpha", "the name", &C::name).validate([](const std::string& v) -> Status {
    if (v == "forbidden") return Error("must not be forbidden");
    return Status();
  });
  s.boolean("verbose", false, "say more", &C::verbose);
  s.integer("count", 5, 1, 100, "how many", &C::count);
  s.integer("port", 8080, 1, 65535, "a port", &C::port);
  s.duration("timeout", "4m", "how long", &C::timeout).positive();
  s.duration("grace", "10s", "grace", &C::grace).range(0ns, 1h).acceptBareSeconds();
  s.memory("limit", "128Mi", "how much", &C::limit);
  s.stringList("tags", "[]", "labels", &C::tags);
  s.stringListMap("mirrors", "{}", "registry mirrors", &C::mirrors);
  s.jsonArray("nodes", "[]", "nodes", &C::nodes);
  s.string("token", "", "a secret", &C::token).secret();
  s.string("legacy_dir", "", "has an old env name", &C::legacy).envAlias("OLD_DIR");
  return s;
}

// An injected environment and filesystem, and argv built from strings.
struct Harness {
  std::map<std::string, std::string> env;
  std::map<std::string, std::string> files;
  std::map<std::string, std::string> unreadable;  // path → error message
  std::vector<std::string> filesRead;
  std::vector<std::string> envRead;

  Result<LoadOutcome<TestConfig>> load(std::vector<std::string> args) {
    args.insert(args.begin(), "testd");
    std::vector<const char*> argv;
    for (const std::string& a : args) argv.push_back(a.c_str());
    argv.push_back(nullptr);
    EnvLookup lookup = [this](const std::string& name) -> std::optional<std::string> {
      envRead.push_back(name);
      auto it = env.find(name);
      if (it == env.end()) return std::nullopt;
      return it->second;
    };
    FileReader reader = [this](const std::string& path) -> Result<std::optional<std::string>> {
      filesRead.push_back(path);
      if (auto it = unreadable.find(path); it != unreadable.end()) return Error(it->second);
      auto it = files.find(path);
      if (it == files.end()) return std::optional<std::string>();
      return std::optional<std::string>(it->second);
    };
    return testSchema().load(static_cast<int>(args.size()), argv.data(), lookup, reader);
  }

  // The error message of a load that must fail.
  std::string error(std::vector<std::string> args) {
    auto r = load(std::move(args));
    REQUIRE_FALSE(r.ok());
    return r.message();
  }
};

const EffectiveSetting& effective(const LoadOutcome<TestConfig>& out, std::string_view key) {
  for (const EffectiveSetting& e : out.effective) {
    if (e.key == key) return e;
  }
  FAIL("no effective setting for " << key);
  return out.effective.front();
}

}  // namespace

TEST_CASE("ConfigSchema: defaults when nothing is given") {
  Harness h;
  auto r = h.load({});
  REQUIRE(r.ok());
  CHECK_FALSE(r->helpRequested);
  const TestConfig& c = r->config;
  CHECK(c.name == "alpha");
  CHECK(c.verbose == false);
  CHECK(c.count == 5);
  CHECK(c.port == 8080);
  CHECK(c.timeout == 4min);
  CHECK(c.grace == 10s);
  CHECK(c.limit == 128LL << 20);
  CHECK(c.tags.empty());
  CHECK(c.mirrors.empty());
  CHECK(c.nodes == "[]");
  CHECK(c.token.empty());
  // The default file was looked for and, missing, is fine.
  CHECK(h.filesRead == std::vector<std::string>{"/etc/testd.json"});
  CHECK(r->configFile.empty());
  REQUIRE(r->effective.size() == 12);
  CHECK(effective(*r, "timeout").text == "4m");
  CHECK(effective(*r, "timeout").source.describe() == "default");
}

TEST_CASE("ConfigSchema: every type from the config file") {
  Harness h;
  h.files["/etc/testd.json"] = R"({
    "name": "beta", "verbose": true, "count": 7, "port": 9000, "timeout": "1h30m",
    "grace": 5, "limit": "1Gi", "tags": ["a", "b"],
    "mirrors": {"docker.io": ["http://127.0.0.1:5000", "http://m2"]},
    "nodes": [{"id": "n1", "port": 8080, "ok": true, "w": 1.5, "x": null}],
    "token": "s3cret", "legacy_dir": null
  })";
  auto r = h.load({});
  REQUIRE(r.ok());
  const TestConfig& c = r->config;
  CHECK(c.name == "beta");
  CHECK(c.verbose);
  CHECK(c.count == 7);
  CHECK(c.port == 9000);
  CHECK(c.timeout == 90min);
  CHECK(c.grace == 5s);  // bare seconds accepted for this key
  CHECK(c.limit == 1LL << 30);
  CHECK(c.tags == StringList{"a", "b"});
  CHECK(c.mirrors == StringListMap{{"docker.io", {"http://127.0.0.1:5000", "http://m2"}}});
  CHECK(c.nodes == R"([{"id":"n1","port":8080,"ok":true,"w":1.5,"x":null}])");
  CHECK(c.token == "s3cret");
  CHECK(c.legacy.empty());  // null keeps the default
  CHECK(r->configFile == "/etc/testd.json");
  CHECK(effective(*r, "timeout").text == "1h30m");
  CHECK(effective(*r, "timeout").source.describe() == "config file /etc/testd.json");
  CHECK(effective(*r, "tags").text == R"(["a","b"])");
  CHECK(effective(*r, "token").text == "(redacted)");
  CHECK(effective(*r, "legacy_dir").source.kind == SourceKind::Default);
}

TEST_CASE("ConfigSchema: memory takes a number of bytes in the file") {
  Harness h;
  h.files["/etc/testd.json"] = R"({"limit": 4096})";
  auto r = h.load({});
  REQUIRE(r.ok());
  CHECK(r->config.limit == 4096);
}

TEST_CASE("ConfigSchema: an empty config file is an empty configuration") {
  Harness h;
  h.files["/etc/testd.json"] = " \n";
  auto r = h.load({});
  REQUIRE(r.ok());
  CHECK(r->config.count == 5);
  CHECK(r->configFile == "/etc/testd.json");
}

TEST_CASE("ConfigSchema: every type from the environment") {
  Harness h;
  h.env = {{"TESTD_NAME", "gamma"},
           {"TESTD_VERBOSE", "1"},
           {"TESTD_COUNT", "42"},
           {"TESTD_PORT", "+443"},
           {"TESTD_TIMEOUT", "250ms"},
           {"TESTD_GRACE", "0"},
           {"TESTD_LIMIT", "512Ki"},
           {"TESTD_TAGS", " a, b ,,c "},
           {"TESTD_MIRRORS", R"({"docker.io":["http://127.0.0.1:5000"]})"},
           {"TESTD_NODES", R"( [ {"id": "n1"} ] )"},
           {"TESTD_TOKEN", "tok"}};
  auto r = h.load({});
  REQUIRE(r.ok());
  const TestConfig& c = r->config;
  CHECK(c.name == "gamma");
  CHECK(c.verbose);
  CHECK(c.count == 42);
  CHECK(c.port == 443);
  CHECK(c.timeout == 250ms);
  CHECK(c.grace == 0s);
  CHECK(c.limit == 512 * 1024);
  CHECK(c.tags == StringList{"a", "b", "c"});
  CHECK(c.mirrors == StringListMap{{"docker.io", {"http://127.0.0.1:5000"}}});
  CHECK(c.nodes == R"([{"id":"n1"}])");
  CHECK(c.token == "tok");
  CHECK(effective(*r, "count").source.describe() == "TESTD_COUNT");
  CHECK(effective(*r, "token").text == "(redacted)");
}

TEST_CASE("ConfigSchema: lists as JSON arrays and empty text") {
  Harness h;
  h.env["TESTD_TAGS"] = R"(["x,y", "z"])";
  auto r = h.load({"--mirrors", ""});
  REQUIRE(r.ok());
  CHECK(r->config.tags == StringList{"x,y", "z"});
  CHECK(r->config.mirrors.empty());
  h.env["TESTD_TAGS"] = "";
  r = h.load({});
  REQUIRE(r.ok());
  CHECK(r->config.tags.empty());
}

TEST_CASE("ConfigSchema: flag spellings") {
  Harness h;
  SUBCASE("kebab, snake and =") {
    auto r = h.load({"--count", "9", "--legacy_dir", "/l", "--timeout=2s", "--tags=a,b"});
    REQUIRE(r.ok());
    CHECK(r->config.count == 9);
    CHECK(r->config.legacy == "/l");
    CHECK(r->config.timeout == 2s);
    CHECK(r->config.tags == StringList{"a", "b"});
    CHECK(effective(*r, "legacy_dir").source.describe() == "--legacy_dir");
    CHECK(effective(*r, "timeout").source.describe() == "--timeout");
  }
  SUBCASE("kebab spelling of a snake key") {
    auto r = h.load({"--legacy-dir", "/k"});
    REQUIRE(r.ok());
    CHECK(r->config.legacy == "/k");
  }
  SUBCASE("a value starting with -- needs =") {
    auto r = h.load({"--name=--odd"});
    REQUIRE(r.ok());
    CHECK(r->config.name == "--odd");
    CHECK(h.error({"--name", "--count", "3"}) == "flag --name needs a value");
    CHECK(h.error({"--name"}) == "flag --name needs a value");
  }
  SUBCASE("a value starting with a single dash is a value") {
    CHECK(h.error({"--count", "-3"}) ==
          "invalid value for count (from --count): must be between 1 and 100");
  }
  SUBCASE("bool flags") {
    auto r = h.load({"--verbose"});
    REQUIRE(r.ok());
    CHECK(r->config.verbose);
    r = h.load({"--verbose", "false"});
    REQUIRE(r.ok());
    CHECK_FALSE(r->config.verbose);
    r = h.load({"--verbose=0"});
    REQUIRE(r.ok());
    CHECK_FALSE(r->config.verbose);
    r = h.load({"--verbose", "--count", "3"});
    REQUIRE(r.ok());
    CHECK(r->config.verbose);
    CHECK(r->config.count == 3);
  }
  SUBCASE("a repeated flag: the last wins") {
    auto r = h.load({"--count", "2", "--count=3"});
    REQUIRE(r.ok());
    CHECK(r->config.count == 3);
  }
}

TEST_CASE("ConfigSchema: precedence flag > env > file > default") {
  Harness h;
  h.files["/etc/testd.json"] = R"({"count": 10, "port": 10, "timeout": "10s"})";
  h.env = {{"TESTD_COUNT", "20"}, {"TESTD_PORT", "20"}};
  auto r = h.load({"--count", "30"});
  REQUIRE(r.ok());
  CHECK(r->config.count == 30);         // in all three: the flag
  CHECK(r->config.port == 20);          // file and env: the env
  CHECK(r->config.timeout == 10s);      // file only
  CHECK(r->config.limit == 128 << 20);  // default
  CHECK(effective(*r, "count").source.kind == SourceKind::Flag);
  CHECK(effective(*r, "port").source.kind == SourceKind::Env);
  CHECK(effective(*r, "timeout").source.kind == SourceKind::File);
  CHECK(effective(*r, "limit").source.kind == SourceKind::Default);
}

TEST_CASE("ConfigSchema: an overridden value is still validated") {
  Harness h;
  h.env["TESTD_COUNT"] = "abc";
  CHECK(h.error({"--count", "3"}) ==
        "invalid value for count (from TESTD_COUNT): expected integer, got \"abc\"");
}

TEST_CASE("ConfigSchema: text parse errors name the key and the source") {
  Harness h;
  SUBCASE("duration") {
    h.env["TESTD_TIMEOUT"] = "4x";
    CHECK(h.error({}) ==
          "invalid value for timeout (from TESTD_TIMEOUT): invalid duration \"4x\": expected "
          "e.g. 250ms, 10s, 4m or 1h30m");
  }
  SUBCASE("positive duration") {
    CHECK(h.error({"--timeout", "0s"}) ==
          "invalid value for timeout (from --timeout): must be greater than 0");
  }
  SUBCASE("duration range") {
    CHECK(h.error({"--grace=2h"}) ==
          "invalid value for grace (from --grace): must be between "
          "0s and 1h");
  }
  SUBCASE("bare seconds only where accepted") {
    CHECK(h.error({"--timeout", "5"}) ==
          "invalid value for timeout (from --timeout): invalid duration \"5\": expected e.g. "
          "250ms, 10s, 4m or 1h30m");
  }
  SUBCASE("integer") {
    CHECK(h.error({"--count", "12x"}) ==
          "invalid value for count (from --count): expected integer, got \"12x\"");
    CHECK(h.error({"--count", ""}) ==
          "invalid value for count (from --count): expected integer, got \"\"");
    CHECK(h.error({"--count", "101"}) ==
          "invalid value for count (from --count): must be between 1 and 100");
    CHECK(h.error({"--port", "99999999999999999999"}) ==
          "invalid value for port (from --port): expected integer, got \"99999999999999999999\"");
  }
  SUBCASE("bool") {
    h.env["TESTD_VERBOSE"] = "yes";
    CHECK(h.error({}) ==
          "invalid value for verbose (from TESTD_VERBOSE): expected true, false, 1 or 0, got "
          "\"yes\"");
  }
  SUBCASE("memory") {
    CHECK(h.error({"--limit", "lots"}) ==
          "invalid value for limit (from --limit): invalid memory quantity \"lots\": expected "
          "e.g. 128Mi, 1Gi, 128M or 1G");
  }
  SUBCASE("list") {
    CHECK(h.error({"--tags", "[1]"}) ==
          "invalid value for tags (from --tags): [0]: expected string");
    CHECK(h.error({"--tags", "[oops"})
              .starts_with("invalid value for tags (from --tags): invalid JSON: "));
  }
  SUBCASE("map") {
    CHECK(h.error({"--mirrors", "docker.io=x"})
              .starts_with("invalid value for mirrors (from --mirrors): invalid JSON: "));
    CHECK(h.error({"--mirrors", "[]"}) ==
          "invalid value for mirrors (from --mirrors): expected a JSON object of string arrays, "
          "e.g. {\"docker.io\":[\"http://127.0.0.1:5000\"]}");
    CHECK(h.error({"--mirrors", R"({"docker.io":"http://x"})"}) ==
          "invalid value for mirrors (from --mirrors): docker.io: expected array of strings");
    CHECK(h.error({"--mirrors", R"({"docker.io":["http://x", 3]})"}) ==
          "invalid value for mirrors (from --mirrors): docker.io[1]: expected string");
  }
  SUBCASE("json array of objects") {
    CHECK(h.error({"--nodes", "{}"}) ==
          "invalid value for nodes (from --nodes): expected a JSON array of objects");
    CHECK(h.error({"--nodes", R"([{}, 1])"}) ==
          "invalid value for nodes (from --nodes): [1]: expected object");
  }
  SUBCASE("the key's own validator") {
    CHECK(h.error({"--name", "forbidden"}) ==
          "invalid value for name (from --name): must not be forbidden");
  }
}

TEST_CASE("ConfigSchema: config file errors name the file and the key") {
  Harness h;
  auto fileError = [&](std::string content) {
    h.files["/x.json"] = std::move(content);
    return h.error({"-c", "/x.json"});
  };
  CHECK(fileError(R"({"count": "90"})") == "config file /x.json: count: expected integer");
  CHECK(fileError(R"({"count": 1.5})") == "config file /x.json: count: expected integer");
  CHECK(fileError(R"({"count": 0})") == "config file /x.json: count: must be between 1 and 100");
  CHECK(fileError(R"({"verbose": "true"})") == "config file /x.json: verbose: expected boolean");
  CHECK(fileError(R"({"name": 3})") == "config file /x.json: name: expected string");
  CHECK(fileError(R"({"name": "forbidden"})") ==
        "config file /x.json: name: must not be forbidden");
  CHECK(fileError(R"({"timeout": 5})") ==
        "config file /x.json: timeout: expected a duration string such as \"10s\"");
  CHECK(fileError(R"({"timeout": "4x"})") ==
        "config file /x.json: timeout: invalid duration \"4x\": expected e.g. 250ms, 10s, 4m or "
        "1h30m");
  CHECK(fileError(R"({"grace": 7200})") == "config file /x.json: grace: must be between 0s and 1h");
  CHECK(fileError(R"({"limit": 0})") == "config file /x.json: limit: must be greater than 0");
  CHECK(fileError(R"({"limit": true})") ==
        "config file /x.json: limit: expected a quantity string such as \"128Mi\" or a number of "
        "bytes");
  CHECK(fileError(R"({"tags": "a,b"})") == "config file /x.json: tags: expected array of strings");
  CHECK(fileError(R"({"tags": ["a", 2]})") == "config file /x.json: tags[1]: expected string");
  CHECK(fileError(R"({"mirrors": {"docker.io": [1]}})") ==
        "config file /x.json: mirrors.docker.io[0]: expected string");
  CHECK(fileError(R"({"nodes": [1]})") == "config file /x.json: nodes[0]: expected object");
  CHECK(fileError(R"({"nodes": {}})") == "config file /x.json: nodes: expected array of objects");
  CHECK(fileError(R"([])") == "config file /x.json: expected a JSON object of keys and values");
  CHECK(fileError(R"({"count": )").starts_with("config file /x.json: invalid JSON: "));
  CHECK(fileError(R"({"count": 2, "count": 3})") == "config file /x.json: invalid JSON: duplicate key \"count\"");
}

TEST_CASE("ConfigSchema: an unknown file key is an error, with a suggestion") {
  Harness h;
  h.files["/x.json"] = R"({"cuont": 3})";
  CHECK(h.error({"-c", "/x.json"}) ==
        "config file /x.json: unknown key \"cuont\" (did you mean \"count\"?)");
  h.files["/x.json"] = R"({"legacy-dir": "/l"})";
  CHECK(h.error({"-c", "/x.json"}) ==
        "config file /x.json: unknown key \"legacy-dir\" (did you mean \"legacy_dir\"?)");
  h.files["/x.json"] = R"({"zzzzzzzz": 1})";
  CHECK(h.error({"-c", "/x.json"}) == "config file /x.json: unknown key \"zzzzzzzz\"");
}

TEST_CASE("ConfigSchema: unknown flags and stray arguments") {
  Harness h;
  CHECK(h.error({"--bogus"}) == "unknown flag --bogus (see --help)");
  CHECK(h.error({"--count", "3", "--bogus", "1"}) == "unknown flag --bogus (see --help)");
  // What follows '=' is not echoed: it could be a secret.
  CHECK(h.error({"--tokn=hunter2"}) == "unknown flag --tokn (see --help)");
  CHECK(h.error({"-x"}) == "unknown flag -x (see --help)");
  CHECK(h.error({"extra"}) == "unexpected argument \"extra\"");
  CHECK(h.error({"--", "extra"}) == "unexpected argument \"extra\"");
  CHECK(h.error({"-c"}) == "flag -c needs a value");
  auto r = h.load({"--"});
  CHECK(r.ok());
}

TEST_CASE("ConfigSchema: the config file: default, explicit, missing, unreadable") {
  Harness h;
  h.files["/mine.json"] = R"({"count": 11})";
  SUBCASE("-c FILE") {
    auto r = h.load({"-c", "/mine.json"});
    REQUIRE(r.ok());
    CHECK(r->config.count == 11);
    CHECK(h.filesRead == std::vector<std::string>{"/mine.json"});
  }
  SUBCASE("--config FILE and --config=FILE") {
    auto r = h.load({"--config", "/mine.json"});
    REQUIRE(r.ok());
    CHECK(r->config.count == 11);
    r = h.load({"--config=/mine.json"});
    REQUIRE(r.ok());
    CHECK(r->config.count == 11);
  }
  SUBCASE("a missing explicit file is an error") {
    CHECK(h.error({"-c", "/nope.json"}) == "config file /nope.json: not found");
  }
  SUBCASE("a missing default file is fine") {
    auto r = h.load({});
    REQUIRE(r.ok());
    CHECK(r->configFile.empty());
  }
  SUBCASE("an unreadable file is an error, default or not") {
    h.unreadable["/etc/testd.json"] = "cannot open: Permission denied";
    CHECK(h.error({}) == "config file /etc/testd.json: cannot open: Permission denied");
  }
}

TEST_CASE("ConfigSchema: backward-compatible env aliases") {
  Harness h;
  h.env["OLD_DIR"] = "/old";
  auto r = h.load({});
  REQUIRE(r.ok());
  CHECK(r->config.legacy == "/old");
  CHECK(effective(*r, "legacy_dir").source.describe() == "OLD_DIR");
  // The prefixed name wins over the alias.
  h.env["TESTD_LEGACY_DIR"] = "/new";
  r = h.load({});
  REQUIRE(r.ok());
  CHECK(r->config.legacy == "/new");
  // And a flag over both.
  r = h.load({"--legacy-dir", "/flag"});
  REQUIRE(r.ok());
  CHECK(r->config.legacy == "/flag");
}

TEST_CASE("ConfigSchema: --help lists every key and reads nothing") {
  Harness h;
  h.env["TESTD_TOKEN"] = "env-secret-value";
  h.files["/etc/testd.json"] = R"({"token": "file-secret-value"})";
  for (const char* flag : {"--help", "-h"}) {
    h.filesRead.clear();
    h.envRead.clear();
    auto r = h.load({"--token=flag-secret-value", flag});
    REQUIRE(r.ok());
    CHECK(r->helpRequested);
    CHECK(h.filesRead.empty());
    CHECK(h.envRead.empty());
    const std::string& text = r->helpText;
    CHECK(text.starts_with("Usage: testd [-c FILE] [--key-name VALUE]...\n"));
    CHECK(text.find("/etc/testd.json") != std::string::npos);
    const ConfigSchema<TestConfig> typed = testSchema();
    const Schema& schema = typed.schema();
    for (const KeyDef& key : schema.keys()) {
      CAPTURE(key.name);
      CHECK(text.find(Schema::flagName(key) + " ") != std::string::npos);
      CHECK(text.find(schema.envName(key)) != std::string::npos);
      CHECK(text.find(key.help) != std::string::npos);
    }
    CHECK(text.find("--count INT (1..100)") != std::string::npos);
    CHECK(text.find("--timeout DURATION (> 0)") != std::string::npos);
    CHECK(text.find("--grace DURATION (0s..1h)") != std::string::npos);
    CHECK(text.find("default: 4m; env: TESTD_TIMEOUT") != std::string::npos);
    CHECK(text.find("env: TESTD_LEGACY_DIR or OLD_DIR") != std::string::npos);
    CHECK(text.find("secret-value") == std::string::npos);
  }
  // --help wins over a bad argument before it.
  auto r = h.load({"--bogus", "--help"});
  REQUIRE(r.ok());
  CHECK(r->helpRequested);
}

TEST_CASE("ConfigSchema: a secret's value never appears in an error") {
  ConfigSchema<TestConfig> s(SchemaInfo{"t", "", "T_", ""});
  s.integer("count", 1, 1, 10, "", &TestConfig::count).secret();
  const char* argv[] = {"t", "--count=hunter2", nullptr};
  auto r = s.load(
      2, argv, [](const std::string&) { return std::optional<std::string>(); }, readFileFromDisk);
  REQUIRE_FALSE(r.ok());
  CHECK(r.message() ==
        "invalid value for count (from --count): not a valid value (not shown: secret)");
}

TEST_CASE("ConfigSchema: a schema without a default file reads none") {
  ConfigSchema<TestConfig> s(SchemaInfo{"t", "", "T_", ""});
  s.integer("count", 1, 1, 10, "", &TestConfig::count);
  int reads = 0;
  const char* argv[] = {"t", nullptr};
  auto r = s.load(
      1, argv, [](const std::string&) { return std::optional<std::string>(); },
      [&](const std::string&) -> Result<std::optional<std::string>> {
        ++reads;
        return std::optional<std::string>();
      });
  REQUIRE(r.ok());
  CHECK(reads == 0);
  CHECK(r->config.count == 1);
  CHECK(s.helpText().find("JSON config file (none by default)") != std::string::npos);
}

TEST_CASE("ConfigSchema: a bad default is reported") {
  ConfigSchema<TestConfig> s(SchemaInfo{"t", "", "T_", ""});
  s.duration("timeout", "soon", "", &TestConfig::timeout);
  const char* argv[] = {"t", nullptr};
  auto r = s.load(
      1, argv, [](const std::string&) { return std::optional<std::string>(); }, readFileFromDisk);
  REQUIRE_FALSE(r.ok());
  CHECK(r.message().starts_with("invalid default for timeout: invalid duration \"soon\""));
}

TEST_CASE("ConfigSchema: readFileFromDisk") {
  auto missing = readFileFromDisk("/nonexistent/sandboxd-config-test.json");
  REQUIRE(missing.ok());
  CHECK_FALSE(missing->has_value());
  auto dir = readFileFromDisk("/");
  CHECK_FALSE(dir.ok());  // EISDIR on read
  auto file = readFileFromDisk("/proc/self/cmdline");
  REQUIRE(file.ok());
  CHECK(file->has_value());
}
