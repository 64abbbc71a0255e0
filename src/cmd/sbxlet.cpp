// sbxlet: the sandboxd node agent.
#include "app/HttpDaemon.h"

int main(int argc, char** argv) {
  sbx::app::DaemonInfo info{"sbxlet", "sandboxd node agent (sandboxes on containerd)", ":8080"};
  sbx::app::DaemonFlags flags;
  int code = 0;
  if (!sbx::app::parseDaemonFlags(info, argc, argv, flags, code)) return code;
  return sbx::app::runHttpDaemon(info, flags, nullptr);
}
