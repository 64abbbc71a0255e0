#include "node/ImageService.h"

#include "node/SandboxSpec.h"
#include "reactor/WorkerPool.h"

namespace sbx::node {

ImageService::ImageService(WorkerPool& pool, runtime::ImagePuller& puller, Duration pullTimeout)
    : pool_(pool), puller_(puller), pullTimeout_(pullTimeout) {}

void ImageService::ensure(const std::string& image, Done done) {
  auto parsed = parseImageReference(image);
  if (!parsed.ok()) {
    done(Error("pull image \"" + image + "\": " + parsed.message()));
    return;
  }
  runtime::ImageRef ref{parsed->registry, parsed->repository, parsed->tag, parsed->digest};
  const std::string name = ref.name();
  auto [it, first] = waiting_.try_emplace(name);
  it->second.push_back(std::move(done));
  if (!first) return;  // a pull of this image is already under way

  const Duration timeout = pullTimeout_;
  auto submitted = pool_.call(
      [this, ref, timeout]() -> Result<runtime::ImageInfo> {
        auto local = puller_.local(ref);
        if (local.ok()) return local;
        auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::duration_cast<std::chrono::steady_clock::duration>(timeout);
        return puller_.pull(ref, deadline);
      },
      [this, name, image](std::optional<Result<runtime::ImageInfo>> result) {
        auto node = waiting_.extract(name);
        if (node.empty()) return;
        for (auto& cb : node.mapped()) {
          if (!result) {
            cb(Error("pull image \"" + image + "\": cancelled"));
          } else if (result->ok()) {
            cb(*result);
          } else {
            // The puller names the image itself ("pull <name>: "); SPEC's
            // shape is `pull image "<ref>": <reason>`, so keep only the reason.
            std::string reason = result->message();
            const std::string own = "pull " + name + ": ";
            if (reason.rfind(own, 0) == 0) reason.erase(0, own.size());
            cb(Error("pull image \"" + image + "\": " + reason));
          }
        }
      },
      "image-pull");
  if (!submitted.ok()) {
    auto node = waiting_.extract(name);
    for (auto& cb : node.mapped()) cb(Error("pull image \"" + image + "\": " + submitted.message()));
  }
}

}  // namespace sbx::node
