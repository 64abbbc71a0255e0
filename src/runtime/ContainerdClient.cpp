#include "runtime/ContainerdClient.h"

#include <grpcpp/grpcpp.h>

#include <github.com/containerd/containerd/api/events/task.pb.h>
#include <github.com/containerd/containerd/api/services/containers/v1/containers.grpc.pb.h>
#include <github.com/containerd/containerd/api/services/content/v1/content.grpc.pb.h>
#include <github.com/containerd/containerd/api/services/diff/v1/diff.grpc.pb.h>
#include <github.com/containerd/containerd/api/services/events/v1/events.grpc.pb.h>
#include <github.com/containerd/containerd/api/services/images/v1/images.grpc.pb.h>
#include <github.com/containerd/containerd/api/services/leases/v1/leases.grpc.pb.h>
#include <github.com/containerd/containerd/api/services/snapshots/v1/snapshots.grpc.pb.h>
#include <github.com/containerd/containerd/api/services/tasks/v1/tasks.grpc.pb.h>
#include <github.com/containerd/containerd/api/services/version/v1/version.grpc.pb.h>
#include <github.com/containerd/containerd/runtime/v2/runc/options/oci.pb.h>

namespace sbx::runtime {

namespace containers = containerd::services::containers::v1;
namespace content = containerd::services::content::v1;
namespace diff = containerd::services::diff::v1;
namespace events = containerd::services::events::v1;
namespace images = containerd::services::images::v1;
namespace leases = containerd::services::leases::v1;
namespace snapshots = containerd::services::snapshots::v1;
namespace tasks = containerd::services::tasks::v1;
namespace version = containerd::services::version::v1;
namespace pbtypes = containerd::types;

namespace {

// containerd stores the spec as JSON inside an Any with this type URL (the
// one its Go client registers for specs.Spec).
constexpr char kSpecTypeUrl[] = "types.containerd.io/opencontainers/runtime-spec/1/Spec";
// The runc v2 shim's options, by proto full name as containerd's typeurl
// registry marshals them.
constexpr char kRuncOptionsTypeUrl[] = "containerd.runc.v1.Options";

Error mapStatus(const grpc::Status& st, const std::string& what) {
  int code = kErrOther;
  const char* kind = "";
  switch (st.error_code()) {
    case grpc::StatusCode::NOT_FOUND:
      code = kErrNotFound;
      kind = "not found: ";
      break;
    case grpc::StatusCode::ALREADY_EXISTS:
      code = kErrAlreadyExists;
      kind = "already exists: ";
      break;
    case grpc::StatusCode::UNAVAILABLE:
      code = kErrUnavailable;
      kind = "unavailable: ";
      break;
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      code = kErrTimeout;
      kind = "timed out: ";
      break;
    case grpc::StatusCode::FAILED_PRECONDITION:
      code = kErrFailedPrecondition;
      kind = "failed precondition: ";
      break;
    case grpc::StatusCode::INVALID_ARGUMENT:
      code = kErrInvalidArgument;
      kind = "invalid argument: ";
      break;
    default:
      break;
  }
  return Error("containerd: " + what + ": " + kind + st.error_message(), code);
}

template <class Map>
void copyLabels(const std::map<std::string, std::string>& from, Map* to) {
  for (const auto& [k, v] : from) (*to)[k] = v;
}

template <class Map>
std::map<std::string, std::string> toMap(const Map& m) {
  return std::map<std::string, std::string>(m.begin(), m.end());
}

Mount fromPb(const pbtypes::Mount& m) {
  Mount out;
  out.type = m.type();
  out.source = m.source();
  out.target = m.target();
  out.options.assign(m.options().begin(), m.options().end());
  return out;
}

void toPb(const Mount& m, pbtypes::Mount* out) {
  out->set_type(m.type);
  out->set_source(m.source);
  out->set_target(m.target);
  for (const auto& o : m.options) out->add_options(o);
}

Descriptor fromPb(const pbtypes::Descriptor& d) {
  Descriptor out;
  out.mediaType = d.media_type();
  out.digest = d.digest();
  out.size = d.size();
  out.annotations = toMap(d.annotations());
  return out;
}

void toPb(const Descriptor& d, pbtypes::Descriptor* out) {
  out->set_media_type(d.mediaType);
  out->set_digest(d.digest);
  out->set_size(d.size);
  copyLabels(d.annotations, out->mutable_annotations());
}

TaskStatus fromPb(containerd::v1::types::Status s) {
  switch (s) {
    case containerd::v1::types::CREATED: return TaskStatus::Created;
    case containerd::v1::types::RUNNING: return TaskStatus::Running;
    case containerd::v1::types::STOPPED: return TaskStatus::Stopped;
    case containerd::v1::types::PAUSED: return TaskStatus::Paused;
    case containerd::v1::types::PAUSING: return TaskStatus::Pausing;
    default: return TaskStatus::Unknown;
  }
}

TaskInfo fromPb(const containerd::v1::types::Process& p) {
  TaskInfo t;
  // tasks.List fills `id` (a task's id is its container's) and leaves
  // container_id empty; Get fills both.
  t.containerId = p.container_id().empty() ? p.id() : p.container_id();
  t.pid = p.pid();
  t.status = fromPb(p.status());
  t.exitStatus = p.exit_status();
  return t;
}

ContainerRecord fromPb(const containers::Container& c) {
  ContainerRecord r;
  r.id = c.id();
  r.image = c.image();
  r.labels = toMap(c.labels());
  r.runtimeName = c.runtime().name();
  r.snapshotter = c.snapshotter();
  r.snapshotKey = c.snapshot_key();
  if (c.spec().type_url() == kSpecTypeUrl) r.specJson = c.spec().value();
  return r;
}

SnapshotInfo fromPb(const snapshots::Info& i) {
  SnapshotInfo s;
  s.name = i.name();
  s.parent = i.parent();
  switch (i.kind()) {
    case snapshots::VIEW: s.kind = "view"; break;
    case snapshots::ACTIVE: s.kind = "active"; break;
    case snapshots::COMMITTED: s.kind = "committed"; break;
    default: s.kind = "unknown"; break;
  }
  s.labels = toMap(i.labels());
  return s;
}

}  // namespace

const char* taskStatusName(TaskStatus s) {
  switch (s) {
    case TaskStatus::Created: return "created";
    case TaskStatus::Running: return "running";
    case TaskStatus::Stopped: return "stopped";
    case TaskStatus::Paused: return "paused";
    case TaskStatus::Pausing: return "pausing";
    case TaskStatus::NotFound: return "not_found";
    case TaskStatus::Unknown: break;
  }
  return "unknown";
}

struct ContainerdClient::Stubs {
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<containers::Containers::Stub> containers;
  std::unique_ptr<content::Content::Stub> content;
  std::unique_ptr<diff::Diff::Stub> diff;
  std::unique_ptr<events::Events::Stub> events;
  std::unique_ptr<images::Images::Stub> images;
  std::unique_ptr<leases::Leases::Stub> leases;
  std::unique_ptr<snapshots::Snapshots::Stub> snapshots;
  std::unique_ptr<tasks::Tasks::Stub> tasks;
  std::unique_ptr<version::Version::Stub> version;
};

ContainerdClient::ContainerdClient(Options options)
    : options_(std::move(options)), stubs_(std::make_unique<Stubs>()) {
  grpc::ChannelArguments args;
  // Large enough for a full OCI spec or a container list, bounded anyway.
  args.SetMaxReceiveMessageSize(64 << 20);
  // Reconnect quickly after a containerd restart instead of gRPC's default
  // backoff of up to two minutes.
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
  stubs_->channel = grpc::CreateCustomChannel("unix://" + options_.address,
                                              grpc::InsecureChannelCredentials(), args);
  auto& ch = stubs_->channel;
  stubs_->containers = containers::Containers::NewStub(ch);
  stubs_->content = content::Content::NewStub(ch);
  stubs_->diff = diff::Diff::NewStub(ch);
  stubs_->events = events::Events::NewStub(ch);
  stubs_->images = images::Images::NewStub(ch);
  stubs_->leases = leases::Leases::NewStub(ch);
  stubs_->snapshots = snapshots::Snapshots::NewStub(ch);
  stubs_->tasks = tasks::Tasks::NewStub(ch);
  stubs_->version = version::Version::NewStub(ch);
}

ContainerdClient::~ContainerdClient() = default;

namespace {
// A context with the namespace, the optional lease and the deadline.
void prepare(grpc::ClientContext& ctx, const ContainerdClient::Options& o,
             const ContainerdClient::Call& call) {
  ctx.AddMetadata("containerd-namespace", o.namespaceName);
  if (!call.lease.empty()) ctx.AddMetadata("containerd-lease", call.lease);
  auto timeout = call.timeout.count() > 0 ? call.timeout : o.callTimeout;
  ctx.set_deadline(std::chrono::system_clock::now() + timeout);
}
}  // namespace

#define SBX_CTX(ctx, call)   \
  grpc::ClientContext ctx;   \
  prepare(ctx, options_, call)

Result<std::string> ContainerdClient::version(const Call& call) {
  SBX_CTX(ctx, call);
  google::protobuf::Empty req;
  version::VersionResponse resp;
  grpc::Status st = stubs_->version->Version(&ctx, req, &resp);
  if (!st.ok()) return mapStatus(st, "version");
  return resp.version();
}

// ---- leases ------------------------------------------------------------------

Status ContainerdClient::createLease(const std::string& id,
                                    const std::map<std::string, std::string>& labels,
                                    const Call& call) {
  SBX_CTX(ctx, call);
  leases::CreateRequest req;
  req.set_id(id);
  copyLabels(labels, req.mutable_labels());
  leases::CreateResponse resp;
  grpc::Status st = stubs_->leases->Create(&ctx, req, &resp);
  if (!st.ok()) return mapStatus(st, "leases.Create " + id);
  return {};
}

Status ContainerdClient::deleteLease(const std::string& id, bool sync, const Call& call) {
  SBX_CTX(ctx, call);
  leases::DeleteRequest req;
  req.set_id(id);
  req.set_sync(sync);
  google::protobuf::Empty resp;
  grpc::Status st = stubs_->leases->Delete(&ctx, req, &resp);
  if (!st.ok()) return mapStatus(st, "leases.Delete " + id);
  return {};
}

Result<std::vector<LeaseInfo>> ContainerdClient::listLeases(const std::string& filter,
                                                            const Call& call) {
  SBX_CTX(ctx, call);
  leases::ListRequest req;
  if (!filter.empty()) req.add_filters(filter);
  leases::ListResponse resp;
  grpc::Status st = stubs_->leases->List(&ctx, req, &resp);
  if (!st.ok()) return mapStatus(st, "leases.List");
  std::vector<LeaseInfo> out;
  for (const auto& l : resp.leases()) out.push_back(LeaseInfo{l.id(), toMap(l.labels())});
  return out;
}

// ---- content -------------------------------------------------------------------

Result<ContentInfo> ContainerdClient::contentInfo(const std::string& digest, const Call& call) {
  SBX_CTX(ctx, call);
  content::InfoRequest req;
  req.set_digest(digest);
  content::InfoResponse resp;
  grpc::Status st = stubs_->content->Info(&ctx, req, &resp);
  if (!st.ok()) return mapStatus(st, "content.Info " + digest);
  return ContentInfo{resp.info().digest(), resp.info().size(), toMap(resp.info().labels())};
}

namespace {

class GrpcContentWriter final : public ContentWriter {
 public:
  GrpcContentWriter(std::unique_ptr<grpc::ClientContext> ctx,
                    std::unique_ptr<grpc::ClientReaderWriter<content::WriteContentRequest,
                                                             content::WriteContentResponse>>
                        stream,
                    std::string ref, std::string digest, int64_t size)
      : ctx_(std::move(ctx)),
        stream_(std::move(stream)),
        ref_(std::move(ref)),
        digest_(std::move(digest)),
        size_(size) {}

  ~GrpcContentWriter() override {
    if (!finished_) abort();
  }

  Status write(const char* data, size_t len) override {
    if (finished_) return Error("containerd: content.Write " + digest_ + ": writer closed", kErrOther);
    req_.Clear();
    req_.set_action(content::WRITE);
    req_.set_ref(ref_);
    req_.set_offset(offset_);
    req_.set_data(data, len);
    if (!stream_->Write(req_) || !stream_->Read(&resp_)) return fail();
    offset_ += static_cast<int64_t>(len);
    return {};
  }

  Status commit(const std::map<std::string, std::string>& labels) override {
    if (finished_) return Error("containerd: content.Write " + digest_ + ": writer closed", kErrOther);
    req_.Clear();
    req_.set_action(content::COMMIT);
    req_.set_ref(ref_);
    req_.set_total(size_);
    req_.set_expected(digest_);
    req_.set_offset(offset_);
    copyLabels(labels, req_.mutable_labels());
    bool ok = stream_->Write(req_) && stream_->Read(&resp_);
    stream_->WritesDone();
    // Drain to end-of-stream before Finish(): the server ends the call after
    // a commit, and the synchronous Finish() waits for that to be read.
    content::WriteContentResponse extra;
    while (stream_->Read(&extra)) {
    }
    grpc::Status st = stream_->Finish();
    finished_ = true;
    if (st.error_code() == grpc::StatusCode::ALREADY_EXISTS) return {};
    if (!st.ok()) return mapStatus(st, "content.Write " + digest_);
    if (!ok) return Error("containerd: content.Write " + digest_ + ": stream ended before commit", kErrOther);
    return {};
  }

  void abort() override {
    if (finished_) return;
    finished_ = true;
    ctx_->TryCancel();
    stream_->Finish();
  }

  int64_t written() const override { return offset_; }

  // Starts the write: STAT, and a truncate when an earlier attempt under
  // this ref left data behind (restarting is simpler than resuming and a
  // retry re-downloads the blob anyway).
  Status begin() {
    req_.set_action(content::STAT);
    req_.set_ref(ref_);
    req_.set_total(size_);
    req_.set_expected(digest_);
    if (!stream_->Write(req_) || !stream_->Read(&resp_)) return fail();
    if (resp_.offset() != 0) {
      req_.Clear();
      req_.set_action(content::WRITE);
      req_.set_ref(ref_);
      req_.set_offset(0);  // WRITE at offset 0 with no data truncates
      if (!stream_->Write(req_) || !stream_->Read(&resp_)) return fail();
    }
    return {};
  }

 private:
  Status fail() {
    stream_->WritesDone();
    grpc::Status st = stream_->Finish();
    finished_ = true;
    if (st.ok()) return Error("containerd: content.Write " + digest_ + ": stream closed", kErrOther);
    return mapStatus(st, "content.Write " + digest_);
  }

  std::unique_ptr<grpc::ClientContext> ctx_;
  std::unique_ptr<grpc::ClientReaderWriter<content::WriteContentRequest, content::WriteContentResponse>>
      stream_;
  std::string ref_;
  std::string digest_;
  int64_t size_;
  int64_t offset_ = 0;
  bool finished_ = false;
  content::WriteContentRequest req_;
  content::WriteContentResponse resp_;
};

}  // namespace

Result<std::unique_ptr<ContentWriter>> ContainerdClient::openContentWriter(
    const std::string& ref, const std::string& expectedDigest, int64_t expectedSize,
    const Call& call) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  prepare(*ctx, options_, call);
  auto stream = stubs_->content->Write(ctx.get());
  auto writer = std::make_unique<GrpcContentWriter>(std::move(ctx), std::move(stream), ref,
                                                    expectedDigest, expectedSize);
  Status st = writer->begin();
  if (!st.ok()) return st.error();
  return std::unique_ptr<ContentWriter>(std::move(writer));
}

Status ContainerdClient::writeBlob(const std::string& ref, const std::string& digest,
                                   const std::string& data,
                                   const std::map<std::string, std::string>& labels,
                                   const Call& call) {
  auto w = openContentWriter(ref, digest, static_cast<int64_t>(data.size()), call);
  if (!w.ok()) {
    if (isAlreadyExists(w.error())) return {};  // present already
    return w.error();
  }
  if (!data.empty()) {
    Status st = (*w)->write(data.data(), data.size());
    if (!st.ok()) return st;
  }
  return (*w)->commit(labels);
}

Result<std::string> ContainerdClient::readContent(const std::string& digest, int64_t maxBytes,
                                                  const Call& call) {
  SBX_CTX(ctx, call);
  content::ReadContentRequest req;
  req.set_digest(digest);
  auto reader = stubs_->content->Read(&ctx, req);
  content::ReadContentResponse resp;
  std::string out;
  while (reader->Read(&resp)) {
    if (static_cast<int64_t>(out.size() + resp.data().size()) > maxBytes) {
      ctx.TryCancel();
      reader->Finish();
      return Error("containerd: content.Read " + digest + ": larger than " +
                       std::to_string(maxBytes) + " bytes",
                   kErrInvalidArgument);
    }
    out += resp.data();
  }
  grpc::Status st = reader->Finish();
  if (!st.ok()) return mapStatus(st, "content.Read " + digest);
  return out;
}

Status ContainerdClient::updateContentLabels(const std::string& digest,
                                             const std::map<std::string, std::string>& labels,
                                             const Call& call) {
  SBX_CTX(ctx, call);
  content::UpdateRequest req;
  req.mutable_info()->set_digest(digest);
  copyLabels(labels, req.mutable_info()->mutable_labels());
  for (const auto& [k, v] : labels) req.mutable_update_mask()->add_paths("labels." + k);
  content::UpdateResponse resp;
  grpc::Status st = stubs_->content->Update(&ctx, req, &resp);
  if (!st.ok()) return mapStatus(st, "content.Update " + digest);
  return {};
}

// ---- images --------------------------------------------------------------------

Result<ImageRecord> ContainerdClient::getImage(const std::string& name, const Call& call) {
  SBX_CTX(ctx, call);
  images::GetImageRequest req;
  req.set_name(name);
  images::GetImageResponse resp;
  grpc::Status st = stubs_->images->Get(&ctx, req, &resp);
  if (!st.ok()) return mapStatus(st, "images.Get " + name);
  return ImageRecord{resp.image().name(), fromPb(resp.image().target()),
                     toMap(resp.image().labels())};
}

Status ContainerdClient::createImage(const ImageRecord& image, const Call& call) {
  SBX_CTX(ctx, call);
  images::CreateImageRequest req;
  auto* img = req.mutable_image();
  img->set_name(image.name);
  toPb(image.target, img->mutable_target());
  copyLabels(image.labels, img->mutable_labels());
  images::CreateImageResponse resp;
  grpc::Status st = stubs_->images->Create(&ctx, req, &resp);
  if (!st.ok()) return mapStatus(st, "images.Create " + image.name);
  return {};
}

Status ContainerdClient::deleteImage(const std::string& name, const Call& call) {
  SBX_CTX(ctx, call);
  images::DeleteImageRequest req;
  req.set_name(name);
  google::protobuf::Empty resp;
  grpc::Status st = stubs_->images->Delete(&ctx, req, &resp);
  if (!st.ok()) return mapStatus(st, "images.Delete " + name);
  return {};
}

// ---- snapshots -------------------------------------------------------------------

Result<std::vector<Mount>> ContainerdClient::prepareSnapshot(
    const std::string& snapshotter, const std::string& key, const std::string& parent,
    const std::map<std::string, std::string>& labels, const Call& call) {
  SBX_CTX(ctx, call);
  snapshots::PrepareSnapshotRequest req;
  req.set_snapshotter(snapshotter);
  req.set_key(key);
  req.set_parent(parent);
  copyLabels(labels, req.mutable_labels());
  snapshots::PrepareSnapshotResponse resp;
  grpc::Status st = stubs_->snapshots->Prepare(&ctx, req, &resp);
  if (!st.ok()) return mapStatus(st, "snapshots.Prepare " + key);
  std::vector<Mount> out;
  for (const auto& m : resp.mounts()) out.push_back(fromPb(m));
  return out;
}

Result<std::vector<Mount>> ContainerdClient::snapshotMounts(const std::string& snapshotter,
                                                            const std::string& key,
                                                            const Call& call) {
  SBX_CTX(ctx, call);
  snapshots::MountsRequest req;
  req.set_snapshotter(snapshotter);
  req.set_key(key);
  snapshots::MountsResponse resp;
  grpc::Status st = stubs_->snapshots->Mounts(&ctx, req, &resp);
  if (!st.ok()) return mapStatus(st, "snapshots.Mounts " + key);
  std::vector<Mount> out;
  for (const auto& m : resp.mounts()) out.push_back(fromPb(m));
  return out;
}

Status ContainerdClient::commitSnapshot(const std::string& snapshotter, const std::string& name,
                                        const std::string& key,
                                        const std::map<std::string, std::string>& labels,
                                        const Call& call) {
  SBX_CTX(ctx, call);
  snapshots::CommitSnapshotRequest req;
  req.set_snapshotter(snapshotter);
  req.set_name(name);
  req.set_key(key);
  copyLabels(labels, req.mutable_labels());
  google::protobuf::Empty resp;
  grpc::Status st = stubs_->snapshots->Commit(&ctx, req, &resp);
  if (!st.ok()) return mapStatus(st, "snapshots.Commit " + name);
  return {};
}

Status ContainerdClient::removeSnapshot(const std::string& snapshotter, const std::string& key,
                                        const Call& call) {
  SBX_CTX(ctx, call);
  snapshots::RemoveSnapshotRequest req;
  req.set_snapshotter(snapshotter);
  req.set_key(key);
  google::protobuf::Empty resp;
  grpc::Status st = stubs_->snapshots->Remove(&ctx, req, &resp);
  if (!st.ok()) return mapStatus(st, "snapshots.Remove " + key);
  return {};
}

Result<SnapshotInfo> ContainerdClient::statSnapshot(const std::string& snapshotter,
                                                    const std::string& key, const Call& call) {
  SBX_CTX(ctx, call);
  snapshots::StatSnapshotRequest req;
  req.set_snapshotter(snapshotter);
  req.set_key(key);
  snapshots::StatSnapshotResponse resp;
  grpc::Status st = stubs_->snapshots->Stat(&ctx, req, &resp);
  if (!st.ok()) return mapStatus(st, "snapshots.Stat " + key);
  return fromPb(resp.info());
}

Result<std::vector<SnapshotInfo>> ContainerdClient::listSnapshots(const std::string& snapshotter,
                                                                  const Call& call) {
  SBX_CTX(ctx, call);
  snapshots::ListSnapshotsRequest req;
  req.set_snapshotter(snapshotter);
  auto reader = stubs_->snapshots->List(&ctx, req);
  snapshots::ListSnapshotsResponse resp;
  std::vector<SnapshotInfo> out;
  while (reader->Read(&resp)) {
    for (const auto& i : resp.info()) out.push_back(fromPb(i));
  }
  grpc::Status st = reader->Finish();
  if (!st.ok()) return mapStatus(st, "snapshots.List");
  return out;
}

// ---- diff --------------------------------------------------------------------------

Result<Descriptor> ContainerdClient::applyLayer(const Descriptor& layer,
                                                const std::vector<Mount>& mounts,
                                                const Call& call) {
  SBX_CTX(ctx, call);
  diff::ApplyRequest req;
  toPb(layer, req.mutable_diff());
  for (const auto& m : mounts) toPb(m, req.add_mounts());
  diff::ApplyResponse resp;
  grpc::Status st = stubs_->diff->Apply(&ctx, req, &resp);
  if (!st.ok()) return mapStatus(st, "diff.Apply " + layer.digest);
  return fromPb(resp.applied());
}

// ---- containers ----------------------------------------------------------------------

Status ContainerdClient::createContainer(const ContainerCreate& c, const Call& call) {
  SBX_CTX(ctx, call);
  containers::CreateContainerRequest req;
  auto* pc = req.mutable_container();
  pc->set_id(c.id);
  pc->set_image(c.image);
  copyLabels(c.labels, pc->mutable_labels());
  pc->mutable_runtime()->set_name(c.runtimeName);
  if (!c.runtimeBinary.empty() || !c.runtimeRoot.empty()) {
    containerd::runc::v1::Options opts;
    opts.set_binary_name(c.runtimeBinary);
    opts.set_root(c.runtimeRoot);
    auto* any = pc->mutable_runtime()->mutable_options();
    any->set_type_url(kRuncOptionsTypeUrl);
    any->set_value(opts.SerializeAsString());
  }
  pc->mutable_spec()->set_type_url(kSpecTypeUrl);
  pc->mutable_spec()->set_value(c.specJson);
  pc->set_snapshotter(c.snapshotter);
  pc->set_snapshot_key(c.snapshotKey);
  containers::CreateContainerResponse resp;
  grpc::Status st = stubs_->containers->Create(&ctx, req, &resp);
  if (!st.ok()) return mapStatus(st, "containers.Create " + c.id);
  return {};
}

Result<ContainerRecord> ContainerdClient::getContainer(const std::string& id, const Call& call) {
  SBX_CTX(ctx, call);
  containers::GetContainerRequest req;
  req.set_id(id);
  containers::GetContainerResponse resp;
  grpc::Status st = stubs_->containers->Get(&ctx, req, &resp);
  if (!st.ok()) return mapStatus(st, "containers.Get " + id);
  return fromPb(resp.container());
}

Result<std::vector<ContainerRecord>> ContainerdClient::listContainers(const std::string& filter,
                                                                      const Call& call) {
  SBX_CTX(ctx, call);
  containers::ListContainersRequest req;
  if (!filter.empty()) req.add_filters(filter);
  containers::ListContainersResponse resp;
  grpc::Status st = stubs_->containers->List(&ctx, req, &resp);
  if (!st.ok()) return mapStatus(st, "containers.List");
  std::vector<ContainerRecord> out;
  for (const auto& c : resp.containers()) out.push_back(fromPb(c));
  return out;
}

Status ContainerdClient::deleteContainer(const std::string& id, const Call& call) {
  SBX_CTX(ctx, call);
  containers::DeleteContainerRequest req;
  req.set_id(id);
  google::protobuf::Empty resp;
  grpc::Status st = stubs_->containers->Delete(&ctx, req, &resp);
  if (!st.ok()) return mapStatus(st, "containers.Delete " + id);
  return {};
}

// ---- tasks ----------------------------------------------------------------------------

Result<uint32_t> ContainerdClient::createTask(const TaskCreate& t, const Call& call) {
  SBX_CTX(ctx, call);
  tasks::CreateTaskRequest req;
  req.set_container_id(t.containerId);
  for (const auto& m : t.rootfs) toPb(m, req.add_rootfs());
  req.set_stdout(t.stdoutUri);
  req.set_stderr(t.stderrUri);
  tasks::CreateTaskResponse resp;
  grpc::Status st = stubs_->tasks->Create(&ctx, req, &resp);
  if (!st.ok()) return mapStatus(st, "tasks.Create " + t.containerId);
  return resp.pid();
}

Result<uint32_t> ContainerdClient::startTask(const std::string& containerId, const Call& call) {
  SBX_CTX(ctx, call);
  tasks::StartRequest req;
  req.set_container_id(containerId);
  tasks::StartResponse resp;
  grpc::Status st = stubs_->tasks->Start(&ctx, req, &resp);
  if (!st.ok()) return mapStatus(st, "tasks.Start " + containerId);
  return resp.pid();
}

Status ContainerdClient::killTask(const std::string& containerId, uint32_t signal, bool all,
                                  const Call& call) {
  SBX_CTX(ctx, call);
  tasks::KillRequest req;
  req.set_container_id(containerId);
  req.set_signal(signal);
  req.set_all(all);
  google::protobuf::Empty resp;
  grpc::Status st = stubs_->tasks->Kill(&ctx, req, &resp);
  if (!st.ok()) return mapStatus(st, "tasks.Kill " + containerId);
  return {};
}

Result<TaskInfo> ContainerdClient::deleteTask(const std::string& containerId, const Call& call) {
  SBX_CTX(ctx, call);
  tasks::DeleteTaskRequest req;
  req.set_container_id(containerId);
  tasks::DeleteResponse resp;
  grpc::Status st = stubs_->tasks->Delete(&ctx, req, &resp);
  if (!st.ok()) return mapStatus(st, "tasks.Delete " + containerId);
  TaskInfo t;
  t.containerId = resp.id();
  t.pid = resp.pid();
  t.exitStatus = resp.exit_status();
  t.status = TaskStatus::Stopped;
  return t;
}

Result<TaskInfo> ContainerdClient::getTask(const std::string& containerId, const Call& call) {
  SBX_CTX(ctx, call);
  tasks::GetRequest req;
  req.set_container_id(containerId);
  tasks::GetResponse resp;
  grpc::Status st = stubs_->tasks->Get(&ctx, req, &resp);
  if (st.error_code() == grpc::StatusCode::NOT_FOUND) {
    TaskInfo t;
    t.containerId = containerId;
    t.status = TaskStatus::NotFound;
    return t;
  }
  if (!st.ok()) return mapStatus(st, "tasks.Get " + containerId);
  return fromPb(resp.process());
}

Result<std::vector<TaskInfo>> ContainerdClient::listTasks(const Call& call) {
  SBX_CTX(ctx, call);
  tasks::ListTasksRequest req;
  tasks::ListTasksResponse resp;
  grpc::Status st = stubs_->tasks->List(&ctx, req, &resp);
  if (!st.ok()) return mapStatus(st, "tasks.List");
  std::vector<TaskInfo> out;
  for (const auto& p : resp.tasks()) out.push_back(fromPb(p));
  return out;
}

// ---- events ----------------------------------------------------------------------------

void StreamCanceller::cancel() {
  std::lock_guard<std::mutex> lock(mutex_);
  cancelled_ = true;
  if (cancelStream_) cancelStream_();
}

bool StreamCanceller::cancelled() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return cancelled_;
}

Status ContainerdClient::subscribeTaskEvents(const std::function<void(const TaskEvent&)>& onEvent,
                                             StreamCanceller& canceller) {
  // No deadline: the stream lives as long as containerd does. The filter
  // keeps other namespaces' and non-task events out.
  grpc::ClientContext ctx;
  {
    std::lock_guard<std::mutex> lock(canceller.mutex_);
    if (canceller.cancelled_) return {};
    canceller.cancelStream_ = [&ctx] { ctx.TryCancel(); };
  }
  events::SubscribeRequest req;
  req.add_filters("namespace==" + options_.namespaceName + ",topic~=\"^/tasks/\"");
  auto reader = stubs_->events->Subscribe(&ctx, req);
  events::Envelope env;
  while (reader->Read(&env)) {
    TaskEvent ev;
    ev.topic = env.topic();
    ev.namespaceName = env.namespace_();
    const std::string& payload = env.event().value();
    if (ev.topic == "/tasks/exit") {
      containerd::events::TaskExit e;
      if (e.ParseFromString(payload)) {
        ev.kind = TaskEvent::Kind::Exit;
        ev.containerId = e.container_id();
        ev.execId = e.id();
        ev.pid = e.pid();
        ev.exitStatus = e.exit_status();
      }
    } else if (ev.topic == "/tasks/oom") {
      containerd::events::TaskOOM e;
      if (e.ParseFromString(payload)) {
        ev.kind = TaskEvent::Kind::Oom;
        ev.containerId = e.container_id();
      }
    } else if (ev.topic == "/tasks/start") {
      containerd::events::TaskStart e;
      if (e.ParseFromString(payload)) {
        ev.kind = TaskEvent::Kind::Start;
        ev.containerId = e.container_id();
        ev.pid = e.pid();
      }
    } else if (ev.topic == "/tasks/delete") {
      containerd::events::TaskDelete e;
      if (e.ParseFromString(payload)) {
        ev.kind = TaskEvent::Kind::Delete;
        ev.containerId = e.container_id();
        ev.pid = e.pid();
        ev.exitStatus = e.exit_status();
      }
    }
    onEvent(ev);
  }
  grpc::Status st = reader->Finish();
  bool cancelled;
  {
    std::lock_guard<std::mutex> lock(canceller.mutex_);
    canceller.cancelStream_ = nullptr;
    cancelled = canceller.cancelled_;
  }
  if (cancelled) return {};
  if (!st.ok()) return mapStatus(st, "events.Subscribe");
  return Error("containerd: events.Subscribe: stream ended", kErrUnavailable);
}

}  // namespace sbx::runtime
