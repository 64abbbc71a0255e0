#pragma once
// SandboxState: what sbxlet knows about one sandbox — its request (spec) and
// everything that happened to it — and its two JSON forms: the API object
// (SPEC §1 "Sandbox object") and the state file (the API object plus the
// request and the internal fields that recovery after a crash needs).

#include <cstdint>
#include <optional>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "base/Result.h"
#include "node/SandboxSpec.h"

namespace sbx::json {
class JsonWriter;
}

namespace sbx::node {

enum class SandboxPhase { Creating, Running, Error, Deleting, Deleted };
enum class ContainerPhase { Creating, Running, Exited, Error };

const char* phaseName(SandboxPhase p);    // "creating", "running", "error", "deleting", "deleted"
const char* phaseName(ContainerPhase p);  // "creating", "running", "exited", "error"
std::optional<SandboxPhase> parseSandboxPhase(std::string_view s);
std::optional<ContainerPhase> parseContainerPhase(std::string_view s);

struct ContainerStatus {
  std::string name;
  std::string id;  // containerd container id: "<sandbox>-<name>" (see containerId())
  ContainerPhase phase = ContainerPhase::Creating;
  std::string image;  // normalized once pulled ("docker.io/library/alpine:3.20")
  uint32_t taskPid = 0;
  std::string taskStatus;  // containerd's: "running", "stopped", "not_found", ...
  std::optional<int64_t> exitCode;
  bool oomKilled = false;
  std::string error;
};

struct SandboxState {
  SandboxSpec spec;  // spec.id is the sandbox id
  SandboxPhase phase = SandboxPhase::Creating;
  std::string namespaceName = "k8s.io";
  std::string ip;
  std::string subnetCidr;
  std::string bridgeName;
  std::string cniConfPath;
  std::string runtime = "runsc";
  std::string error;
  std::vector<ContainerStatus> containers;  // in spec order
  std::string createdAt;  // RFC 3339 UTC
  std::string updatedAt;
  // Internal (state file only).
  std::string netnsPath;
  // The CNI bridge plugin's ADD result (kept for DEL and portmap), the
  // host side of the sandbox's veth, and whether its host ports are
  // published (portmap ADD done; undone by portmap DEL).
  std::string cniResult;
  std::string hostVeth;
  bool portsPublished = false;
  // The readiness probe passed (or there is none) at least once: later
  // probe failures are "after ready".
  bool ready = false;
  uint64_t version = 0;  // bumped on every change

  const std::string& id() const { return spec.id; }
  ContainerStatus* container(std::string_view name);
};

// "<sandbox>-<name>". runsc matches container ids by prefix, so a sandbox's
// ids must never be a prefix of another's: see Provisioner for how ids of
// different sandboxes are kept apart.
std::string containerId(const std::string& sandboxId, const std::string& containerName);

// Initial state of a freshly admitted sandbox (phase creating).
SandboxState newSandboxState(SandboxSpec spec, const std::string& now);

// The API object (SPEC §1): writes one JSON object.
void writeSandboxJson(json::JsonWriter& w, const SandboxState& s);
// How writeSandboxSpecJson spells the spec.
struct SpecJsonOptions {
  bool snakeCase = false;                // "host_port" rather than "hostPort"
  bool withId = true;                    // "id" first
  bool omitUnassignedHostPorts = false;  // no host port key where it is 0
  // Fields of the caller's own, written right after "egress".
  std::function<void(json::JsonWriter&)> extraFields;
};
// The request as POST /v1/sandboxes takes it (camelCase by default; either
// way decodable again with decodeSandboxSpec).
void writeSandboxSpecJson(json::JsonWriter& w, const SandboxSpec& spec,
                          const SpecJsonOptions& options = {});

// State file: {"format":1,"sandbox":<API object>,"spec":<request>,
// "internal":{...}}.
std::string encodeStateFile(const SandboxState& s);
Result<SandboxState> decodeStateFile(std::string_view text);

// RFC 3339 UTC with seconds: "2026-11-28T17:00:00Z".
std::string rfc3339Now();

}  // namespace sbx::node
