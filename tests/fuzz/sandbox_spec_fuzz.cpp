// sbxlet's request decoders (node/SandboxSpec.h, node/SandboxApi.h,
// node/SandboxState.h) on any bytes:
//   - decodeSandboxSpec with sbxlet's options and the control plane's; a
//     decoded spec validates, has positive resources, and written back with
//     writeSandboxSpecJson (camelCase, and snake_case without host ports for
//     the control plane's) decodes to the same spec;
//   - decodeStatusesRequest, which never returns more ids than allowed;
//   - decodeStateFile: a decoded state file encodes to a document that
//     decodes and encodes to itself.

#include <string>
#include <string_view>

#include "FuzzTarget.h"
#include "json/JsonReader.h"
#include "json/JsonWriter.h"
#include "node/SandboxApi.h"
#include "node/SandboxSpec.h"
#include "node/SandboxState.h"

namespace {

using sbx::json::JsonReader;
using sbx::json::JsonWriter;
using sbx::node::SandboxSpec;
using sbx::node::SandboxSpecOptions;
using sbx::node::SpecJsonOptions;

void checkSpec(std::string_view input, const SandboxSpecOptions& options,
               const SpecJsonOptions& writeOptions) {
  static JsonReader reader;
  static JsonReader second;
  auto root = reader.parse(input);
  if (!root.ok()) return;
  auto spec = sbx::node::decodeSandboxSpec(*root, reader, options);
  if (!spec.ok()) {
    SBX_FUZZ_CHECK(!spec.message().empty());
    return;
  }
  SBX_FUZZ_CHECK(sbx::node::validateSandboxSpec(*spec, options).ok());
  SBX_FUZZ_CHECK(!spec->containers.empty());
  for (const auto& c : spec->containers) {
    SBX_FUZZ_CHECK(c.resource.cpuMillis > 0);
    SBX_FUZZ_CHECK(c.resource.memoryBytes > 0);
    SBX_FUZZ_CHECK(c.resource.ephemeralStorageBytes >= 0);
  }
  SBX_FUZZ_CHECK(spec->totalCpuMillis() > 0);
  SBX_FUZZ_CHECK(spec->totalMemoryBytes() > 0);
  if (!options.readId) SBX_FUZZ_CHECK(spec->id.empty());

  JsonWriter w;
  sbx::node::writeSandboxSpecJson(w, *spec, writeOptions);
  auto back = second.parse(w.str());
  SBX_FUZZ_CHECK(back.ok());
  auto again = sbx::node::decodeSandboxSpec(*back, second, options);
  SBX_FUZZ_CHECK(again.ok());
  SBX_FUZZ_CHECK(*again == *spec);
}

void checkStatuses(std::string_view input, size_t maxIds) {
  auto ids = sbx::node::decodeStatusesRequest(input, maxIds);
  if (!ids.ok()) {
    SBX_FUZZ_CHECK(!ids.message().empty());
    return;
  }
  SBX_FUZZ_CHECK(ids->size() <= maxIds);
}

void checkStateFile(std::string_view input) {
  auto state = sbx::node::decodeStateFile(input);
  if (!state.ok()) {
    SBX_FUZZ_CHECK(!state.message().empty());
    return;
  }
  SBX_FUZZ_CHECK(state->containers.size() == state->spec.containers.size());
  const std::string encoded = sbx::node::encodeStateFile(*state);
  auto again = sbx::node::decodeStateFile(encoded);
  SBX_FUZZ_CHECK(again.ok());
  SBX_FUZZ_CHECK(sbx::node::encodeStateFile(*again) == encoded);
  SBX_FUZZ_CHECK(again->spec == state->spec);
}

}  // namespace

SBX_FUZZ_TARGET(sandbox_spec) {
  // sbxlet: POST /v1/sandboxes.
  checkSpec(input, SandboxSpecOptions{}, SpecJsonOptions{});
  // The control plane: the "spec" of POST /api/v1/sandboxes, as nodeCreateBody
  // and the store spell it.
  SandboxSpecOptions orch;
  orch.readId = false;
  orch.allowUnassignedHostPorts = true;
  SpecJsonOptions snake;
  snake.snakeCase = true;
  snake.withId = false;
  snake.omitUnassignedHostPorts = true;
  checkSpec(input, orch, snake);

  checkStatuses(input, 200);
  checkStatuses(input, 2);
  checkStateFile(input);
}
