// Docker image references (node/SandboxSpec.h): parsing never fails in any
// other way than an error, the normalized form of a valid reference is valid
// and normalizes to itself, and normalizeImageReference agrees with both.

#include "FuzzTarget.h"
#include "node/SandboxSpec.h"

SBX_FUZZ_TARGET(image_ref) {
  using sbx::node::normalizeImageReference;
  using sbx::node::parseImageReference;

  auto ref = parseImageReference(input);
  if (!ref.ok()) {
    SBX_FUZZ_CHECK(ref.message().rfind("invalid image reference \"", 0) == 0);
    SBX_FUZZ_CHECK(normalizeImageReference(input) == input);
    return;
  }
  SBX_FUZZ_CHECK(!ref->registry.empty());
  SBX_FUZZ_CHECK(!ref->repository.empty());
  SBX_FUZZ_CHECK(!ref->tag.empty() || !ref->digest.empty());

  const std::string normalized = ref->normalized();
  SBX_FUZZ_CHECK(normalizeImageReference(input) == normalized);
  auto again = parseImageReference(normalized);
  SBX_FUZZ_CHECK(again.ok());
  SBX_FUZZ_CHECK(*again == *ref);
  SBX_FUZZ_CHECK(again->normalized() == normalized);
}
