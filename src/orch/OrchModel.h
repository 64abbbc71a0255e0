#pragma once
// The control plane's records: nodes and sandboxes (SPEC §2), their JSON for
// the API, and their documents in the store (JSON text, decoded at start).
//
// Pure data and pure functions: thread-safe.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/Result.h"
#include "node/SandboxSpec.h"

namespace sbx::json {
class JsonWriter;
class JsonCursor;
class JsonReader;
}  // namespace sbx::json

namespace sbx::orch {

// Wall-clock milliseconds since the epoch, and their RFC 3339 UTC text
// ("2026-05-15T04:30:00Z"; "" for 0).
int64_t nowUnixMs();
std::string rfc3339(int64_t unixMs);

enum class NodeState { Unknown, Ready, NotReady };
const char* nodeStateName(NodeState s);

// What the node's sbxlet reported in GET /v1/node/status.
struct NodeResources {
  bool known = false;  // false until the first status arrived
  int64_t capacityCpuMilli = 0;
  int64_t capacityMemoryBytes = 0;
  int64_t allocatableCpuMilli = 0;
  int64_t allocatableMemoryBytes = 0;
  int64_t usedCpuMilli = 0;
  int64_t usedMemoryBytes = 0;
  int64_t availableCpuMilli = 0;
  int64_t availableMemoryBytes = 0;
  int64_t maxAllocPercent = 0;
  std::string updatedAt;
  std::string external;  // the node's own external_address, if it has one
};

// Reads the "resources" object of a node status. Missing numbers are an
// error ("resources.available_cpu_milli: missing"): a node that answers
// without them cannot be scheduled on.
Result<NodeResources> decodeNodeResources(const json::JsonCursor& c, json::JsonReader& reader);

struct OrchNode {
  std::string name;  // also "id" in the API
  std::string ip;
  int port = 8080;
  std::string source = "api";  // "api" | "config"
  std::string configExternal;  // "external" of a config node (wins over the node's own)
  NodeState state = NodeState::Unknown;
  std::string lastError;
  int successStreak = 0;
  int failureStreak = 0;
  int64_t createdAtMs = 0;
  int64_t updatedAtMs = 0;
  int64_t lastHeartbeatMs = 0;
  NodeResources resources;
  // Not stored: when the status request that brought `resources` was sent
  // (a create the node accepted before then is counted in them).
  int64_t resourcesAsOfMs = 0;

  std::string baseUrl() const;
  // The address clients reach the node's host ports at: the config's
  // "external", else what the node reports, else its ip.
  std::string external() const;
};

// The API's node object (SPEC §2 "Node object").
void writeNodeJson(json::JsonWriter& w, const OrchNode& n);
void writeNodeResourcesJson(json::JsonWriter& w, const OrchNode& n);

enum class SandboxPhase { Pending, Scheduled, Running, Failed, Expired, Deleting };
const char* sandboxPhaseName(SandboxPhase p);
std::optional<SandboxPhase> parseSandboxPhase(std::string_view s);

struct AssignedPort {
  int hostPort = 0;
  int containerPort = 0;
  std::string protocol = "tcp";
};

struct OrchSandbox {
  std::string id;
  node::SandboxSpec spec;  // hostPort 0 = to be assigned
  int64_t ttlSeconds = 0;  // 0 = none
  SandboxPhase phase = SandboxPhase::Pending;
  std::string nodeName;
  std::string external;
  std::string ip;
  std::string message;
  std::vector<AssignedPort> assignedPorts;
  int64_t expireAtMs = 0;  // 0 = never
  int64_t createdAtMs = 0;
  int64_t updatedAtMs = 0;
  // Nodes that refused this sandbox for capacity (not tried again).
  std::vector<std::string> refusedBy;
  // The phase to return to once a Deleting finishes: Expired for TTL.
  bool expired = false;
};

// The API's sandbox object (seed 001's shape: id, spec in snake_case,
// status, created_at, updated_at).
void writeSandboxJson(json::JsonWriter& w, const OrchSandbox& s);

// Store documents. decode* re-validates the spec with sbxlet's rules.
std::string encodeNodeDoc(const OrchNode& n);
Result<OrchNode> decodeNodeDoc(std::string_view doc);
std::string encodeSandboxDoc(const OrchSandbox& s);
Result<OrchSandbox> decodeSandboxDoc(std::string_view doc);

// The body of sbxlet's POST /v1/sandboxes for `s` on its node: the spec in
// camelCase with the assigned host ports filled in.
std::string nodeCreateBody(const OrchSandbox& s);

}  // namespace sbx::orch
