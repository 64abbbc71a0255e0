#pragma once
// RegistryClient: fetches manifests and blobs from container registries with
// the Registry HTTP API v2, on libcurl. Blocking: for WorkerPool jobs, never
// the loop thread.
//
// Endpoints: a registry with mirrors configured is reached through its
// mirrors only, in order (a pull never falls back to the registry itself);
// otherwise "https://<host>" ("docker.io" → "https://registry-1.docker.io"),
// or "http://<host>" for hosts listed as insecure.
//
// Auth: a 401 answer's WWW-Authenticate challenge is followed: Bearer → a
// token from the realm (anonymous, or with the host's basic credentials),
// cached per (endpoint, repository) for its lifetime; Basic → the host's
// configured credentials. Credentials are only sent to the host they are
// configured for (never to a mirror of it, never across redirects).
//
// Every request is bounded by the caller's deadline (the time left becomes
// curl's total timeout), a 10 s connect timeout and a low-speed limit.
// Errors read like "GET http://127.0.0.1:5000/v2/library/nope/manifests/1:
// 404 Not Found (MANIFEST_UNKNOWN: manifest unknown)"; Error::code carries a
// RuntimeErrc (kErrNotFound for 404, kErrUnavailable for connection failures,
// kErrTimeout when the deadline or the low-speed limit cut a request).
//
// Thread-safe: requests share nothing but the token cache (under a mutex);
// each thread reuses its own curl handle (and so its connections).

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/Result.h"

namespace sbx::runtime {

namespace detail {
struct RegistryRequest;   // one GET (RegistryClient.cpp)
struct RegistryResponse;  // its answer
}  // namespace detail

// A monotonic point in time by which a whole operation (a pull) must end.
using Deadline = std::chrono::steady_clock::time_point;

// An already-parsed, normalized image reference (parsing lives elsewhere).
struct ImageRef {
  std::string registry;    // "docker.io", "127.0.0.1:5000"
  std::string repository;  // "library/alpine"
  std::string tag;         // "3.20"; "" when only a digest is given
  std::string digest;      // "sha256:<64 hex>" or ""

  // "docker.io/library/alpine:3.20", "docker.io/library/alpine@sha256:...",
  // or with both when both are set (the digest then decides what is pulled).
  std::string name() const;
  // What the manifest is fetched by: the digest if set, else the tag
  // ("latest" when neither is set).
  std::string reference() const;
};

struct RegistryConfig {
  // Registry host → mirror base URLs with scheme ("http://127.0.0.1:5000"),
  // tried in order, instead of the registry.
  std::map<std::string, std::vector<std::string>> mirrors;
  // Hosts reached over plain http.
  std::vector<std::string> insecure;
  // Host → (user, password), for Basic challenges and token requests.
  std::map<std::string, std::pair<std::string, std::string>> basicAuth;
};

struct RegistryClientOptions {
  std::chrono::milliseconds connectTimeout{10000};
  // A transfer slower than lowSpeedBytesPerSecond for lowSpeedTime aborts.
  long lowSpeedBytesPerSecond = 1024;
  std::chrono::seconds lowSpeedTime{30};
  int64_t maxManifestBytes = 4 << 20;
  std::string userAgent = "sandboxd/0.1";
};

// One WWW-Authenticate challenge. `scheme` and parameter names are
// lowercased (they are case-insensitive); values are unquoted and unescaped.
// A token68 (e.g. "Negotiate abc==") is kept under the parameter name "".
struct AuthChallenge {
  std::string scheme;
  std::map<std::string, std::string> params;

  std::string param(const std::string& name) const {
    auto it = params.find(name);
    return it == params.end() ? std::string() : it->second;
  }
};

// Parses a WWW-Authenticate header value (RFC 7235: one or more challenges,
// comma-separated, with quoted-string or token parameter values). Lenient:
// malformed pieces are skipped, an unterminated quoted string runs to the
// end. Several headers may be joined with ", " before parsing.
std::vector<AuthChallenge> parseWwwAuthenticate(std::string_view header);

// The base URLs ("scheme://host[:port]", no trailing slash) tried for
// `registry`, in order; `mirror` tells whether they are mirrors.
struct RegistryEndpoint {
  std::string baseUrl;
  bool mirror = false;
};
std::vector<RegistryEndpoint> registryEndpoints(const RegistryConfig& config,
                                                const std::string& registry);

// "sha256:<hex>" of `data`.
std::string sha256Digest(std::string_view data);
// "sha256:" followed by 64 lowercase hex digits (the only algorithm pulled).
bool isSha256Digest(std::string_view digest);

// A manifest, index or manifest list as served.
struct FetchedManifest {
  std::string mediaType;  // Content-Type, else the document's mediaType
  std::string digest;     // "sha256:..." of body (checked against the ref's
                          // digest, and against Docker-Content-Digest)
  std::string body;
  std::string endpoint;  // base URL that served it
};

class RegistryClient {
 public:
  // Receives a blob's bytes as they arrive; an error aborts the transfer.
  using BlobSink = std::function<Status(const char* data, size_t len)>;

  explicit RegistryClient(RegistryConfig config, RegistryClientOptions options = {});
  ~RegistryClient();
  RegistryClient(const RegistryClient&) = delete;
  RegistryClient& operator=(const RegistryClient&) = delete;

  const RegistryConfig& config() const { return config_; }

  // GET /v2/<repo>/manifests/<reference> (a tag or "sha256:..."), trying
  // the endpoints in order. Body capped at maxManifestBytes; by digest, the
  // body must hash to it.
  Result<FetchedManifest> fetchManifest(const ImageRef& ref, const std::string& reference,
                                        Deadline deadline);

  // GET /v2/<repo>/blobs/<digest>, streamed to `sink` in chunks. Redirects
  // (http/https only, at most 5) are followed. Fails when the bytes do not
  // hash to `digest` or their count differs from `size` (checked as they
  // arrive: the sink never gets more than `size` bytes). `preferEndpoint`
  // (the one that served the manifest) is tried first. Another endpoint is
  // only tried when the previous one failed before delivering any byte.
  Status fetchBlob(const ImageRef& ref, const std::string& digest, int64_t size,
                   const BlobSink& sink, Deadline deadline, const std::string& preferEndpoint = {});

 private:
  using Request = detail::RegistryRequest;
  using Response = detail::RegistryResponse;
  struct Token {
    enum class Kind { Bearer, Basic } kind = Kind::Bearer;
    std::string value;  // bearer token
    std::chrono::steady_clock::time_point expires;
  };

  // One request with the auth dance: cached credentials first; on 401,
  // answer the challenge once and retry.
  Result<Response> authorizedGet(const RegistryEndpoint& endpoint, const ImageRef& ref,
                                 Request& request);
  Status fetchToken(const RegistryEndpoint& endpoint, const ImageRef& ref,
                    const AuthChallenge& challenge, Deadline deadline);
  // Configured basic credentials valid for this endpoint, or null.
  const std::pair<std::string, std::string>* credentialsFor(const RegistryEndpoint& endpoint,
                                                            const ImageRef& ref) const;

  RegistryConfig config_;
  RegistryClientOptions options_;
  std::mutex tokensMutex_;
  std::map<std::string, Token> tokens_;  // "<baseUrl> <repository>" → token
};

}  // namespace sbx::runtime
