#include "node/SandboxApi.h"

#include <sys/stat.h>

#include <fstream>
#include <random>

#include "app/LoopStats.h"
#include "app/SharedSecret.h"
#include "http/HttpServer.h"
#include "http/Paging.h"
#include "json/JsonReader.h"
#include "json/JsonWriter.h"
#include "node/Admission.h"
#include "node/SandboxBackend.h"
#include "node/SandboxStore.h"
#include "reactor/EventLoop.h"
#include "reactor/WorkerPool.h"

namespace sbx::node {

namespace {

void respondJson(const http::ExchangePtr& ex, int status, const std::string& body) {
  ex->respond(status, body);
}

std::string sandboxBody(const SandboxState& s) {
  json::JsonWriter w(1024);
  w.beginObject().key("sandbox");
  writeSandboxJson(w, s);
  w.endObject();
  return w.take();
}

int statusFor(const Error& e, int fallback) { return e.code >= 400 && e.code < 600 ? e.code : fallback; }

}  // namespace

SandboxApi::SandboxApi(SandboxBackend& provisioner, Admission& admission, WorkerPool& pool,
                       SandboxApiOptions options)
    : provisioner_(provisioner), admission_(admission), pool_(pool), options_(std::move(options)) {}

bool SandboxApi::authorized(const std::string* header, const std::string& secret) {
  return app::bearerMatches(header, secret);
}

http::Handler SandboxApi::guarded(http::Handler h) {
  return [this, h = std::move(h)](const http::ExchangePtr& ex) {
    if (!authorized(ex->request().headers.find("Authorization"), options_.sharedSecret)) {
      ex->respondError(401, "unauthorized");
      return;
    }
    h(ex);
  };
}

void SandboxApi::registerRoutes(http::Router& r) {
  r.add("GET", "/v1/node/status", guarded([this](const http::ExchangePtr& ex) { nodeStatus(ex); }));
  if (options_.loop) {
    r.add("GET", "/v1/node/loop", guarded([this](const http::ExchangePtr& ex) { loopStats(ex); }));
  }
  r.add("POST", "/v1/sandboxes/statuses",
        guarded([this](const http::ExchangePtr& ex) { statuses(ex); }));
  r.add("POST", "/v1/sandboxes", guarded([this](const http::ExchangePtr& ex) { createSandbox(ex); }));
  r.add("GET", "/v1/sandboxes", guarded([this](const http::ExchangePtr& ex) { listSandboxes(ex); }));
  r.add("GET", "/v1/sandboxes/{id}", guarded([this](const http::ExchangePtr& ex) { getSandbox(ex); }));
  r.add("DELETE", "/v1/sandboxes/{id}",
        guarded([this](const http::ExchangePtr& ex) { deleteSandbox(ex); }));
  r.add("POST", "/v1/reconcile", guarded([this](const http::ExchangePtr& ex) { reconcile(ex); }));
  r.add("GET", "/v1/sandboxes/{id}/logs",
        guarded([this](const http::ExchangePtr& ex) { logs(ex, false); }));
  r.add("GET", "/v1/sandboxes/{id}/containers/{name}/logs",
        guarded([this](const http::ExchangePtr& ex) { logs(ex, true); }));
}

void SandboxApi::nodeStatus(const http::ExchangePtr& ex) {
  json::JsonWriter w(512);
  w.beginObject().kv("ok", true).key("resources");
  admission_.writeResources(w, rfc3339Now(), options_.externalAddress);
  w.endObject();
  respondJson(ex, 200, w.str());
}

// The event loop's health (app/LoopStats.h).
void SandboxApi::loopStats(const http::ExchangePtr& ex) { app::serveLoopStats(ex, *options_.loop); }

void SandboxApi::createSandbox(const http::ExchangePtr& ex) {
  thread_local json::JsonReader reader;
  auto root = reader.parse(ex->request().body);
  if (!root.ok()) {
    ex->respondError(400, root.message());
    return;
  }
  auto spec = decodeSandboxSpec(*root, reader);
  if (!spec.ok()) {
    ex->respondError(400, spec.message());
    return;
  }
  if (spec->id.empty()) {
    // Unique within this process even for several creates in one second;
    // the random start keeps restarts from reusing a recent id.
    static const uint64_t seed = std::random_device{}();
    do {
      spec->id = generateSandboxId(std::chrono::system_clock::now(), seed + ++idCounter_);
    } while (provisioner_.find(spec->id));
  }
  provisioner_.create(std::move(*spec), [ex](Result<const SandboxState*> r) {
    if (!r.ok()) {
      ex->respondError(statusFor(r.error(), 400), r.message());
      return;
    }
    respondJson(ex, 202, sandboxBody(**r));
  });
}

void SandboxApi::listSandboxes(const http::ExchangePtr& ex) {
  json::JsonWriter w(4096);
  http::writePage(w, provisioner_.sandboxes(), http::pageParams(ex->request(), 20, 200),
                  [](json::JsonWriter& jw, const SandboxState& s) { writeSandboxJson(jw, s); });
  respondJson(ex, 200, w.str());
}

void SandboxApi::getSandbox(const http::ExchangePtr& ex) {
  const std::string& id = ex->request().param("id");
  provisioner_.refresh(id, [ex, id](Result<const SandboxState*> r) {
    if (!r.ok()) {
      int status = statusFor(r.error(), 500);
      ex->respondError(status, status == 404 ? "sandbox not found: " + id : r.message());
      return;
    }
    respondJson(ex, 200, sandboxBody(**r));
  });
}

Result<std::vector<std::string>> decodeStatusesRequest(std::string_view body, size_t maxIds) {
  thread_local json::JsonReader reader;
  auto root = reader.parse(body);
  if (!root.ok()) return root.error();
  if (root->kind() != json::JsonKind::Object) return Error("request body: expected object");
  std::vector<std::string> ids;
  json::JsonCursor idsCursor = root->field({"ids", "sandbox_ids", "sandboxIds"});
  if (idsCursor.size() > maxIds) return Error("too many ids (max " + std::to_string(maxIds) + ")");
  idsCursor.forEach([&](const json::JsonCursor& c) {
    std::string id;
    if (c.get(id)) {
      ids.push_back(std::move(id));
    } else if (!c.present()) {
      c.fail("expected string");  // null
    }
  });
  if (!reader.ok()) return Error(reader.error());
  return ids;
}

void SandboxApi::statuses(const http::ExchangePtr& ex) {
  auto decoded = decodeStatusesRequest(ex->request().body, options_.maxStatusIds);
  if (!decoded.ok()) {
    ex->respondError(400, decoded.message());
    return;
  }
  const std::vector<std::string>& ids = *decoded;
  json::JsonWriter w(4096);
  w.beginObject().key("items").beginArray();
  std::vector<std::string> missing;
  for (const auto& id : ids) {
    const SandboxState* s = provisioner_.find(id);
    if (!s) {
      missing.push_back(id);
      continue;
    }
    w.beginObject().kv("id", id).kv("phase", phaseName(s->phase)).kv("ip", s->ip).kv("error", s->error);
    w.key("unhealthy_containers").beginArray();
    for (const auto& c : s->containers) {
      if (c.phase == ContainerPhase::Running) continue;
      w.beginObject().kv("name", c.name).kv("phase", phaseName(c.phase)).kv("error", c.error)
          .kv("task_status", c.taskStatus).endObject();
    }
    w.endArray().endObject();
  }
  w.endArray().key("missing").beginArray();
  for (const auto& m : missing) w.value(m);
  w.endArray().endObject();
  respondJson(ex, 200, w.str());
}

void SandboxApi::logs(const http::ExchangePtr& ex, bool oneContainer) {
  const std::string& id = ex->request().param("id");
  const SandboxState* s = provisioner_.find(id);
  if (!s) {
    ex->respondError(404, "sandbox not found: " + id);
    return;
  }
  struct Source {
    std::string name;
    std::string path;
  };
  std::vector<Source> sources;
  for (const auto& c : s->containers) {
    if (oneContainer && c.name != ex->request().param("name")) continue;
    sources.push_back(Source{c.name, provisioner_.store().logPath(id, c.name)});
  }
  if (oneContainer && sources.empty()) {
    ex->respondError(404, "container not found: " + ex->request().param("name"));
    return;
  }
  struct Read {
    int status = 200;
    std::string error;
    std::string body;
  };
  const int64_t perFile = options_.logReadLimitContainer;
  const int64_t total = options_.logReadLimitSandbox;
  auto submitted = pool_.call(
      [sources, perFile, total, id]() -> Read {
        Read out;
        int64_t sum = 0;
        json::JsonWriter w(4096);
        w.beginObject().kv("sandbox_id", id).key("logs").beginObject().key("lines").beginArray();
        for (const auto& src : sources) {
          struct stat st{};
          if (::stat(src.path.c_str(), &st) != 0) continue;  // no output yet
          if (st.st_size > perFile) {
            out.status = 413;
            out.error = "log of container " + src.name + " is " + std::to_string(st.st_size) +
                        " bytes, over the read limit of " + std::to_string(perFile);
            return out;
          }
          sum += st.st_size;
          if (sum > total) {
            out.status = 413;
            out.error = "logs of sandbox " + id + " exceed the read limit of " + std::to_string(total) +
                        " bytes";
            return out;
          }
          std::ifstream f(src.path, std::ios::binary);
          if (!f) {
            out.status = 500;
            out.error = "cannot read log of container " + src.name;
            return out;
          }
          std::string line;
          const std::string prefix = "[" + src.name + "] ";
          while (std::getline(f, line)) w.value(prefix + line);
          if (f.bad()) {
            out.status = 500;
            out.error = "error reading log of container " + src.name;
            return out;
          }
        }
        w.endArray().endObject().endObject();
        out.body = w.take();
        return out;
      },
      [ex](std::optional<Read> r) {
        if (!r) return ex->respondError(503, "log read cancelled");
        if (r->status != 200) return ex->respondError(r->status, r->error);
        ex->respond(200, r->body);
      },
      "logs");
  if (!submitted.ok()) ex->respondError(503, submitted.message());
}

void SandboxApi::deleteSandbox(const http::ExchangePtr& ex) {
  const std::string id = ex->request().param("id");
  // An id no sandbox can have ("..", "a/b", 10,000 characters) is a bad
  // request, not an idempotent "already gone".
  if (Status st = validateSandboxId(id); !st.ok()) {
    ex->respondError(400, st.message());
    return;
  }
  provisioner_.remove(id, [ex, id](Status st) {
    if (!st.ok()) {
      ex->respondError(500, "delete " + id + ": " + st.message());
      return;
    }
    json::JsonWriter w;
    w.beginObject().kv("id", id).kv("phase", "deleted").endObject();
    ex->respond(200, w.str());
  });
}

// Answers when the pass is done (a pass already under way answers this
// request too).
void SandboxApi::reconcile(const http::ExchangePtr& ex) {
  provisioner_.reconcile([ex](Status st) {
    if (!st.ok()) {
      ex->respondError(500, "reconcile: " + st.message());
      return;
    }
    ex->respond(200, "{\"ok\":true}");
  });
}

}  // namespace sbx::node
