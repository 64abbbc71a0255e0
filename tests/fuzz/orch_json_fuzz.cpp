// The control plane's JSON decoders. The first input byte picks one, the
// rest is the text:
//   0 decodeNodeRegistration (POST /api/v1/nodes)
//   1 decodeSandboxCreateRequest (POST /api/v1/sandboxes)
//   2 decodeNodeResources (a node's status "resources", here the root)
//   3 decodeNodeDoc, 4 decodeSandboxDoc (store documents)
//   5 parseConfiguredNodes (the `nodes` configuration key)
// Decoded values satisfy the checks their decoder promises, and a decoded
// store document encodes to one that decodes and encodes to itself.

#include <string>
#include <string_view>

#include "FuzzTarget.h"
#include "json/JsonReader.h"
#include "node/SandboxSpec.h"
#include "orch/NodeAddress.h"
#include "orch/OrchApi.h"
#include "orch/OrchConfig.h"
#include "orch/OrchModel.h"

namespace {

using namespace sbx;

void nodeRegistration(std::string_view text) {
  auto r = orch::decodeNodeRegistration(text);
  if (!r.ok()) {
    SBX_FUZZ_CHECK(!r.message().empty());
    return;
  }
  SBX_FUZZ_CHECK(orch::validateNodeId(r->id).ok());
  SBX_FUZZ_CHECK(orch::validateNodeAddress(r->ip).ok());
  SBX_FUZZ_CHECK(r->port >= 1 && r->port <= 65535);
  SBX_FUZZ_CHECK(r->external.size() <= 253);
}

void sandboxCreate(std::string_view text) {
  auto r = orch::decodeSandboxCreateRequest(text);
  if (!r.ok()) {
    SBX_FUZZ_CHECK(!r.message().empty());
    return;
  }
  SBX_FUZZ_CHECK(r->id.empty() || node::validateSandboxId(r->id).ok());
  SBX_FUZZ_CHECK(r->spec.id.empty());
  SBX_FUZZ_CHECK(r->ttlSeconds >= 0);
  for (const auto& p : r->spec.ports) SBX_FUZZ_CHECK(p.hostPort == 0);
  node::SandboxSpecOptions opts;
  opts.readId = false;
  opts.allowUnassignedHostPorts = true;
  SBX_FUZZ_CHECK(node::validateSandboxSpec(r->spec, opts).ok());

  // What the control plane stores and sends on: valid store documents.
  orch::OrchSandbox s;
  s.id = r->id.empty() ? "generated-id" : r->id;
  s.spec = r->spec;
  s.spec.id = s.id;
  s.ttlSeconds = r->ttlSeconds;
  const std::string doc = orch::encodeSandboxDoc(s);
  auto back = orch::decodeSandboxDoc(doc);
  SBX_FUZZ_CHECK(back.ok());
  SBX_FUZZ_CHECK(back->spec == s.spec);
  SBX_FUZZ_CHECK(back->ttlSeconds == s.ttlSeconds);
  SBX_FUZZ_CHECK(!orch::nodeCreateBody(s).empty());
}

void nodeResources(std::string_view text) {
  static json::JsonReader reader;
  auto root = reader.parse(text);
  if (!root.ok()) return;
  auto r = orch::decodeNodeResources(*root, reader);
  if (!r.ok()) {
    SBX_FUZZ_CHECK(!r.message().empty());
    return;
  }
  SBX_FUZZ_CHECK(r->known);
  SBX_FUZZ_CHECK(reader.ok());
}

void nodeDoc(std::string_view text) {
  auto n = orch::decodeNodeDoc(text);
  if (!n.ok()) {
    SBX_FUZZ_CHECK(!n.message().empty());
    return;
  }
  SBX_FUZZ_CHECK(!n->name.empty() && !n->ip.empty());
  SBX_FUZZ_CHECK(n->port >= 1 && n->port <= 65535);
  const std::string doc = orch::encodeNodeDoc(*n);
  auto again = orch::decodeNodeDoc(doc);
  SBX_FUZZ_CHECK(again.ok());
  SBX_FUZZ_CHECK(orch::encodeNodeDoc(*again) == doc);
}

void sandboxDoc(std::string_view text) {
  auto s = orch::decodeSandboxDoc(text);
  if (!s.ok()) {
    SBX_FUZZ_CHECK(!s.message().empty());
    return;
  }
  SBX_FUZZ_CHECK(node::validateSandboxId(s->id).ok());
  SBX_FUZZ_CHECK(s->spec.id == s->id);
  const std::string doc = orch::encodeSandboxDoc(*s);
  auto again = orch::decodeSandboxDoc(doc);
  SBX_FUZZ_CHECK(again.ok());
  SBX_FUZZ_CHECK(orch::encodeSandboxDoc(*again) == doc);
  SBX_FUZZ_CHECK(again->spec == s->spec);
}

void configuredNodes(std::string_view text) {
  auto nodes = orch::parseConfiguredNodes(text);
  if (!nodes.ok()) {
    SBX_FUZZ_CHECK(nodes.message().rfind("nodes", 0) == 0);
    return;
  }
  for (size_t i = 0; i < nodes->size(); ++i) {
    const orch::ConfiguredNode& n = (*nodes)[i];
    SBX_FUZZ_CHECK(orch::validateNodeId(n.id).ok());
    SBX_FUZZ_CHECK(orch::validateNodeAddress(n.ip).ok());
    SBX_FUZZ_CHECK(n.port >= 1 && n.port <= 65535);
    for (size_t j = 0; j < i; ++j) SBX_FUZZ_CHECK((*nodes)[j].id != n.id);
  }
}

}  // namespace

SBX_FUZZ_TARGET(orch_json) {
  if (input.empty()) return;
  const unsigned char which = static_cast<unsigned char>(input[0]);
  const std::string_view text = input.substr(1);
  switch (which % 6) {
    case 0:
      nodeRegistration(text);
      break;
    case 1:
      sandboxCreate(text);
      break;
    case 2:
      nodeResources(text);
      break;
    case 3:
      nodeDoc(text);
      break;
    case 4:
      sandboxDoc(text);
      break;
    case 5:
      configuredNodes(text);
      break;
  }
}
