#include "runtime/OciSpec.h"

#include <algorithm>

#include "json/JsonWriter.h"

namespace sbx::runtime {

const std::vector<std::string>& defaultCapabilities() {
  static const std::vector<std::string> caps = {
      "CAP_CHOWN",        "CAP_DAC_OVERRIDE", "CAP_FSETID",   "CAP_FOWNER",
      "CAP_MKNOD",        "CAP_NET_RAW",      "CAP_SETGID",   "CAP_SETUID",
      "CAP_SETFCAP",      "CAP_SETPCAP",      "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT",
      "CAP_KILL",         "CAP_AUDIT_WRITE",
  };
  return caps;
}

namespace {

using json::JsonWriter;

void stringArray(JsonWriter& w, const std::vector<std::string>& v) {
  w.beginArray();
  for (const auto& s : v) w.value(s);
  w.endArray();
}

void mount(JsonWriter& w, const char* dest, const char* type, const std::string& source,
           const std::vector<std::string>& options) {
  w.beginObject().kv("destination", dest).kv("type", type).kv("source", source);
  w.key("options");
  stringArray(w, options);
  w.endObject();
}

}  // namespace

std::string buildOciSpec(const OciSpecInput& in) {
  JsonWriter w(4096);
  w.beginObject();
  w.kv("ociVersion", "1.0.2-dev");

  w.key("process").beginObject();
  w.kv("terminal", false);
  w.key("user").beginObject().kv("uid", in.uid).kv("gid", in.gid).endObject();
  w.key("args");
  stringArray(w, in.args);
  w.key("env");
  stringArray(w, in.env);
  w.kv("cwd", in.cwd.empty() ? std::string("/") : in.cwd);
  w.key("capabilities").beginObject();
  for (const char* set : {"bounding", "effective", "permitted"}) {
    w.key(set);
    stringArray(w, defaultCapabilities());
  }
  w.endObject();
  w.key("rlimits").beginArray();
  // containerd's default: a higher limit than the shim's own hard limit
  // fails container start with EPERM.
  w.beginObject().kv("type", "RLIMIT_NOFILE").kv("hard", 1024).kv("soft", 1024).endObject();
  w.endArray();
  w.kv("noNewPrivileges", true);
  w.endObject();  // process

  w.key("root").beginObject().kv("path", "rootfs").kv("readonly", false).endObject();
  w.kv("hostname", in.hostname);

  w.key("mounts").beginArray();
  mount(w, "/proc", "proc", "proc", {"nosuid", "noexec", "nodev"});
  mount(w, "/dev", "tmpfs", "tmpfs", {"nosuid", "strictatime", "mode=755", "size=65536k"});
  mount(w, "/dev/pts", "devpts", "devpts",
        {"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"});
  mount(w, "/dev/shm", "tmpfs", "shm", {"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"});
  mount(w, "/dev/mqueue", "mqueue", "mqueue", {"nosuid", "noexec", "nodev"});
  mount(w, "/sys", "sysfs", "sysfs", {"nosuid", "noexec", "nodev", "ro"});
  mount(w, "/sys/fs/cgroup", "cgroup", "cgroup", {"nosuid", "noexec", "nodev", "relatime", "ro"});
  mount(w, "/run", "tmpfs", "tmpfs", {"nosuid", "strictatime", "mode=755", "size=65536k"});
  if (in.tmpBytes > 0) {
    mount(w, "/tmp", "tmpfs", "tmpfs",
          {"nosuid", "nodev", "mode=1777", "size=" + std::to_string(in.tmpBytes)});
  }
  for (const auto& b : in.binds) {
    std::vector<std::string> opts = {"rbind", "rprivate"};
    opts.push_back(b.readOnly ? "ro" : "rw");
    mount(w, b.destination.c_str(), "bind", b.source, opts);
  }
  w.endArray();

  if (!in.annotations.empty()) {
    w.key("annotations").beginObject();
    for (const auto& [k, v] : in.annotations) w.kv(k, v);
    w.endObject();
  }

  w.key("linux").beginObject();
  w.key("resources").beginObject();
  w.key("devices").beginArray();
  w.beginObject().kv("allow", false).kv("access", "rwm").endObject();
  w.endArray();
  if (in.memoryBytes > 0) {
    w.key("memory").beginObject().kv("limit", in.memoryBytes).endObject();
  }
  if (in.cpuMillis > 0) {
    constexpr int64_t kPeriod = 100000;  // µs
    // The kernel refuses a CFS quota under 1 ms (EINVAL): below 10m of CPU
    // the quota is 1 ms, as the kubelet does (MinQuotaPeriod).
    constexpr int64_t kMinQuota = 1000;  // µs
    w.key("cpu").beginObject()
        .kv("quota", std::max(kMinQuota, in.cpuMillis * kPeriod / 1000))
        .kv("period", kPeriod)
        .kv("shares", in.cpuMillis * 1024 / 1000 < 2 ? 2 : in.cpuMillis * 1024 / 1000)
        .endObject();
  }
  if (in.pidsLimit > 0) w.key("pids").beginObject().kv("limit", in.pidsLimit).endObject();
  w.endObject();  // resources
  if (!in.cgroupsPath.empty()) w.kv("cgroupsPath", in.cgroupsPath);
  w.key("namespaces").beginArray();
  for (const char* ns : {"pid", "ipc", "uts", "mount"}) w.beginObject().kv("type", ns).endObject();
  w.beginObject().kv("type", "network");
  if (!in.netnsPath.empty()) w.kv("path", in.netnsPath);
  w.endObject();
  w.endArray();
  w.key("maskedPaths");
  stringArray(w, {"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                  "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware",
                  "/proc/scsi"});
  w.key("readonlyPaths");
  stringArray(w, {"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"});
  w.endObject();  // linux

  w.endObject();
  return w.take();
}

}  // namespace sbx::runtime
