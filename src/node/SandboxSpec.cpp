#include "node/SandboxSpec.h"

#include <array>
#include <charconv>
#include <cstdio>
#include <initializer_list>
#include <limits>
#include <system_error>
#include <utility>

#include "base/Quantity.h"
#include "runtime/RegistryClient.h"

namespace sbx::node {

namespace {

using json::JsonCursor;
using json::JsonKind;
using json::JsonReader;

constexpr std::string_view kNameRuleTail =
    " characters of letters, digits, '_', '.', '-', starting with a letter or digit";
// User text quoted in messages is cut to this many bytes (the HTTP layer
// JSON-escapes the whole message; we escape nothing).
constexpr size_t kQuoteBytes = 64;
constexpr size_t kMaxProbePathBytes = 2048;
constexpr size_t kMaxRepositoryNameLength = 255;  // Docker's limit on registry/repository
constexpr size_t kMaxTagLength = 128;

std::string concat(std::initializer_list<std::string_view> parts) {
  size_t n = 0;
  for (std::string_view p : parts) n += p.size();
  std::string out;
  out.reserve(n);
  for (std::string_view p : parts) out.append(p);
  return out;
}

// At most `max` bytes of `s`, never splitting a UTF-8 sequence (the decoded
// JSON strings are valid UTF-8; a cut lead byte would make the message not).
std::string_view clip(std::string_view s, size_t max = kQuoteBytes) {
  if (s.size() <= max) return s;
  size_t n = max;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  return s.substr(0, n);
}

bool isDigit(char c) { return c >= '0' && c <= '9'; }
bool isLower(char c) { return c >= 'a' && c <= 'z'; }
bool isUpper(char c) { return c >= 'A' && c <= 'Z'; }
bool isAlnum(char c) { return isDigit(c) || isLower(c) || isUpper(c); }
bool isLowerAlnum(char c) { return isDigit(c) || isLower(c); }
bool isHex(char c) { return isDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
bool isLowerHex(char c) { return isDigit(c) || (c >= 'a' && c <= 'f'); }

// ^[A-Za-z0-9][A-Za-z0-9_.-]{0,maxLen-1}$
bool isValidName(std::string_view s, size_t maxLen) {
  if (s.empty() || s.size() > maxLen || !isAlnum(s[0])) return false;
  for (char c : s) {
    if (!isAlnum(c) && c != '_' && c != '.' && c != '-') return false;
  }
  return true;
}

Status invalidName(std::string_view what, std::string_view value, size_t maxLen) {
  return makeError(concat({"invalid ", what, " \"", clip(value), "\": must be 1-",
                           std::to_string(maxLen), kNameRuleTail}));
}

int64_t saturatingAdd(int64_t a, int64_t b) {
  int64_t sum = 0;
  if (__builtin_add_overflow(a, b, &sum)) return std::numeric_limits<int64_t>::max();
  return sum;
}

// ---------------------------------------------------------------------------
// Readiness probe fields

// The integer fields of a probe other than port, in the order they are
// validated (and named in messages, camelCase).
struct ProbeIntField {
  std::string_view camel;
  std::string_view snake;
  int ReadinessProbe::*member;
};
constexpr std::array<ProbeIntField, 5> kProbeIntFields = {{
    {"initialDelaySeconds", "initial_delay_seconds", &ReadinessProbe::initialDelaySeconds},
    {"periodSeconds", "period_seconds", &ReadinessProbe::periodSeconds},
    {"timeoutSeconds", "timeout_seconds", &ReadinessProbe::timeoutSeconds},
    {"successThreshold", "success_threshold", &ReadinessProbe::successThreshold},
    {"failureThreshold", "failure_threshold", &ReadinessProbe::failureThreshold},
}};

// Which of the probe's integer fields the JSON carried: a struct built in
// code cannot tell a missing field from 0, a decoded one can.
struct ProbePresence {
  bool port = true;
  std::array<bool, kProbeIntFields.size()> ints = {true, true, true, true, true};
};

Status validateProbe(const ReadinessProbe& probe, const ProbePresence& presence) {
  auto required = [](std::string_view field) {
    return makeError(concat({"readinessProbe.", field, " is required"}));
  };
  if (probe.protocol.empty()) return required("protocol");
  if (probe.protocol != "tcp" && probe.protocol != "http") {
    return makeError("readinessProbe.protocol must be tcp or http");
  }
  if (!presence.port) return required("port");
  if (probe.port < 1 || probe.port > 65535) {
    return makeError("readinessProbe.port must be between 1 and 65535");
  }
  if (probe.protocol == "http") {
    if (probe.path.empty() || probe.path[0] != '/') {
      return makeError("readinessProbe.path is required for http probes and must start with /");
    }
    // The path goes verbatim into the probe's request line.
    if (probe.path.size() > kMaxProbePathBytes) {
      return makeError("readinessProbe.path too long (max " + std::to_string(kMaxProbePathBytes) +
                       " bytes)");
    }
    for (char c : probe.path) {
      const auto u = static_cast<unsigned char>(c);
      if (u <= 0x20 || u == 0x7F) {
        return makeError("readinessProbe.path must not contain spaces or control characters");
      }
    }
  }
  for (size_t i = 0; i < kProbeIntFields.size(); ++i) {
    const ProbeIntField& f = kProbeIntFields[i];
    if (!presence.ints[i]) return required(f.camel);
    const int v = probe.*f.member;
    if (v < 1) return makeError(concat({"readinessProbe.", f.camel, " must be >= 1"}));
    if (v > kMaxProbeSeconds) {
      return makeError(
          concat({"readinessProbe.", f.camel, " must be <= ", std::to_string(kMaxProbeSeconds)}));
    }
  }
  return {};
}

// ---------------------------------------------------------------------------
// Containers

struct ParsedResources {
  int64_t cpuMillis = 0;
  int64_t memoryBytes = 0;
  int64_t ephemeralStorageBytes = 0;
};

// One args/env list: count, size and NUL bytes (execve cannot carry them).
Status validateStrings(std::string_view container, std::string_view field,
                       std::string_view tooManyWhat, size_t maxItems,
                       const std::vector<std::string>& items) {
  if (items.size() > maxItems) {
    return makeError(concat({"container ", container, ": too many ", tooManyWhat, " (max ",
                             std::to_string(maxItems), ")"}));
  }
  for (size_t i = 0; i < items.size(); ++i) {
    const std::string& s = items[i];
    if (s.size() > kMaxArgBytes) {
      return makeError(concat({"container ", container, ": ", field, "[", std::to_string(i),
                               "] too long (max ", std::to_string(kMaxArgBytes), " bytes)"}));
    }
    if (s.find('\0') != std::string::npos) {
      return makeError(concat({"container ", container, ": ", field, "[", std::to_string(i),
                               "] must not contain NUL bytes"}));
    }
  }
  return {};
}

Status validateContainer(const ContainerSpec& c, ParsedResources& parsed) {
  const std::string_view name = c.name;  // already validated
  auto fail = [&](std::string_view what) {
    return makeError(concat({"container ", name, ": ", what}));
  };

  if (c.image.empty()) return fail("image is required");
  if (c.image.size() > kMaxImageReferenceLength) {
    return fail("image reference too long (max " + std::to_string(kMaxImageReferenceLength) + ")");
  }
  if (auto ref = parseImageReference(c.image); !ref) return fail(ref.message());

  if (Status st = validateStrings(name, "args", "args", kMaxArgs, c.args); !st) return st;
  // args[0] is the program (or the first argument to the image's
  // entrypoint): an empty one only fails later, at start.
  if (!c.args.empty() && c.args[0].empty()) return fail("args[0] must not be empty");
  if (Status st = validateStrings(name, "env", "env entries", kMaxEnv, c.env); !st) return st;
  for (size_t i = 0; i < c.env.size(); ++i) {
    const size_t eq = c.env[i].find('=');
    if (eq == std::string::npos || eq == 0) {
      return fail("env[" + std::to_string(i) + "] must be KEY=VALUE");
    }
  }
  if (!c.workDir.empty()) {
    // OCI runtimes require an absolute cwd; catch it here rather than at start.
    if (c.workDir[0] != '/') return fail("workDir must be an absolute path");
    // PATH_MAX: longer is refused by the runtime only after the shim started.
    if (c.workDir.size() > kMaxWorkDirBytes) {
      return fail("workDir too long (max " + std::to_string(kMaxWorkDirBytes) + " bytes)");
    }
    if (c.workDir.find('\0') != std::string::npos)
      return fail("workDir must not contain NUL bytes");
  }

  const ContainerResources& r = c.resource;
  if (r.cpu.empty()) return fail("cpu is required");
  auto cpu = parseCpuMillis(r.cpu);
  if (!cpu) return fail(cpu.message());
  if (r.memory.empty()) return fail("memory is required");
  auto memory = parseMemoryBytes(r.memory);
  if (!memory) return fail(memory.message());
  int64_t ephemeral = 0;
  if (!r.ephemeralStorage.empty()) {
    auto eph = parseMemoryBytes(r.ephemeralStorage);
    if (!eph) return fail(eph.message());
    ephemeral = *eph;
  }
  parsed = ParsedResources{*cpu, *memory, ephemeral};
  return {};
}

// ---------------------------------------------------------------------------
// Ports

Status validatePorts(const std::vector<PortMapping>& ports, const SandboxSpecOptions& options) {
  if (ports.size() > kMaxPorts) {
    return makeError("too many ports (max " + std::to_string(kMaxPorts) + ")");
  }
  for (size_t i = 0; i < ports.size(); ++i) {
    const PortMapping& p = ports[i];
    const bool unassigned = options.allowUnassignedHostPorts && p.hostPort == 0;
    if (!unassigned && p.hostPort >= 1 && p.hostPort < 1024) {
      return makeError("privileged host ports are not allowed: " + std::to_string(p.hostPort));
    }
    if ((!unassigned && (p.hostPort < 1 || p.hostPort > 65535)) || p.containerPort < 1 ||
        p.containerPort > 65535) {
      return makeError("invalid port mapping: " + std::to_string(p.hostPort) + ":" +
                       std::to_string(p.containerPort));
    }
    if (p.protocol != "tcp" && p.protocol != "udp") {
      return makeError(concat({"unsupported protocol: ", clip(p.protocol)}));
    }
    if (unassigned) continue;
    for (size_t j = 0; j < i; ++j) {
      if (ports[j].hostPort == p.hostPort && ports[j].protocol == p.protocol) {
        return makeError(
            concat({"duplicate host port: ", std::to_string(p.hostPort), "/", p.protocol}));
      }
    }
  }
  return {};
}

// The whole validation; `parsed` (one per container) receives the parsed
// quantities when non-null.
Status validateSpec(const SandboxSpec& spec, const SandboxSpecOptions& options,
                    const ProbePresence& presence, std::vector<ParsedResources>* parsed) {
  if (!spec.id.empty()) {
    if (Status st = validateSandboxId(spec.id); !st) return st;
  }
  if (spec.containers.empty()) return makeError("at least one container is required");
  if (spec.containers.size() > kMaxContainers) {
    return makeError("too many containers (max " + std::to_string(kMaxContainers) + ")");
  }
  if (parsed != nullptr) parsed->assign(spec.containers.size(), ParsedResources{});
  for (size_t i = 0; i < spec.containers.size(); ++i) {
    const ContainerSpec& c = spec.containers[i];
    if (Status st = validateContainerName(c.name); !st) return st;
    for (size_t j = 0; j < i; ++j) {
      if (spec.containers[j].name == c.name) {
        return makeError("duplicate container name: " + c.name);
      }
    }
    ParsedResources local;
    if (Status st = validateContainer(c, parsed != nullptr ? (*parsed)[i] : local); !st) {
      return st;
    }
  }
  if (Status st = validatePorts(spec.ports, options); !st) return st;
  if (spec.readinessProbe) {
    if (Status st = validateProbe(*spec.readinessProbe, presence); !st) return st;
  }
  return {};
}

// ---------------------------------------------------------------------------
// Decoding helpers

// An integer that must fit an int. Out of range: "<path>: integer out of
// range" (ports print their value in messages, so clamping would mislead).
bool readInt(const JsonCursor& c, int& out) {
  int64_t v = 0;
  if (!c.get(v)) return false;
  if (v < std::numeric_limits<int>::min() || v > std::numeric_limits<int>::max()) {
    c.fail("integer out of range");
    return false;
  }
  out = static_cast<int>(v);
  return true;
}

// An integer clamped to the int range (probe fields: the messages name the
// bound, not the value, so clamping keeps them exact).
bool readClampedInt(const JsonCursor& c, int& out) {
  int64_t v = 0;
  if (!c.get(v)) return false;
  if (v < std::numeric_limits<int>::min()) v = std::numeric_limits<int>::min();
  if (v > std::numeric_limits<int>::max()) v = std::numeric_limits<int>::max();
  out = static_cast<int>(v);
  return true;
}

// A quantity sent as a string ("250m") or a JSON number (0.5). The DOM keeps
// no number text, so numbers become their shortest round-trip decimal text:
// 0.5 → "0.5", 2 → "2", 1e3 → "1000".
void readQuantity(const JsonCursor& c, std::string& out) {
  switch (c.kind()) {
    case JsonKind::Absent:
    case JsonKind::Null:
      return;
    case JsonKind::String:
      c.get(out);
      return;
    case JsonKind::Integer:
    case JsonKind::Double: {
      double d = 0;
      if (!c.get(d)) return;
      if (c.kind() == JsonKind::Integer && d < 9.0e18) {  // fits int64_t: exact digits
        int64_t v = 0;
        if (c.get(v)) out = std::to_string(v);
        return;
      }
      // Fixed notation (parseCpuMillis knows no exponents); 1.8e308 has 309 digits.
      char buf[400];
      const auto res = std::to_chars(buf, buf + sizeof(buf), d, std::chars_format::fixed);
      if (res.ec != std::errc()) {
        c.fail("number out of range");
        return;
      }
      out.assign(buf, res.ptr);
      return;
    }
    default:
      c.fail("expected string or number");
      return;
  }
}

// An array of strings; null elements are type errors.
void readStrings(const JsonCursor& c, std::vector<std::string>& out) {
  const size_t n = c.size();
  if (n == 0) return;
  out.reserve(n);
  c.forEach([&](const JsonCursor& e) {
    std::string s;
    if (!e.present()) {
      e.fail("expected string");
    } else if (e.get(s)) {
      out.push_back(std::move(s));
    }
  });
}

// Array elements must be objects; a null element is an error too.
bool requireObject(const JsonCursor& c) {
  if (c.kind() == JsonKind::Object) return true;
  c.fail("expected object");
  return false;
}

void decodePort(const JsonCursor& p, PortMapping& m) {
  if (!requireObject(p)) return;
  readInt(p.field({"hostPort", "host_port"}), m.hostPort);
  readInt(p.field({"containerPort", "container_port"}), m.containerPort);
  std::string protocol;
  if (p.field({"protocol"}).get(protocol) && !protocol.empty()) m.protocol = std::move(protocol);
}

void decodeProbe(const JsonCursor& c, ReadinessProbe& probe, ProbePresence& presence) {
  c.field({"protocol"}).get(probe.protocol);
  presence.port = readClampedInt(c.field({"port"}), probe.port);
  c.field({"path"}).get(probe.path);
  for (size_t i = 0; i < kProbeIntFields.size(); ++i) {
    const ProbeIntField& f = kProbeIntFields[i];
    presence.ints[i] = readClampedInt(c.field({f.camel, f.snake}), probe.*f.member);
  }
}

void decodeContainer(const JsonCursor& c, ContainerSpec& out) {
  if (!requireObject(c)) return;
  c.field({"name"}).get(out.name);
  c.field({"image"}).get(out.image);
  readStrings(c.field({"args"}), out.args);
  readStrings(c.field({"env"}), out.env);
  c.field({"workDir", "work_dir"}).get(out.workDir);
  const JsonCursor r = c.field({"resource"});
  readQuantity(r.field({"cpu"}), out.resource.cpu);
  readQuantity(r.field({"memory"}), out.resource.memory);
  readQuantity(r.field({"ephemeralStorage", "ephemeral_storage"}), out.resource.ephemeralStorage);
}

// Base-36 digits of the id suffix.
constexpr std::string_view kBase36 = "0123456789abcdefghijklmnopqrstuvwxyz";
constexpr uint64_t kSuffixSpace = 36ULL * 36 * 36 * 36 * 36 * 36;

// ---------------------------------------------------------------------------
// Image references (Docker's grammar, github.com/distribution/reference)

// domain-component: [A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?
bool isDomainComponent(std::string_view s) {
  if (s.empty() || !isAlnum(s.front()) || !isAlnum(s.back())) return false;
  for (char c : s) {
    if (!isAlnum(c) && c != '-') return false;
  }
  return true;
}

// host[:port], host = domain-components joined by '.', or an IPv6 literal in
// brackets.
bool isValidRegistry(std::string_view s) {
  std::string_view host = s;
  if (!s.empty() && s[0] == '[') {
    const size_t close = s.find(']');
    if (close == std::string_view::npos || close < 3) return false;
    for (char c : s.substr(1, close - 1)) {
      if (!isHex(c) && c != ':') return false;
    }
    host = {};
    s.remove_prefix(close + 1);
    if (!s.empty() && s[0] != ':') return false;
  } else {
    const size_t colon = s.find(':');
    host = s.substr(0, colon);
    s = colon == std::string_view::npos ? std::string_view() : s.substr(colon);
    if (host.empty()) return false;
    while (!host.empty()) {
      const size_t dot = host.find('.');
      if (!isDomainComponent(host.substr(0, dot))) return false;
      if (dot == std::string_view::npos) break;
      host.remove_prefix(dot + 1);
      if (host.empty()) return false;  // trailing '.'
    }
  }
  if (s.empty()) return true;
  // ":port"
  s.remove_prefix(1);
  if (s.empty() || s.size() > 5) return false;
  for (char c : s) {
    if (!isDigit(c)) return false;
  }
  return true;
}

// path-component: [a-z0-9]+ (separator [a-z0-9]+)*, separator: [_.] | __ | -+
bool isPathComponent(std::string_view s) {
  size_t i = 0;
  while (true) {
    const size_t start = i;
    while (i < s.size() && isLowerAlnum(s[i])) ++i;
    if (i == start) return false;
    if (i == s.size()) return true;
    const size_t sepStart = i;
    while (i < s.size() && !isLowerAlnum(s[i])) ++i;
    const std::string_view sep = s.substr(sepStart, i - sepStart);
    const bool dashes = sep.find_first_not_of('-') == std::string_view::npos;
    if (sep != "." && sep != "_" && sep != "__" && !dashes) return false;
  }
}

// [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
bool isValidTag(std::string_view s) {
  if (s.empty() || s.size() > kMaxTagLength) return false;
  if (!isAlnum(s[0]) && s[0] != '_') return false;
  for (char c : s) {
    if (!isAlnum(c) && c != '_' && c != '.' && c != '-') return false;
  }
  return true;
}

// algorithm ":" hex; sha256 and sha512 with their exact lowercase lengths
// (what containerd resolves).
const char* digestProblem(std::string_view s) {
  const size_t colon = s.find(':');
  if (colon == std::string_view::npos || colon == 0) {
    return "invalid digest: expected algorithm:hex";
  }
  const std::string_view algorithm = s.substr(0, colon);
  const std::string_view hex = s.substr(colon + 1);
  size_t want = 0;
  if (algorithm == "sha256") {
    want = 64;
  } else if (algorithm == "sha512") {
    want = 128;
  } else {
    return "unsupported digest algorithm (sha256 or sha512)";
  }
  if (hex.size() != want) return "invalid digest: wrong length";
  for (char c : hex) {
    if (!isLowerHex(c)) return "invalid digest: expected lowercase hex";
  }
  return nullptr;
}

}  // namespace

// ---------------------------------------------------------------------------
// Public API

int64_t SandboxSpec::totalCpuMillis() const {
  int64_t sum = 0;
  for (const ContainerSpec& c : containers) sum = saturatingAdd(sum, c.resource.cpuMillis);
  return sum;
}

int64_t SandboxSpec::totalMemoryBytes() const {
  int64_t sum = 0;
  for (const ContainerSpec& c : containers) sum = saturatingAdd(sum, c.resource.memoryBytes);
  return sum;
}

Status validateSandboxId(std::string_view id) {
  if (isValidName(id, kMaxSandboxIdLength)) return {};
  return invalidName("sandbox id", id, kMaxSandboxIdLength);
}

Status validateContainerName(std::string_view name) {
  if (isValidName(name, kMaxContainerNameLength)) return {};
  return invalidName("container name", name, kMaxContainerNameLength);
}

Result<SandboxSpec> decodeSandboxSpec(const JsonCursor& obj, JsonReader& reader,
                                      const SandboxSpecOptions& options) {
  SandboxSpec spec;
  ProbePresence presence;
  if (options.readId) obj.field({"id"}).get(spec.id);
  obj.field({"egress"}).get(spec.egress);

  const JsonCursor ports = obj.field({"ports"});
  spec.ports.reserve(ports.size());
  ports.forEach([&](const JsonCursor& p) { decodePort(p, spec.ports.emplace_back()); });

  const JsonCursor probe = obj.field({"readinessProbe", "readiness_probe"});
  if (probe.present()) decodeProbe(probe, spec.readinessProbe.emplace(), presence);

  const JsonCursor containers = obj.field({"containers"});
  spec.containers.reserve(containers.size());
  containers.forEach(
      [&](const JsonCursor& c) { decodeContainer(c, spec.containers.emplace_back()); });

  // Type errors first: they say the request is not even the right shape.
  if (!reader.ok()) return makeError(reader.error());

  std::vector<ParsedResources> parsed;
  if (Status st = validateSpec(spec, options, presence, &parsed); !st) return st.error();
  for (size_t i = 0; i < spec.containers.size(); ++i) {
    ContainerResources& r = spec.containers[i].resource;
    r.cpuMillis = parsed[i].cpuMillis;
    r.memoryBytes = parsed[i].memoryBytes;
    r.ephemeralStorageBytes = parsed[i].ephemeralStorageBytes;
  }
  return spec;
}

Status validateSandboxSpec(const SandboxSpec& spec, const SandboxSpecOptions& options) {
  // A struct says nothing about presence: every probe field counts as given.
  return validateSpec(spec, options, ProbePresence{}, nullptr);
}

std::string generateSandboxId(std::chrono::system_clock::time_point now, uint64_t uniqueSuffix) {
  using namespace std::chrono;
  const auto day = floor<days>(now);
  const year_month_day ymd{day};
  const hh_mm_ss<seconds> hms{floor<seconds>(now - day)};
  char buf[64];
  std::snprintf(buf, sizeof(buf), "sbx-%04d%02u%02u-%02d%02d%02d-", static_cast<int>(ymd.year()),
                static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                static_cast<int>(hms.hours().count()), static_cast<int>(hms.minutes().count()),
                static_cast<int>(hms.seconds().count()));
  std::string id(buf);
  uint64_t v = uniqueSuffix % kSuffixSpace;
  char suffix[6];
  for (int i = 5; i >= 0; --i) {
    suffix[i] = kBase36[v % 36];
    v /= 36;
  }
  id.append(suffix, sizeof(suffix));
  return id;
}

std::string ImageReference::normalized() const {
  // One spelling of a reference in the project: the puller's.
  return runtime::ImageRef{registry, repository, tag, digest}.name();
}

Result<ImageReference> parseImageReference(std::string_view ref) {
  auto bad = [&](std::string_view why) {
    return makeError(
        concat({"invalid image reference \"", clip(ref, kMaxImageReferenceLength), "\": ", why}));
  };
  if (ref.empty()) return bad("empty reference");

  ImageReference out;
  std::string_view name = ref;
  if (const size_t at = name.find('@'); at != std::string_view::npos) {
    const std::string_view digest = name.substr(at + 1);
    if (const char* problem = digestProblem(digest)) return bad(problem);
    out.digest.assign(digest);
    name = name.substr(0, at);
  }
  // A tag is the part after the last ':' that follows the last '/' (a ':'
  // before it belongs to the registry's port).
  bool hasTag = false;
  const size_t colon = name.rfind(':');
  const size_t lastSlash = name.rfind('/');
  if (colon != std::string_view::npos &&
      (lastSlash == std::string_view::npos || colon > lastSlash)) {
    const std::string_view tag = name.substr(colon + 1);
    if (!isValidTag(tag)) {
      return bad("invalid tag (expected [A-Za-z0-9_][A-Za-z0-9_.-]{0,127})");
    }
    out.tag.assign(tag);
    hasTag = true;
    name = name.substr(0, colon);
  }
  if (name.empty()) return bad("missing repository name");
  if (name.size() > kMaxRepositoryNameLength) {
    return bad("repository name too long (max " + std::to_string(kMaxRepositoryNameLength) + ")");
  }

  // The first component names a registry when it looks like a host: it has a
  // '.' or a ':' (port), is "localhost", or has upper case (Docker's rule;
  // repository paths are lower case).
  std::string_view path = name;
  if (const size_t slash = name.find('/'); slash != std::string_view::npos) {
    const std::string_view first = name.substr(0, slash);
    bool upper = false;
    for (char c : first) upper = upper || isUpper(c);
    if (first.find_first_of(".:") != std::string_view::npos || first == "localhost" || upper) {
      if (!isValidRegistry(first)) return bad("invalid registry host");
      out.registry.assign(first);
      path = name.substr(slash + 1);
    }
  }
  if (out.registry.empty() || out.registry == "index.docker.io") out.registry = "docker.io";

  if (path.empty()) return bad("missing repository name");
  for (char c : path) {
    if (isUpper(c)) return bad("repository name must be lowercase");
  }
  for (std::string_view rest = path;;) {
    const size_t slash = rest.find('/');
    if (!isPathComponent(rest.substr(0, slash))) {
      return bad(
          "invalid repository path (components are [a-z0-9] separated by '.', '_', '__' or '-')");
    }
    if (slash == std::string_view::npos) break;
    rest.remove_prefix(slash + 1);
  }
  if (out.registry == "docker.io" && path.find('/') == std::string_view::npos) {
    out.repository = concat({"library/", path});
  } else {
    out.repository.assign(path);
  }
  // The limit holds for the name as normalized (docker.io/library/ added),
  // which is what is pulled and what a second parse sees.
  if (out.registry.size() + 1 + out.repository.size() > kMaxRepositoryNameLength) {
    return bad("repository name too long (max " + std::to_string(kMaxRepositoryNameLength) + ")");
  }
  if (!hasTag && out.digest.empty()) out.tag = "latest";
  return out;
}

std::string normalizeImageReference(std::string_view ref) {
  auto parsed = parseImageReference(ref);
  if (!parsed) return std::string(ref);
  return parsed->normalized();
}

}  // namespace sbx::node
