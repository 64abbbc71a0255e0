#pragma once
// HttpDaemon: what every sandboxd daemon's main() shares: flags, the event
// loop, SIGTERM/SIGINT handling with a graceful drain, SIGPIPE ignored, the
// access log, the HTTP server and GET /healthz. A daemon adds its routes and
// runs.

#include <functional>
#include <memory>
#include <string>

#include "http/HttpServer.h"
#include "http/Router.h"
#include "reactor/EventLoop.h"

namespace sbx {
class SignalWatcher;
}

namespace sbx::app {

struct DaemonInfo {
  std::string name;         // "sbxlet"
  std::string description;  // one line for --help
  std::string defaultAddr;  // ":8080"
};

struct DaemonFlags {
  std::string httpAddr;
  Duration shutdownGrace = std::chrono::seconds(10);
};

// Parses argv. Returns false and sets `exitCode` when the process should
// exit now (--help: 0; a bad flag: 2, with a message on stderr).
bool parseDaemonFlags(const DaemonInfo& info, int argc, char** argv, DaemonFlags& flags,
                      int& exitCode);

// The shared skeleton of a daemon. Construct it first in main() — before any
// thread starts, since it blocks SIGTERM/SIGINT for the signalfd — then build
// the daemon's components on loop(), add routes to router(), and run().
class HttpDaemon {
 public:
  HttpDaemon(DaemonInfo info, std::string httpAddr, Duration shutdownGrace,
             http::HttpServerOptions serverOptions = {});
  ~HttpDaemon();

  EventLoop& loop() { return loop_; }
  http::Router& router() { return router_; }

  // Runs `fn` after the HTTP server has drained, before run() returns (stop
  // background components there).
  void onStop(std::function<void()> fn) { onStop_ = std::move(fn); }

  // Listens and runs the loop until SIGTERM/SIGINT and a graceful drain.
  // Returns the exit code (1 if it cannot listen).
  int run();

 private:
  DaemonInfo info_;
  std::string httpAddr_;
  Duration grace_;
  EventLoop loop_;
  http::Router router_;
  http::FdAccessLog accessLog_;
  http::HttpServer server_;
  std::unique_ptr<SignalWatcher> signals_;
  bool draining_ = false;
  std::function<void()> onStop_;
};

// Runs a daemon with only the shared routes (/healthz) plus `addRoutes`.
int runHttpDaemon(const DaemonInfo& info, const DaemonFlags& flags,
                  const std::function<void(EventLoop&, http::Router&)>& addRoutes);

}  // namespace sbx::app
