// sandboxd-o: the sandboxd control plane.
#include "app/HttpDaemon.h"

int main(int argc, char** argv) {
  sbx::app::DaemonInfo info{"sandboxd-o", "sandboxd control plane (nodes, scheduling, proxy)",
                            ":8082"};
  sbx::app::DaemonFlags flags;
  int code = 0;
  if (!sbx::app::parseDaemonFlags(info, argc, argv, flags, code)) return code;
  return sbx::app::runHttpDaemon(info, flags, nullptr);
}
