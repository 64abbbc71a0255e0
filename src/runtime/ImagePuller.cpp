#include "runtime/ImagePuller.h"

#include <sys/utsname.h>

#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <map>
#include <mutex>
#include <random>
#include <set>

#include "json/JsonReader.h"

namespace sbx::runtime {

namespace {

using SteadyClock = std::chrono::steady_clock;

constexpr char kMtOciIndex[] = "application/vnd.oci.image.index.v1+json";
constexpr char kMtDockerList[] = "application/vnd.docker.distribution.manifest.list.v2+json";
constexpr char kMtOciManifest[] = "application/vnd.oci.image.manifest.v1+json";
constexpr char kMtDockerManifest[] = "application/vnd.docker.distribution.manifest.v2+json";
constexpr char kMtDockerSchema1[] = "application/vnd.docker.distribution.manifest.v1";

// Our one label, on the lease only: which pull it belongs to.
constexpr char kLabelPull[] = "sandboxd.io/pull";
// containerd's own labels (images/mediatypes.go, unpacker.go, leases).
constexpr char kLabelExpire[] = "containerd.io/gc.expire";
constexpr char kLabelGcConfig[] = "containerd.io/gc.ref.content.config";
constexpr char kLabelGcLayerPrefix[] = "containerd.io/gc.ref.content.l.";
constexpr char kLabelGcManifestPrefix[] = "containerd.io/gc.ref.content.m.";
constexpr char kLabelGcSnapshotPrefix[] = "containerd.io/gc.ref.snapshot.";
constexpr char kLabelUncompressed[] = "containerd.io/uncompressed";
constexpr char kLabelSnapshotRef[] = "containerd.io/snapshot.ref";

// Blob bytes are handed to containerd in messages of this size: every
// content.Write message waits for containerd's answer, so curl's 16 KiB
// chunks would cost one round trip each.
constexpr size_t kWriteChunk = 1 << 20;
constexpr int64_t kMaxManifestBytes = 4 << 20;
// Index → index → manifest nesting we follow.
constexpr int kMaxIndexDepth = 3;

bool startsWith(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && s.substr(0, prefix.size()) == prefix;
}

std::string randomHex(size_t bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::random_device rd;
  std::string out;
  out.reserve(bytes * 2);
  for (size_t i = 0; i < bytes; ++i) {
    const unsigned v = rd() & 0xff;
    out.push_back(kHex[v >> 4]);
    out.push_back(kHex[v & 0xf]);
  }
  return out;
}

// RFC 3339 in UTC, as Go's time.Parse(time.RFC3339) reads it.
std::string rfc3339(std::chrono::system_clock::time_point t) {
  const std::time_t secs = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

Error prefixed(const std::string& prefix, const Error& e) {
  return Error(prefix + e.message, e.code);
}

std::vector<std::string> stringArray(const json::JsonCursor& c) {
  std::vector<std::string> out;
  c.forEach([&](const json::JsonCursor& item) {
    std::string s;
    if (item.get(s)) out.push_back(std::move(s));
  });
  return out;
}

// A descriptor object; records errors on the cursor when `strict`.
bool readDescriptor(const json::JsonCursor& c, Descriptor& out, bool strict) {
  c.field({"mediaType"}).get(out.mediaType);
  c.field({"digest"}).get(out.digest);
  c.field({"size"}).get(out.size);
  c.field({"annotations"}).forEachMember([&](std::string_view k, const json::JsonCursor& v) {
    std::string s;
    if (v.get(s)) out.annotations.emplace(std::string(k), std::move(s));
  });
  if (!isSha256Digest(out.digest)) {
    if (strict) c.fail("unsupported or invalid digest \"" + out.digest + "\"");
    return false;
  }
  if (out.size < 0) {
    if (strict) c.fail("negative size");
    return false;
  }
  return true;
}

// Variants that mean the same ("" is the baseline of its architecture).
std::string normalizedVariant(const std::string& arch, const std::string& variant) {
  if (arch == "arm64" && (variant.empty() || variant == "8")) return "v8";
  if (arch == "arm" && variant.empty()) return "v7";
  if (arch == "amd64" && variant.empty()) return "v1";
  return variant;
}

std::string normalizedArch(const std::string& arch) {
  if (arch == "x86_64" || arch == "x86-64") return "amd64";
  if (arch == "aarch64") return "arm64";
  return arch;
}

int variantNumber(const std::string& v) {
  if (v.size() < 2 || v[0] != 'v') return -1;
  return std::atoi(v.c_str() + 1);
}

}  // namespace

namespace {

ImageInfo makeInfo(const std::string& name, const Descriptor& target,
                   const std::string& manifestDigest, const std::string& configDigest,
                   ImageConfig&& config, const std::string& chainId,
                   const std::string& snapshotter) {
  ImageInfo info;
  info.name = name;
  info.targetDigest = target.digest;
  info.targetMediaType = target.mediaType;
  info.manifestDigest = manifestDigest;
  info.configDigest = configDigest;
  info.platform = config.platform.str();
  info.entrypoint = std::move(config.entrypoint);
  info.cmd = std::move(config.cmd);
  info.env = std::move(config.env);
  info.workingDir = std::move(config.workingDir);
  info.user = std::move(config.user);
  info.diffIds = std::move(config.diffIds);
  info.chainId = chainId;
  info.snapshotter = snapshotter;
  return info;
}

}  // namespace

// ---- formats -------------------------------------------------------------------------

std::string Platform::str() const {
  std::string s = os + "/" + architecture;
  if (!variant.empty()) s += "/" + variant;
  return s;
}

Platform platformFromMachine(std::string_view machine) {
  Platform p;
  p.os = "linux";
  if (machine == "x86_64" || machine == "amd64") {
    p.architecture = "amd64";
  } else if (machine == "aarch64" || machine == "arm64" || machine == "armv8l") {
    p.architecture = "arm64";
    p.variant = "v8";
  } else if (startsWith(machine, "armv7")) {
    p.architecture = "arm";
    p.variant = "v7";
  } else if (startsWith(machine, "armv6")) {
    p.architecture = "arm";
    p.variant = "v6";
  } else if (machine == "i386" || machine == "i486" || machine == "i586" || machine == "i686") {
    p.architecture = "386";
  } else {
    p.architecture = std::string(machine);
  }
  return p;
}

Platform hostPlatform() {
  struct utsname u {};
  // uname(2) only fails on a bad pointer.
  if (uname(&u) != 0) {
    std::perror("uname");
    std::abort();
  }
  return platformFromMachine(u.machine);
}

bool isIndexMediaType(std::string_view mt) { return mt == kMtOciIndex || mt == kMtDockerList; }

bool isManifestMediaType(std::string_view mt) {
  return mt == kMtOciManifest || mt == kMtDockerManifest;
}

Result<ImageConfig> parseImageConfig(std::string_view text) {
  json::JsonReader reader;
  auto root = reader.parse(text);
  if (!root.ok()) return Error(root.message(), kErrInvalidArgument);
  ImageConfig cfg;
  root->field({"os"}).get(cfg.platform.os);
  root->field({"architecture"}).get(cfg.platform.architecture);
  root->field({"variant"}).get(cfg.platform.variant);
  const json::JsonCursor c = root->field({"config"});
  cfg.entrypoint = stringArray(c.field({"Entrypoint"}));
  cfg.cmd = stringArray(c.field({"Cmd"}));
  cfg.env = stringArray(c.field({"Env"}));
  c.field({"WorkingDir"}).get(cfg.workingDir);
  c.field({"User"}).get(cfg.user);
  const json::JsonCursor diffIds = root->field({"rootfs"}).field({"diff_ids"});
  diffIds.forEach([&](const json::JsonCursor& d) {
    std::string s;
    if (!d.get(s)) return;
    if (!isSha256Digest(s)) {
      d.fail("unsupported or invalid diff id \"" + s + "\"");
      return;
    }
    cfg.diffIds.push_back(std::move(s));
  });
  if (!reader.ok()) return Error(reader.error(), kErrInvalidArgument);
  return cfg;
}

Result<ImageManifest> parseImageManifest(std::string_view text) {
  json::JsonReader reader;
  auto root = reader.parse(text);
  if (!root.ok()) return Error(root.message(), kErrInvalidArgument);
  int64_t schemaVersion = 0;
  root->field({"schemaVersion"}).get(schemaVersion);
  if (schemaVersion != 2) {
    return Error("unsupported schemaVersion " + std::to_string(schemaVersion), kErrInvalidArgument);
  }
  ImageManifest m;
  const json::JsonCursor config = root->field({"config"});
  if (!config.present()) return Error("manifest has no config", kErrInvalidArgument);
  readDescriptor(config, m.config, true);
  root->field({"layers"}).forEach([&](const json::JsonCursor& l) {
    Descriptor d;
    if (readDescriptor(l, d, true)) m.layers.push_back(std::move(d));
  });
  if (!reader.ok()) return Error(reader.error(), kErrInvalidArgument);
  return m;
}

Result<Descriptor> selectPlatformManifest(std::string_view text, const Platform& want) {
  json::JsonReader reader;
  auto root = reader.parse(text);
  if (!root.ok()) return Error(root.message(), kErrInvalidArgument);
  const json::JsonCursor manifests = root->field({"manifests"});
  if (!manifests.present()) return Error("index has no manifests", kErrInvalidArgument);

  const std::string wantArch = normalizedArch(want.architecture);
  const std::string wantVariant = normalizedVariant(wantArch, want.variant);
  std::optional<Descriptor> best;
  int bestScore = -1;
  std::vector<std::string> available;
  manifests.forEach([&](const json::JsonCursor& e) {
    Descriptor d;
    // Entries we cannot use (other digest algorithms, unknown types such as
    // attestations) are skipped, not fatal: only ours must be sound.
    if (!readDescriptor(e, d, false)) return;
    if (!d.mediaType.empty() && !isManifestMediaType(d.mediaType) &&
        !isIndexMediaType(d.mediaType)) {
      return;
    }
    const json::JsonCursor p = e.field({"platform"});
    int score = 0;  // no platform: usable, as a last resort
    if (p.present()) {
      Platform got;
      p.field({"os"}).get(got.os);
      p.field({"architecture"}).get(got.architecture);
      p.field({"variant"}).get(got.variant);
      available.push_back(got.str());
      const std::string arch = normalizedArch(got.architecture);
      if (got.os != want.os || arch != wantArch) return;
      const std::string variant = normalizedVariant(arch, got.variant);
      if (variant == wantVariant) {
        score = 3;
      } else if (arch == "arm") {
        // 32-bit arm runs older variants only (v7 runs v6 and v5).
        const int v = variantNumber(variant);
        const int w = variantNumber(wantVariant);
        if (v < 0 || w < 0 || v > w) return;
        score = 2;
      } else {
        score = 1;  // other variants (amd64 v2/v3...) do not matter here
      }
    }
    if (score > bestScore) {
      bestScore = score;
      best = std::move(d);
    }
  });
  if (!reader.ok()) return Error(reader.error(), kErrInvalidArgument);
  if (!best) {
    std::string list;
    for (const auto& a : available) list += (list.empty() ? "" : ", ") + a;
    return Error("no manifest for " + want.str() +
                     " (index has: " + (list.empty() ? std::string("none") : list) + ")",
                 kErrNotFound);
  }
  return *best;
}

std::vector<std::string> chainIds(const std::vector<std::string>& diffIds) {
  std::vector<std::string> out;
  out.reserve(diffIds.size());
  for (const auto& d : diffIds) {
    if (out.empty()) {
      out.push_back(d);
    } else {
      out.push_back(sha256Digest(out.back() + " " + d));
    }
  }
  return out;
}

// ---- per-key locks ----------------------------------------------------------------------

// Keys (blob digests, chain ids) being worked on by a pull of this process:
// a second pull of the same waits, then finds the work done.
class KeyLocks {
 public:
  // False when `deadline` passed first.
  bool lock(const std::string& key, Deadline deadline) {
    std::unique_lock<std::mutex> lock(mutex_);
    if (!cv_.wait_until(lock, deadline, [&] { return held_.count(key) == 0; })) return false;
    held_.insert(key);
    return true;
  }
  void unlock(const std::string& key) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      held_.erase(key);
    }
    cv_.notify_all();
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  std::set<std::string> held_;
};

class KeyGuard {
 public:
  KeyGuard(KeyLocks& locks, std::string key) : locks_(locks), key_(std::move(key)) {}
  ~KeyGuard() {
    if (held_) locks_.unlock(key_);
  }
  KeyGuard(const KeyGuard&) = delete;
  KeyGuard& operator=(const KeyGuard&) = delete;

  Status acquire(Deadline deadline) {
    held_ = locks_.lock(key_, deadline);
    if (!held_) {
      return Error("deadline exceeded waiting for another pull working on " + key_, kErrTimeout);
    }
    return {};
  }

 private:
  KeyLocks& locks_;
  std::string key_;
  bool held_ = false;
};

struct ImagePuller::Locks {
  KeyLocks blobs;
  KeyLocks chains;
};

// ---- one pull ------------------------------------------------------------------------------

class ImagePuller::Session {
 public:
  Session(ImagePuller& puller, const ImageRef& ref, std::string lease, Deadline deadline)
      : p_(puller), ref_(ref), lease_(std::move(lease)), deadline_(deadline) {}

  Result<ImageInfo> run();

 private:
  // Options for a containerd call under the pull's lease. Quick calls keep
  // containerd's per-call timeout; transfers may use all the time left.
  Result<ContainerdCall> call(bool transfer = false) const {
    const auto left = deadline_ - SteadyClock::now();
    if (left <= SteadyClock::duration::zero()) return Error("deadline exceeded", kErrTimeout);
    ContainerdCall c;
    c.lease = lease_;
    auto ms = std::chrono::ceil<std::chrono::milliseconds>(left);
    if (!transfer) ms = std::min(ms, p_.containerd_.options().callTimeout);
    c.timeout = ms;
    return c;
  }

  ContainerdCall cleanupCall() const {
    ContainerdCall c;
    c.timeout = p_.options_.cleanupTimeout;
    return c;
  }

  // A per-pull ingest ref: concurrent pulls (ours or another process's) of
  // the same blob then never fight over containerd's ingest lock; the first
  // commit wins and the others' commits find the blob present.
  std::string ingestRef(const char* kind, const std::string& digest) const {
    return lease_ + "/" + kind + "-" + digest;
  }

  Status ensureLabels(const std::string& digest, const std::map<std::string, std::string>& labels);
  Status writeAll(ContentWriter& w, const std::string& data);
  Status storeSmallBlob(const char* kind, const Descriptor& desc, const std::string& data,
                        const std::map<std::string, std::string>& labels);
  Result<std::string> fetchConfig(const Descriptor& desc);
  Status fetchLayer(const Descriptor& desc);
  Status unpackLayer(const Descriptor& layer, const std::string& diffId, const std::string& parent,
                     const std::string& chainId);
  Status putImage(const Descriptor& target);

  ImagePuller& p_;
  const ImageRef& ref_;
  std::string lease_;
  Deadline deadline_;
  std::string endpoint_;  // served the manifest: blobs are asked there first
  int64_t bytesFetched_ = 0;
};

Status ImagePuller::Session::ensureLabels(const std::string& digest,
                                          const std::map<std::string, std::string>& labels) {
  if (labels.empty()) return {};
  auto c = call();
  if (!c.ok()) return c.error();
  auto info = p_.containerd_.contentInfo(digest, *c);
  if (!info.ok()) return info.error();
  bool same = std::all_of(labels.begin(), labels.end(), [&](const auto& kv) {
    auto it = info->labels.find(kv.first);
    return it != info->labels.end() && it->second == kv.second;
  });
  if (same) return {};
  return p_.containerd_.updateContentLabels(digest, labels, *c);
}

Status ImagePuller::Session::writeAll(ContentWriter& w, const std::string& data) {
  for (size_t off = 0; off < data.size(); off += kWriteChunk) {
    Status st = w.write(data.data() + off, std::min(kWriteChunk, data.size() - off));
    if (!st.ok()) return st;
  }
  return {};
}

Status ImagePuller::Session::storeSmallBlob(const char* kind, const Descriptor& desc,
                                            const std::string& data,
                                            const std::map<std::string, std::string>& labels) {
  KeyGuard guard(p_.locks_->blobs, desc.digest);
  if (Status st = guard.acquire(deadline_); !st.ok()) return st;
  auto c = call(true);
  if (!c.ok()) return c.error();
  auto w = p_.containerd_.openContentWriter(ingestRef(kind, desc.digest), desc.digest,
                                            static_cast<int64_t>(data.size()), *c);
  if (!w.ok()) {
    // Present already (and now held by our lease too): its labels may come
    // from a client that set none.
    if (isAlreadyExists(w.error())) return ensureLabels(desc.digest, labels);
    return w.error();
  }
  if (Status st = writeAll(**w, data); !st.ok()) return st;
  return (*w)->commit(labels);
}

Result<std::string> ImagePuller::Session::fetchConfig(const Descriptor& desc) {
  if (desc.size > p_.options_.maxConfigBytes) {
    return Error("config " + desc.digest + " is larger than " +
                     std::to_string(p_.options_.maxConfigBytes) + " bytes",
                 kErrInvalidArgument);
  }
  KeyGuard guard(p_.locks_->blobs, desc.digest);
  if (Status st = guard.acquire(deadline_); !st.ok()) return st.error();
  auto c = call(true);
  if (!c.ok()) return c.error();
  auto w = p_.containerd_.openContentWriter(ingestRef("config", desc.digest), desc.digest,
                                            desc.size, *c);
  if (!w.ok()) {
    if (!isAlreadyExists(w.error())) return w.error();
    return p_.containerd_.readContent(desc.digest, p_.options_.maxConfigBytes, *c);
  }
  std::string data;
  data.reserve(static_cast<size_t>(desc.size));
  Status st = p_.registry_.fetchBlob(
      ref_, desc.digest, desc.size,
      [&](const char* bytes, size_t len) -> Status {
        data.append(bytes, len);
        return {};
      },
      deadline_, endpoint_);
  if (!st.ok()) return st.error();
  bytesFetched_ += desc.size;
  if (st = writeAll(**w, data); !st.ok()) return st.error();
  if (st = (*w)->commit({}); !st.ok()) return st.error();
  return data;
}

Status ImagePuller::Session::fetchLayer(const Descriptor& desc) {
  KeyGuard guard(p_.locks_->blobs, desc.digest);
  if (Status st = guard.acquire(deadline_); !st.ok()) return st;
  auto c = call(true);
  if (!c.ok()) return c.error();
  auto w =
      p_.containerd_.openContentWriter(ingestRef("layer", desc.digest), desc.digest, desc.size, *c);
  if (!w.ok()) {
    if (isAlreadyExists(w.error())) return {};
    return w.error();
  }
  ContentWriter& writer = **w;
  // Straight from curl's write callback into containerd, in kWriteChunk
  // messages: the layer is never held whole in memory or on disk here.
  std::string buf;
  buf.reserve(kWriteChunk);
  Status st = p_.registry_.fetchBlob(
      ref_, desc.digest, desc.size,
      [&](const char* bytes, size_t len) -> Status {
        buf.append(bytes, len);
        if (buf.size() < kWriteChunk) return {};
        Status ws = writer.write(buf.data(), buf.size());
        buf.clear();
        return ws;
      },
      deadline_, endpoint_);
  if (st.ok() && !buf.empty()) st = writer.write(buf.data(), buf.size());
  if (!st.ok()) {
    writer.abort();
    return st;
  }
  if (st = writer.commit({}); !st.ok()) return st;
  bytesFetched_ += desc.size;
  return {};
}

Status ImagePuller::Session::unpackLayer(const Descriptor& layer, const std::string& diffId,
                                         const std::string& parent, const std::string& chainId) {
  auto& cd = p_.containerd_;
  const std::string& sn = p_.options_.snapshotter;
  KeyGuard guard(p_.locks_->chains, chainId);
  if (Status st = guard.acquire(deadline_); !st.ok()) return st;

  auto c = call();
  if (!c.ok()) return c.error();
  auto present = [&]() -> Result<bool> {
    auto info = cd.statSnapshot(sn, chainId, *c);
    if (info.ok()) {
      if (info->kind != "committed") {
        return Error("snapshot " + chainId + " exists but is " + info->kind, kErrOther);
      }
      return true;
    }
    if (isNotFound(info.error())) return false;
    return info.error();
  };
  auto have = present();
  if (!have.ok()) return have.error();
  if (*have) return {};

  // containerd's unpack key form: "extract-<unique> <chain id>".
  const std::string key = "extract-" + randomHex(8) + " " + chainId;
  const std::map<std::string, std::string> labels = {{kLabelSnapshotRef, chainId}};
  auto mounts = cd.prepareSnapshot(sn, key, parent, labels, *c);
  if (!mounts.ok()) {
    if (isAlreadyExists(mounts.error())) {
      have = present();
      if (have.ok() && *have) return {};
    }
    return mounts.error();
  }
  auto removeKey = [&] { (void)cd.removeSnapshot(sn, key, cleanupCall()); };

  auto ac = call(true);
  if (!ac.ok()) {
    removeKey();
    return ac.error();
  }
  auto applied = cd.applyLayer(layer, *mounts, *ac);
  if (!applied.ok()) {
    removeKey();
    return Error("unpack layer " + layer.digest + ": " + applied.message(), applied.error().code);
  }
  if (applied->digest != diffId) {
    removeKey();
    return Error("unpack layer " + layer.digest + ": wrong diff id: got " + applied->digest +
                     ", config says " + diffId,
                 kErrOther);
  }
  c = call();
  Status st = c.ok() ? cd.commitSnapshot(sn, chainId, key, labels, *c) : Status(c.error());
  if (!st.ok()) {
    removeKey();
    // Someone else committed the same chain meanwhile: theirs is as good.
    if (isAlreadyExists(st.error())) return {};
    return st;
  }
  // Like containerd's unpacker: record the verified uncompressed digest.
  return cd.updateContentLabels(layer.digest, {{kLabelUncompressed, diffId}}, *c);
}

Status ImagePuller::Session::putImage(const Descriptor& target) {
  ImageRecord rec;
  rec.name = ref_.name();
  rec.target = target;
  // A record created or deleted by someone else between our calls sends us
  // round again; a few rounds settle it.
  for (int round = 0; round < 4; ++round) {
    auto c = call();
    if (!c.ok()) return c.error();
    Status st = p_.containerd_.createImage(rec, *c);
    if (st.ok() || !isAlreadyExists(st.error())) return st;
    auto cur = p_.containerd_.getImage(rec.name, *c);
    if (!cur.ok()) {
      if (isNotFound(cur.error())) continue;
      return cur.error();
    }
    if (cur->target.digest == target.digest) return {};
    // The tag moved: replace the record (our lease keeps the new content
    // alive in between; the old content goes to GC if nothing else uses it).
    st = p_.containerd_.deleteImage(rec.name, *c);
    if (!st.ok() && !isNotFound(st.error())) return st;
  }
  return Error("image record " + rec.name + " kept changing under us", kErrOther);
}

Result<ImageInfo> ImagePuller::Session::run() {
  RegistryClient& reg = p_.registry_;
  auto top = reg.fetchManifest(ref_, ref_.reference(), deadline_);
  if (!top.ok()) return top.error();
  endpoint_ = top->endpoint;
  const Descriptor topDesc{top->mediaType, top->digest, static_cast<int64_t>(top->body.size()), {}};

  // Down the index levels to this platform's manifest.
  struct IndexLevel {
    Descriptor desc;
    std::string body;
    Descriptor child;
  };
  std::vector<IndexLevel> indexes;
  Descriptor curDesc = topDesc;
  std::string curBody = std::move(top->body);
  while (isIndexMediaType(curDesc.mediaType)) {
    if (static_cast<int>(indexes.size()) >= kMaxIndexDepth) {
      return Error("index " + topDesc.digest + ": nested deeper than " +
                       std::to_string(kMaxIndexDepth) + " levels",
                   kErrInvalidArgument);
    }
    auto sel = selectPlatformManifest(curBody, p_.options_.platform);
    if (!sel.ok()) return prefixed("index " + curDesc.digest + ": ", sel.error());
    auto m = reg.fetchManifest(ref_, sel->digest, deadline_);
    if (!m.ok()) return m.error();
    if (static_cast<int64_t>(m->body.size()) != sel->size) {
      return Error("manifest " + sel->digest + ": size mismatch: index says " +
                       std::to_string(sel->size) + ", got " + std::to_string(m->body.size()),
                   kErrOther);
    }
    Descriptor next{m->mediaType, m->digest, sel->size, {}};
    // The index's word counts when the registry's Content-Type is vague.
    if (!isManifestMediaType(next.mediaType) && !isIndexMediaType(next.mediaType)) {
      next.mediaType = sel->mediaType;
    }
    indexes.push_back(IndexLevel{curDesc, std::move(curBody), *sel});
    curDesc = next;
    curBody = std::move(m->body);
  }
  if (!isManifestMediaType(curDesc.mediaType)) {
    if (startsWith(curDesc.mediaType, kMtDockerSchema1)) {
      return Error("manifest " + curDesc.digest +
                       ": Docker schema 1 manifests are not supported (push the image again "
                       "with a current client)",
                   kErrInvalidArgument);
    }
    return Error(
        "manifest " + curDesc.digest + ": unsupported media type \"" + curDesc.mediaType + "\"",
        kErrInvalidArgument);
  }
  auto manifest = parseImageManifest(curBody);
  if (!manifest.ok()) return prefixed("manifest " + curDesc.digest + ": ", manifest.error());
  if (manifest->layers.empty()) {
    return Error("manifest " + curDesc.digest + ": image has no layers", kErrInvalidArgument);
  }

  auto configBytes = fetchConfig(manifest->config);
  if (!configBytes.ok()) return configBytes.error();
  auto config = parseImageConfig(*configBytes);
  if (!config.ok()) return prefixed("config " + manifest->config.digest + ": ", config.error());
  if (config->diffIds.size() != manifest->layers.size()) {
    return Error("config " + manifest->config.digest + " lists " +
                     std::to_string(config->diffIds.size()) + " diff ids for " +
                     std::to_string(manifest->layers.size()) + " layers",
                 kErrInvalidArgument);
  }

  for (const auto& layer : manifest->layers) {
    if (Status st = fetchLayer(layer); !st.ok()) return st.error();
  }

  // Parents after their children, each labelled so containerd's GC keeps
  // what it references (images/mediatypes.go: ChildGCLabels).
  std::map<std::string, std::string> manifestLabels = {{kLabelGcConfig, manifest->config.digest}};
  for (size_t i = 0; i < manifest->layers.size(); ++i) {
    manifestLabels[kLabelGcLayerPrefix + std::to_string(i)] = manifest->layers[i].digest;
  }
  if (Status st = storeSmallBlob("manifest", curDesc, curBody, manifestLabels); !st.ok()) {
    return st.error();
  }
  for (auto it = indexes.rbegin(); it != indexes.rend(); ++it) {
    // Only the manifest fetched is referenced, as with containerd's
    // platform-filtered pull.
    std::map<std::string, std::string> labels = {
        {std::string(kLabelGcManifestPrefix) + "0", it->child.digest}};
    if (Status st = storeSmallBlob("index", it->desc, it->body, labels); !st.ok()) {
      return st.error();
    }
  }

  const std::vector<std::string> chain = chainIds(config->diffIds);
  for (size_t i = 0; i < chain.size(); ++i) {
    Status st =
        unpackLayer(manifest->layers[i], config->diffIds[i], i == 0 ? "" : chain[i - 1], chain[i]);
    if (!st.ok()) return st.error();
  }
  if (Status st = ensureLabels(manifest->config.digest,
                               {{kLabelGcSnapshotPrefix + p_.options_.snapshotter, chain.back()}});
      !st.ok()) {
    return st.error();
  }
  if (Status st = putImage(topDesc); !st.ok()) return st.error();

  ImageInfo info = makeInfo(ref_.name(), topDesc, curDesc.digest, manifest->config.digest,
                            std::move(*config), chain.back(), p_.options_.snapshotter);
  info.bytesFetched = bytesFetched_;
  return info;
}

// ---- ImagePuller ---------------------------------------------------------------------------

ImagePuller::ImagePuller(ContainerdClient& containerd, RegistryClient& registry,
                         ImagePullerOptions options)
    : containerd_(containerd),
      registry_(registry),
      options_(std::move(options)),
      locks_(std::make_unique<Locks>()) {}

ImagePuller::~ImagePuller() = default;

Result<ImageInfo> ImagePuller::pull(const ImageRef& ref, Deadline deadline) {
  const std::string name = ref.name();
  const std::string prefix = "pull " + name + ": ";
  // A digest names immutable content: if it is all here, the registry has
  // nothing to add.
  if (!ref.digest.empty()) {
    auto have = local(ref);
    if (have.ok()) return have;
  }
  const auto left = deadline - SteadyClock::now();
  if (left <= SteadyClock::duration::zero()) {
    return Error(prefix + "deadline exceeded", kErrTimeout);
  }

  // Everything the pull writes is held by this lease until the image record
  // (and the labels from it down) takes over; on failure, deleting it hands
  // the partial pull to containerd's GC.
  const std::string lease = "sandboxd-pull-" + randomHex(8);
  const std::map<std::string, std::string> leaseLabels = {
      {kLabelPull, name},
      {kLabelExpire, rfc3339(std::chrono::system_clock::now() +
                             std::chrono::duration_cast<std::chrono::system_clock::duration>(
                                 options_.leaseExpiry))},
  };
  ContainerdCall c;
  c.timeout = std::min(std::chrono::ceil<std::chrono::milliseconds>(left),
                       containerd_.options().callTimeout);
  ContainerdCall cleanup;
  cleanup.timeout = options_.cleanupTimeout;
  {
    std::lock_guard<std::mutex> lock(leasesMu_);
    activeLeases_.insert(lease);
  }
  auto forget = [this, &lease] {
    std::lock_guard<std::mutex> lock(leasesMu_);
    activeLeases_.erase(lease);
  };
  if (Status st = containerd_.createLease(lease, leaseLabels, c); !st.ok()) {
    // A call that timed out on our side may still have created it.
    if (st.error().code == kErrTimeout) (void)containerd_.deleteLease(lease, false, cleanup);
    forget();
    return prefixed(prefix, st.error());
  }

  Session session(*this, ref, lease, deadline);
  Result<ImageInfo> result = session.run();

  // A lease that cannot be deleted now expires (gc.expire) on its own.
  (void)containerd_.deleteLease(lease, false, cleanup);
  forget();
  if (!result.ok()) return prefixed(prefix, result.error());
  return result;
}

Result<size_t> ImagePuller::releaseStaleLeases(const ContainerdCall& call) {
  auto leases = containerd_.listLeases("labels.\"" + std::string(kLabelPull) + "\"", call);
  if (!leases.ok()) return leases.error();
  size_t released = 0;
  for (const auto& l : *leases) {
    if (l.id.rfind("sandboxd-pull-", 0) != 0) continue;
    {
      std::lock_guard<std::mutex> lock(leasesMu_);
      if (activeLeases_.count(l.id)) continue;
    }
    // Synchronous: the GC has collected what it held when this returns.
    if (Status st = containerd_.deleteLease(l.id, true, call); !st.ok()) return st.error();
    ++released;
  }
  return released;
}

Result<ImageInfo> ImagePuller::local(const ImageRef& ref) {
  const std::string name = ref.name();
  auto img = containerd_.getImage(name);
  if (!img.ok()) {
    if (isNotFound(img.error())) return Error("image " + name + " is not present", kErrNotFound);
    return img.error();
  }
  Descriptor desc = img->target;
  std::string body;
  for (int depth = 0; isIndexMediaType(desc.mediaType); ++depth) {
    if (depth >= kMaxIndexDepth) {
      return Error("image " + name + ": index nested too deeply", kErrInvalidArgument);
    }
    auto index = containerd_.readContent(desc.digest, kMaxManifestBytes);
    if (!index.ok()) return prefixed("image " + name + ": ", index.error());
    auto sel = selectPlatformManifest(*index, options_.platform);
    if (!sel.ok()) return prefixed("image " + name + ": index " + desc.digest + ": ", sel.error());
    desc = *sel;
  }
  if (!isManifestMediaType(desc.mediaType)) {
    return Error("image " + name + ": unsupported media type \"" + desc.mediaType + "\"",
                 kErrInvalidArgument);
  }
  auto manifestBytes = containerd_.readContent(desc.digest, kMaxManifestBytes);
  if (!manifestBytes.ok()) return prefixed("image " + name + ": ", manifestBytes.error());
  auto manifest = parseImageManifest(*manifestBytes);
  if (!manifest.ok()) {
    return prefixed("image " + name + ": manifest " + desc.digest + ": ", manifest.error());
  }
  auto configBytes = containerd_.readContent(manifest->config.digest, options_.maxConfigBytes);
  if (!configBytes.ok()) return prefixed("image " + name + ": ", configBytes.error());
  auto config = parseImageConfig(*configBytes);
  if (!config.ok()) {
    return prefixed("image " + name + ": config " + manifest->config.digest + ": ", config.error());
  }
  if (config->diffIds.empty()) {
    return Error("image " + name + ": config lists no layers", kErrInvalidArgument);
  }
  const std::vector<std::string> chain = chainIds(config->diffIds);
  auto snap = containerd_.statSnapshot(options_.snapshotter, chain.back());
  if (!snap.ok()) {
    if (isNotFound(snap.error())) {
      return Error("image " + name + " is not unpacked (no snapshot " + chain.back() + " in " +
                       options_.snapshotter + ")",
                   kErrNotFound);
    }
    return prefixed("image " + name + ": ", snap.error());
  }
  if (snap->kind != "committed") {
    return Error("image " + name + ": snapshot " + chain.back() + " is " + snap->kind,
                 kErrNotFound);
  }

  return makeInfo(name, img->target, desc.digest, manifest->config.digest, std::move(*config),
                  chain.back(), options_.snapshotter);
}

}  // namespace sbx::runtime
