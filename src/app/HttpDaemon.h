#pragma once
// HttpDaemon: what every sandboxd daemon's main() shares: flags, the event
// loop, SIGTERM/SIGINT handling with a graceful drain, SIGPIPE ignored, the
// access log, the HTTP server and GET /healthz. A daemon adds its routes and
// runs.

#include <functional>
#include <string>

#include "http/HttpServer.h"
#include "http/Router.h"
#include "reactor/EventLoop.h"

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

// Runs the daemon until SIGTERM/SIGINT and a graceful drain. `addRoutes`
// registers the daemon's own routes (after /healthz). Returns the exit code.
int runHttpDaemon(const DaemonInfo& info, const DaemonFlags& flags,
                  const std::function<void(EventLoop&, http::Router&)>& addRoutes);

}  // namespace sbx::app
