#pragma once
// The create request of a sandbox (SPEC.md §1 "Create request"): typed
// structs, decoding from JSON and validation with the contract's messages.
//
// One decoder serves both daemons: sbxlet decodes the body root of
// POST /v1/sandboxes, the control plane decodes the "spec" object of
// POST /api/v1/sandboxes (same content in snake_case, same messages). Every
// multi-word field is accepted in camelCase and snake_case; unknown fields
// are ignored; JSON null means absent.
//
// Everything here is a pure function of its arguments: thread-safe.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/Result.h"
#include "json/JsonReader.h"

namespace sbx::node {

// Limits of one create request.
inline constexpr size_t kMaxSandboxIdLength = 128;
inline constexpr size_t kMaxContainerNameLength = 64;
inline constexpr size_t kMaxContainers = 16;
inline constexpr size_t kMaxPorts = 64;
inline constexpr size_t kMaxArgs = 1024;
inline constexpr size_t kMaxEnv = 1024;
inline constexpr size_t kMaxArgBytes = 128 * 1024;  // one args/env string
inline constexpr size_t kMaxWorkDirBytes = 4096;     // PATH_MAX
inline constexpr size_t kMaxImageReferenceLength = 512;
inline constexpr int kMaxProbeSeconds = 3600;  // also bounds the thresholds

struct PortMapping {
  int hostPort = 0;  // 0 only with SandboxSpecOptions::allowUnassignedHostPorts
  int containerPort = 0;
  std::string protocol = "tcp";  // "tcp" | "udp"

  bool operator==(const PortMapping&) const = default;
};

struct ReadinessProbe {
  std::string protocol;  // "tcp" | "http"
  int port = 0;
  std::string path;  // http only; starts with '/'
  int initialDelaySeconds = 0;
  int periodSeconds = 0;
  int timeoutSeconds = 0;
  int successThreshold = 0;
  int failureThreshold = 0;

  bool operator==(const ReadinessProbe&) const = default;
};

struct ContainerResources {
  // As the client sent them (a JSON number arrives as its shortest decimal
  // text: 0.5 → "0.5").
  std::string cpu;
  std::string memory;
  std::string ephemeralStorage;  // "" = not given
  // Parsed by decodeSandboxSpec.
  int64_t cpuMillis = 0;
  int64_t memoryBytes = 0;
  int64_t ephemeralStorageBytes = 0;  // 0 = not given

  bool operator==(const ContainerResources&) const = default;
};

struct ContainerSpec {
  std::string name;
  std::string image;              // as sent; see normalizeImageReference()
  std::vector<std::string> args;  // full command line; empty = image's entrypoint + cmd
  std::vector<std::string> env;   // "KEY=VALUE"
  std::string workDir;            // "" = the image's
  ContainerResources resource;

  bool operator==(const ContainerSpec&) const = default;
};

struct SandboxSpec {
  std::string id;  // "" = the caller generates one (generateSandboxId)
  bool egress = false;
  std::vector<PortMapping> ports;
  std::optional<ReadinessProbe> readinessProbe;
  std::vector<ContainerSpec> containers;

  // Sums of the containers' requests (saturating at INT64_MAX).
  int64_t totalCpuMillis() const;
  int64_t totalMemoryBytes() const;

  bool operator==(const SandboxSpec&) const = default;
};

struct SandboxSpecOptions {
  // sbxlet: the body root carries "id". The control plane reads its id
  // outside "spec" and sets this to false, so a stray "spec.id" is ignored.
  bool readId = true;
  // Control plane: host ports are assigned by the scheduler, so hostPort may
  // be absent or 0 (= to be assigned); a non-zero one is checked as usual.
  bool allowUnassignedHostPorts = false;
};

// Decodes and validates the create request held by the JSON object `obj`.
// Type errors are the reader's ("ports[0].hostPort: expected integer") and
// win over validation errors; the first validation error (in the order id,
// containers, ports, readinessProbe) is returned otherwise. On success the
// parsed resource fields (cpuMillis, ...) are filled in. If `reader` already
// holds an error, that error is returned.
Result<SandboxSpec> decodeSandboxSpec(const json::JsonCursor& obj, json::JsonReader& reader,
                                      const SandboxSpecOptions& options = {});

// Validates a spec built in code with the same rules and messages as
// decodeSandboxSpec. Without JSON presence information a zero probe field
// reads as a value ("readinessProbe.periodSeconds must be >= 1") rather than
// as missing. Does not fill the parsed resource fields.
Status validateSandboxSpec(const SandboxSpec& spec, const SandboxSpecOptions& options = {});

// ^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$, else `invalid sandbox id "<id>": ...`.
Status validateSandboxId(std::string_view id);
// ^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$, else `invalid container name "<n>": ...`.
Status validateContainerName(std::string_view name);

// "sbx-YYYYMMDD-HHMMSS-xxxxxx" (UTC; the suffix is `uniqueSuffix` modulo
// 36^6 in six lowercase base-36 digits). Always a valid sandbox id.
std::string generateSandboxId(std::chrono::system_clock::time_point now, uint64_t uniqueSuffix);

// A Docker image reference split into its parts, normalised the way Docker
// and containerd do: registry "docker.io" when none is named,
// "library/" for single-component Docker Hub names, tag "latest" when
// neither a tag nor a digest is given.
struct ImageReference {
  std::string registry;    // "docker.io", "ghcr.io", "localhost:5000"
  std::string repository;  // "library/alpine"
  std::string tag;         // "3.20"; "" when only a digest is given
  std::string digest;      // "sha256:<64 hex>" or ""

  // registry/repository[:tag][@digest]
  std::string normalized() const;

  bool operator==(const ImageReference&) const = default;
};

// Errors: `invalid image reference "<ref>": <why>`.
Result<ImageReference> parseImageReference(std::string_view ref);
// parseImageReference(ref)->normalized(), or `ref` unchanged when invalid:
// "alpine:3.20" → "docker.io/library/alpine:3.20", "alpine" →
// "docker.io/library/alpine:latest", "ghcr.io/a/b:2" unchanged.
std::string normalizeImageReference(std::string_view ref);

}  // namespace sbx::node
