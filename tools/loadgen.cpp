// loadgen: a load generator for sbxlet (SPEC §1) and sandboxd-o (SPEC §2),
// on the project's own EventLoop and HttpClient (one thread).
//
//   loadgen --api sbxlet|orch --target HOST:PORT (--secret S | --secret-file PATH)
//           (--rate R | --concurrency C) [--duration D] [--count N] [options]
//
// Open loop (--rate): ops start on a fixed schedule, R per second, whether or
// not earlier ones finished; one that would exceed --max-in-flight unfinished
// ops is not started but counted as "skipped (saturated)". Closed loop
// (--concurrency): C workers, each starting its next op when its previous
// one finished. The run stops starting ops after --duration or --count ops
// (whichever comes first), lets the started ones finish, and prints per op:
// started, ok, errors, ok/s, p50/p90/p99/max latency in ms.
//
// Ops (--mix, weights): create, get, list, statuses (sbxlet only), delete.
// get/statuses/delete target sandboxes this run created and has not deleted
// (never the same one twice for delete); with none, a create runs instead.
// Ids are <--id-prefix><n> (default lg-<pid>-).
//
/* Examples (a block comment: the shell lines end in backslashes):
   # 200 ops/s of the default mix against one node for 30 s, then clean up
   loadgen --api sbxlet --target 127.0.0.1:8080 --secret-file /var/lib/sandboxd/secret \
           --rate 200 --duration 30s --cleanup
   # 16 workers creating sandboxes and waiting for each to run, 500 in all
   loadgen --api sbxlet --target 127.0.0.1:8080 --secret-file /var/lib/sandboxd/secret \
           --concurrency 16 --count 500 --mix create=1 --wait-running --cleanup
   # read-heavy traffic on the control plane over 100 preloaded sandboxes,
   # with a JSON summary as the last line for scripts
   loadgen --api orch --target 127.0.0.1:8082 --secret "$SECRET" --preload 100 \
           --rate 500 --duration 1m --mix get=8,list=1 --cleanup --json
*/
// The control plane rate-limits creates (create_rps, default 20/s): a 429 is
// reported as an error with its status, so pick a create rate it admits.
// Exit status: 0 when every request succeeded, 1 when any failed (ops,
// waits, preload or cleanup), 2 for bad flags. SIGINT/SIGTERM stop starting
// ops and still clean up and report; a second one exits at once.

#include <arpa/inet.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "base/Quantity.h"
#include "load/LoadGenerator.h"
#include "reactor/EventLoop.h"
#include "reactor/SignalWatcher.h"

namespace {

using sbx::load::LoadApi;
using sbx::load::LoadGenerator;
using sbx::load::LoadMix;
using sbx::load::LoadOptions;
using sbx::load::LoadReport;

constexpr const char* kDefaultMixSbxlet = "create=1,get=4,list=1,statuses=1,delete=1";
constexpr const char* kDefaultMixOrch = "create=1,get=4,list=1,delete=1";

void printHelp() {
  std::printf(
      "loadgen: load for sbxlet or sandboxd-o, with latency percentiles per operation\n\n"
      "usage: loadgen --api sbxlet|orch --target HOST:PORT (--secret S | --secret-file PATH)\n"
      "               (--rate R | --concurrency C) [--duration D] [--count N] [options]\n\n"
      "target and load:\n"
      "  --api sbxlet|orch       which API (sbxlet: /v1/..., sandboxd-o: /api/v1/...)\n"
      "  --target HOST:PORT      an IP literal ([::1]:8080 for IPv6) or localhost\n"
      "  --secret S              the daemon's shared secret (sent as a bearer token)\n"
      "  --secret-file PATH      read it from a file (e.g. /var/lib/sandboxd/secret)\n"
      "  --rate R                open loop: start R ops per second on a fixed schedule\n"
      "  --concurrency C         closed loop: C workers, each one op at a time\n"
      "  --duration D            stop starting ops after D (e.g. 500ms, 30s, 2m)\n"
      "  --count N               stop after N ops (open loop: N scheduled slots)\n"
      "  --mix M                 op weights (default sbxlet %s,\n"
      "                          orch %s; statuses is sbxlet only)\n"
      "  --max-in-flight N       open loop: skip a slot when N ops are unfinished (4096)\n"
      "  --timeout D             per request (10s)\n"
      "  --seed N                seed of the op and target picks (1)\n\n"
      "sandboxes:\n"
      "  --image REF             (docker.io/library/busybox:1.36)\n"
      "  --args 'A B ...'        the command line, split on spaces (\"sleep 3600\";\n"
      "                          '' = the image's entrypoint)\n"
      "  --cpu Q, --memory Q     per sandbox (10m, 16Mi)\n"
      "  --ports N               orch: container ports 8080.. per sandbox (0)\n"
      "  --id-prefix P           ids are P<n> (lg-<pid>-)\n"
      "  --wait-running          after a create, poll until running: a create->running row\n"
      "  --wait-timeout D        give up waiting after D (2m)\n"
      "  --poll-interval D       between polls (50ms)\n"
      "  --preload N             create N sandboxes first (not measured) as targets\n"
      "  --cleanup               delete what the run created, and wait until gone\n\n"
      "output:\n"
      "  --json                  also print a JSON object with every figure as the last line\n"
      "  --help                  this text\n\n"
      "exit status: 0 no request failed, 1 some failed, 2 bad flags\n",
      kDefaultMixSbxlet, kDefaultMixOrch);
}

[[noreturn]] void usageError(const std::string& message) {
  std::fprintf(stderr, "loadgen: %s (see --help)\n", message.c_str());
  std::exit(2);
}

template <class T>
T parseNumber(const std::string& flag, const std::string& text, T lo, T hi) {
  T v{};
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || v < lo || v > hi) {
    usageError(flag + ": expected a whole number from " + std::to_string(lo) + " to " +
               std::to_string(hi) + ", got \"" + text + "\"");
  }
  return v;
}

sbx::Duration parsePositiveDuration(const std::string& flag, const std::string& text) {
  auto d = sbx::parseDuration(text);
  if (!d.ok()) usageError(flag + ": " + d.message());
  if (*d <= sbx::Duration::zero()) usageError(flag + ": must be more than 0");
  return *d;
}

// "127.0.0.1:8080", "[::1]:8080", "localhost:8080".
void parseTarget(const std::string& text, LoadOptions& o) {
  std::string host, port;
  if (!text.empty() && text[0] == '[') {
    const size_t close = text.find(']');
    if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      usageError("--target: expected [IPv6]:PORT, got \"" + text + "\"");
    }
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    const size_t colon = text.rfind(':');
    if (colon == std::string::npos || text.find(':') != colon) {
      usageError("--target: expected HOST:PORT (IPv6 as [::1]:8080), got \"" + text + "\"");
    }
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  unsigned char buf[sizeof(in6_addr)];
  if (host != "localhost" && ::inet_pton(AF_INET, host.c_str(), buf) != 1 &&
      ::inet_pton(AF_INET6, host.c_str(), buf) != 1) {
    usageError("--target: host \"" + host +
               "\" must be an IP address or localhost (no DNS lookups)");
  }
  o.host = host;
  o.port = parseNumber<uint16_t>("--target port", port, 1, 65535);
}

std::string readSecretFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) usageError("--secret-file: cannot read " + path + ": " + std::strerror(errno));
  std::stringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  if (s.empty()) usageError("--secret-file: " + path + " is empty");
  return s;
}

std::vector<std::string> splitArgs(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string word; in >> word;) out.push_back(word);
  return out;
}

void raiseFdLimit() {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &rl);  // best effort: the default may do
  }
}

struct Flags {
  LoadOptions options;
  bool json = false;
};

Flags parseFlags(int argc, char** argv) {
  Flags f;
  LoadOptions& o = f.options;
  std::string api, target, secret, secretFile, mix;
  bool haveRate = false, haveConcurrency = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    std::string value;
    bool inlineValue = false;
    if (const size_t eq = arg.find('='); arg.rfind("--", 0) == 0 && eq != std::string::npos) {
      value = arg.substr(eq + 1);
      arg.resize(eq);
      inlineValue = true;
    }
    auto boolFlag = [&] {
      if (inlineValue) usageError(arg + " takes no value");
    };
    auto next = [&]() -> std::string {
      if (inlineValue) return value;
      if (i + 1 >= argc) usageError(arg + " needs a value");
      return argv[++i];
    };
    if (arg == "--help" || arg == "-h") {
      printHelp();
      std::exit(0);
    } else if (arg == "--api") {
      api = next();
    } else if (arg == "--target") {
      target = next();
    } else if (arg == "--secret") {
      secret = next();
      if (secret.empty()) usageError("--secret: empty");
    } else if (arg == "--secret-file") {
      secretFile = next();
    } else if (arg == "--rate") {
      const std::string v = next();
      char* end = nullptr;
      o.rate = std::strtod(v.c_str(), &end);
      if (v.empty() || *end != '\0' || !std::isfinite(o.rate) || o.rate <= 0 || o.rate > 1e6) {
        usageError("--rate: expected ops per second, more than 0 and at most 1000000, got \"" + v +
                   "\"");
      }
      haveRate = true;
    } else if (arg == "--concurrency") {
      o.concurrency = parseNumber<int>(arg, next(), 1, 100000);
      haveConcurrency = true;
    } else if (arg == "--duration") {
      o.duration = parsePositiveDuration(arg, next());
    } else if (arg == "--count") {
      o.count = parseNumber<uint64_t>(arg, next(), 1, UINT64_MAX);
    } else if (arg == "--mix") {
      mix = next();
    } else if (arg == "--wait-running") {
      boolFlag();
      o.waitRunning = true;
    } else if (arg == "--wait-timeout") {
      o.waitTimeout = parsePositiveDuration(arg, next());
    } else if (arg == "--poll-interval") {
      o.pollInterval = parsePositiveDuration(arg, next());
    } else if (arg == "--preload") {
      o.preload = parseNumber<size_t>(arg, next(), 0, 1000000);
    } else if (arg == "--cleanup") {
      boolFlag();
      o.cleanup = true;
    } else if (arg == "--image") {
      o.image = next();
    } else if (arg == "--args") {
      o.args = splitArgs(next());
    } else if (arg == "--cpu") {
      o.cpu = next();
    } else if (arg == "--memory") {
      o.memory = next();
    } else if (arg == "--ports") {
      o.ports = parseNumber<int>(arg, next(), 0, 100);
    } else if (arg == "--id-prefix") {
      o.idPrefix = next();
      if (o.idPrefix.empty()) usageError("--id-prefix: empty");
    } else if (arg == "--timeout") {
      o.timeout = parsePositiveDuration(arg, next());
    } else if (arg == "--max-in-flight") {
      o.maxInFlight = parseNumber<size_t>(arg, next(), 1, 1000000);
    } else if (arg == "--seed") {
      o.seed = parseNumber<uint64_t>(arg, next(), 0, UINT64_MAX);
    } else if (arg == "--json") {
      boolFlag();
      f.json = true;
    } else {
      usageError("unknown flag \"" + arg + "\"");
    }
  }

  if (api == "sbxlet") {
    o.api = LoadApi::Sbxlet;
  } else if (api == "orch") {
    o.api = LoadApi::Orch;
  } else if (api.empty()) {
    usageError("--api sbxlet|orch is required");
  } else {
    usageError("--api: expected sbxlet or orch, got \"" + api + "\"");
  }
  if (target.empty()) usageError("--target HOST:PORT is required");
  parseTarget(target, o);
  if (!secret.empty() && !secretFile.empty()) {
    usageError("--secret and --secret-file are mutually exclusive");
  }
  if (secret.empty() && secretFile.empty()) {
    usageError("--secret or --secret-file is required (both daemons want a bearer token)");
  }
  o.secret = secretFile.empty() ? secret : readSecretFile(secretFile);
  if (haveRate == haveConcurrency) {
    usageError("exactly one of --rate and --concurrency is required");
  }
  if (o.duration == sbx::Duration::zero() && o.count == 0) {
    usageError("--duration or --count is required (or both)");
  }
  if (mix.empty()) mix = o.api == LoadApi::Sbxlet ? kDefaultMixSbxlet : kDefaultMixOrch;
  auto parsed = LoadMix::parse(mix);
  if (!parsed.ok()) usageError("--" + parsed.message());
  o.mix = *parsed;
  // What is left (cpu and memory syntax, id prefix, orch without statuses).
  if (auto st = sbx::load::validateLoadOptions(o); !st.ok()) usageError(st.message());
  return f;
}

}  // namespace

int main(int argc, char** argv) {
  Flags flags = parseFlags(argc, argv);
  raiseFdLimit();
  sbx::SignalWatcher::ignoreSigpipe();

  sbx::EventLoop loop;
  LoadGenerator generator(loop, flags.options);
  int signals = 0;
  // Before any other thread exists (there are none): signals arrive only
  // through the signalfd.
  sbx::SignalWatcher watcher(loop, {SIGINT, SIGTERM}, [&](int) {
    if (++signals == 1) {
      std::fprintf(stderr, "loadgen: stopping (again to quit at once)\n");
      generator.stop();
    } else {
      std::_Exit(130);
    }
  });
  bool finished = false;
  generator.run([&](const LoadReport&) {
    finished = true;
    loop.stop();
  });
  loop.run();
  if (!finished) return 1;
  const LoadReport& report = generator.report();
  std::fputs(report.formatTable().c_str(), stdout);
  if (flags.json) std::printf("%s\n", report.formatJson().c_str());
  return report.failed() ? 1 : 0;
}
