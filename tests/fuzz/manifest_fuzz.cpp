// What the image puller reads from registries (runtime/ImagePuller.h,
// runtime/RegistryClient.h), all on the same bytes: an image manifest, an
// image config, an index searched for a few platforms, and a
// WWW-Authenticate header. Whatever they accept is sound: sha256 digests,
// sizes >= 0, lowercase auth schemes and parameter names.

#include <string_view>

#include "FuzzTarget.h"
#include "runtime/ImagePuller.h"
#include "runtime/RegistryClient.h"

namespace {

using namespace sbx::runtime;

bool hasUpper(std::string_view s) {
  for (char c : s) {
    if (c >= 'A' && c <= 'Z') return true;
  }
  return false;
}

void checkDescriptor(const Descriptor& d) {
  SBX_FUZZ_CHECK(isSha256Digest(d.digest));
  SBX_FUZZ_CHECK(d.size >= 0);
}

}  // namespace

SBX_FUZZ_TARGET(manifest) {
  if (auto m = parseImageManifest(input); m.ok()) {
    checkDescriptor(m->config);
    for (const Descriptor& l : m->layers) checkDescriptor(l);
  } else {
    SBX_FUZZ_CHECK(!m.message().empty());
  }

  if (auto c = parseImageConfig(input); c.ok()) {
    for (const auto& id : c->diffIds) SBX_FUZZ_CHECK(isSha256Digest(id));
    SBX_FUZZ_CHECK(chainIds(c->diffIds).size() == c->diffIds.size());
  } else {
    SBX_FUZZ_CHECK(!c.message().empty());
  }

  static const Platform kPlatforms[] = {
      {"linux", "amd64", ""}, {"linux", "arm64", "v8"}, {"linux", "arm", "v7"},
      {"linux", "arm", "v6"}, {"linux", "arm64", ""},   {"windows", "amd64", ""},
  };
  for (const Platform& p : kPlatforms) {
    auto d = selectPlatformManifest(input, p);
    if (d.ok()) {
      checkDescriptor(*d);
      SBX_FUZZ_CHECK(d->mediaType.empty() || isManifestMediaType(d->mediaType) ||
                     isIndexMediaType(d->mediaType));
    } else {
      SBX_FUZZ_CHECK(!d.message().empty());
    }
  }

  for (const AuthChallenge& ch : parseWwwAuthenticate(input)) {
    SBX_FUZZ_CHECK(!ch.scheme.empty());
    SBX_FUZZ_CHECK(!hasUpper(ch.scheme));
    for (const auto& [name, value] : ch.params) SBX_FUZZ_CHECK(!hasUpper(name));
  }
}
