#include "app/HttpDaemon.h"

#include <signal.h>
#include <sys/resource.h>

#include <charconv>
#include <cstdio>
#include <cstring>

#include "json/JsonWriter.h"
#include "log/Log.h"
#include "reactor/SignalWatcher.h"

namespace sbx::app {

namespace {

void printHelp(const DaemonInfo& info) {
  std::printf(
      "%s: %s\n\n"
      "usage: %s [--http-addr ADDR] [--shutdown-grace SECONDS]\n\n"
      "  --http-addr ADDR         listen address, e.g. :8080, 127.0.0.1:8080, [::1]:8080\n"
      "                           (default %s)\n"
      "  --shutdown-grace SECONDS time in-flight requests get after SIGTERM (default 10)\n"
      "  --help                   this text\n",
      info.name.c_str(), info.description.c_str(), info.name.c_str(), info.defaultAddr.c_str());
}

}  // namespace

bool parseDaemonFlags(const DaemonInfo& info, int argc, char** argv, DaemonFlags& flags,
                      int& exitCode) {
  flags.httpAddr = info.defaultAddr;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    std::string value;
    bool hasValue = false;
    if (size_t eq = arg.find('='); arg.rfind("--", 0) == 0 && eq != std::string::npos) {
      value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
      hasValue = true;
    }
    auto takeValue = [&]() -> bool {
      if (hasValue) return true;
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s: %s needs a value\n", info.name.c_str(), arg.c_str());
        return false;
      }
      value = argv[++i];
      return true;
    };
    if (arg == "--help" || arg == "-h") {
      printHelp(info);
      exitCode = 0;
      return false;
    } else if (arg == "--http-addr") {
      if (!takeValue()) {
        exitCode = 2;
        return false;
      }
      auto parsed = http::parseListenAddress(value);
      if (!parsed) {
        std::fprintf(stderr, "%s: --http-addr: %s\n", info.name.c_str(), parsed.message().c_str());
        exitCode = 2;
        return false;
      }
      flags.httpAddr = value;
    } else if (arg == "--shutdown-grace") {
      if (!takeValue()) {
        exitCode = 2;
        return false;
      }
      unsigned secs = 0;
      auto r = std::from_chars(value.data(), value.data() + value.size(), secs);
      if (value.empty() || r.ec != std::errc() || r.ptr != value.data() + value.size() ||
          secs > 3600) {
        std::fprintf(stderr, "%s: --shutdown-grace: expected seconds (0-3600), got \"%s\"\n",
                     info.name.c_str(), value.c_str());
        exitCode = 2;
        return false;
      }
      flags.shutdownGrace = std::chrono::seconds(secs);
    } else {
      std::fprintf(stderr, "%s: unknown flag %s (see --help)\n", info.name.c_str(), arg.c_str());
      exitCode = 2;
      return false;
    }
  }
  return true;
}

HttpDaemon::HttpDaemon(DaemonInfo info, std::string httpAddr, Duration shutdownGrace,
                       http::HttpServerOptions serverOptions)
    : info_(std::move(info)),
      httpAddr_(std::move(httpAddr)),
      grace_(shutdownGrace),
      accessLog_(loop_),
      server_(loop_, router_, serverOptions, &accessLog_) {
  SignalWatcher::ignoreSigpipe();
  // Before any other thread exists, so every thread inherits the blocked
  // mask and signals arrive only through the signalfd.
  signals_ = std::make_unique<SignalWatcher>(loop_, std::initializer_list<int>{SIGTERM, SIGINT},
                                             [this](int sig) {
    if (draining_) {
      logWarn("second signal, stopping now", {{"signal", strsignal(sig)}});
      loop_.stop();
      return;
    }
    draining_ = true;
    logInfo("shutting down", {{"signal", strsignal(sig)}});
    server_.shutdown(grace_, [this] { loop_.stop(); });
  });
  static const std::string kHealthy =
      json::JsonWriter().beginObject().kv("ok", true).endObject().take();
  router_.add("GET", "/healthz", [](const http::ExchangePtr& ex) { ex->respond(200, kHealthy); });
}

HttpDaemon::~HttpDaemon() = default;

namespace {

// The connection cap is only real if the process may open that many
// descriptors: raise the soft RLIMIT_NOFILE to the hard limit (as Go's
// runtime and nginx's worker_rlimit_nofile do), and say so if it is still
// short of the cap plus what the daemon itself needs.
void raiseFdLimit(size_t maxConnections) {
  struct rlimit rl {};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) return;
  if (rl.rlim_cur < rl.rlim_max) {
    rlimit raised = rl;
    raised.rlim_cur = rl.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) rl = raised;
  }
  constexpr size_t kOwnFds = 256;  // files, sockets to containerd and nodes, pipes
  if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < maxConnections + kOwnFds) {
    logWarn("open-file limit below the connection cap",
            {{"nofile", std::to_string(rl.rlim_cur)},
             {"http_max_connections", std::to_string(maxConnections)}});
  }
}

}  // namespace

int HttpDaemon::run() {
  raiseFdLimit(server_.options().maxConnections);
  Status st = server_.listen(httpAddr_);
  if (!st) {
    logError("cannot listen", {{"addr", httpAddr_}, {"error", st.message()}});
    return 1;
  }
  logInfo("listening", {{"daemon", info_.name},
                        {"addr", httpAddr_},
                        {"port", std::to_string(server_.port())}});
  loop_.run();
  if (onStop_) onStop_();
  accessLog_.flush();
  logInfo("stopped", {{"daemon", info_.name}});
  return 0;
}

int runHttpDaemon(const DaemonInfo& info, const DaemonFlags& flags,
                  const std::function<void(EventLoop&, http::Router&)>& addRoutes) {
  HttpDaemon daemon(info, flags.httpAddr, flags.shutdownGrace);
  if (addRoutes) addRoutes(daemon.loop(), daemon.router());
  return daemon.run();
}

}  // namespace sbx::app
