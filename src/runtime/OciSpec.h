#pragma once
// OciSpec: the OCI runtime spec (config.json) for one container of a
// sandbox, built by the project rather than taken from containerd's Go
// defaults. Security defaults follow containerd's: its default capability
// set, masked and read-only /proc and /sys paths, no-new-privileges, a
// private /dev, and cgroup limits from the request.

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace sbx::runtime {

struct OciSpecInput {
  std::vector<std::string> args;  // full command line (already resolved)
  std::vector<std::string> env;   // "K=V", already merged (image ⊕ request)
  std::string cwd = "/";
  std::string hostname;
  uint32_t uid = 0;
  uint32_t gid = 0;
  // Joined, not created: the sandbox's network namespace ("" = a new one).
  std::string netnsPath;
  // cgroup limits. cpuMillis → quota over a 100 ms period.
  int64_t cpuMillis = 0;
  int64_t memoryBytes = 0;
  int64_t pidsLimit = 0;
  std::string cgroupsPath;  // e.g. "/sandboxd/<sandbox>/<container>"
  // /tmp as a tmpfs of this size (0: no /tmp mount of our own).
  int64_t tmpBytes = 0;
  std::map<std::string, std::string> annotations;
  // Extra bind mounts (e.g. /etc/hosts, resolv.conf).
  struct Bind {
    std::string source;
    std::string destination;
    bool readOnly = true;
  };
  std::vector<Bind> binds;
};

// The spec as JSON (ociVersion 1.0.2-dev, root "rootfs" relative to the
// bundle as containerd lays it out).
std::string buildOciSpec(const OciSpecInput& in);

// containerd's default capabilities (pkg/oci defaultUnixCaps).
const std::vector<std::string>& defaultCapabilities();

}  // namespace sbx::runtime
