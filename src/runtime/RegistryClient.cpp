#include "runtime/RegistryClient.h"

#include <curl/curl.h>
#include <openssl/evp.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "json/JsonReader.h"
#include "runtime/ContainerdClient.h"  // RuntimeErrc

namespace sbx::runtime {

namespace {

using SteadyClock = std::chrono::steady_clock;

constexpr char kAcceptManifests[] =
    "Accept: application/vnd.oci.image.index.v1+json, "
    "application/vnd.docker.distribution.manifest.list.v2+json, "
    "application/vnd.oci.image.manifest.v1+json, "
    "application/vnd.docker.distribution.manifest.v2+json";

constexpr const char* kManifestMediaTypes[] = {
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
};

// Error bodies are only read for the registry's error codes.
constexpr int64_t kMaxErrorBody = 64 << 10;
constexpr int64_t kMaxTokenBody = 1 << 20;
// Tokens are refreshed this long before they expire, so a request never
// starts with a token about to lapse.
constexpr std::chrono::seconds kTokenMargin{5};
// The Docker token spec's default lifetime when expires_in is missing.
constexpr std::chrono::seconds kDefaultTokenLifetime{60};

// ---- small text helpers ----------------------------------------------------------

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

std::string toLower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = lower(c);
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() &&
         (s.front() == ' ' || s.front() == '\t' || s.front() == '\r' || s.front() == '\n')) {
    s.remove_prefix(1);
  }
  while (!s.empty() &&
         (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n')) {
    s.remove_suffix(1);
  }
  return s;
}

bool startsWith(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && s.substr(0, prefix.size()) == prefix;
}

bool isHttpUrl(std::string_view url) {
  return startsWith(url, "http://") || startsWith(url, "https://");
}

// "host[:port]" of "scheme://host[:port][/...]".
std::string hostOf(std::string_view url) {
  size_t p = url.find("://");
  if (p != std::string_view::npos) url.remove_prefix(p + 3);
  size_t slash = url.find('/');
  if (slash != std::string_view::npos) url = url.substr(0, slash);
  return std::string(url);
}

const char* reasonPhrase(long status) {
  switch (status) {
    case 200:
      return "OK";
    case 206:
      return "Partial Content";
    case 301:
      return "Moved Permanently";
    case 302:
      return "Found";
    case 307:
      return "Temporary Redirect";
    case 308:
      return "Permanent Redirect";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 416:
      return "Range Not Satisfiable";
    case 429:
      return "Too Many Requests";
    case 500:
      return "Internal Server Error";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    default:
      return "";
  }
}

// ---- sha256 -----------------------------------------------------------------------

// Incremental SHA-256 over OpenSSL's EVP interface.
class Sha256 {
 public:
  Sha256() : ctx_(EVP_MD_CTX_new()) {
    // Only fails on allocation failure: nothing sensible to continue with.
    if (ctx_ == nullptr || EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr) != 1) {
      std::fprintf(stderr, "fatal: OpenSSL SHA-256 initialisation failed\n");
      std::abort();
    }
  }
  ~Sha256() { EVP_MD_CTX_free(ctx_); }
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void update(const void* data, size_t len) {
    if (len > 0) EVP_DigestUpdate(ctx_, data, len);
  }

  // "sha256:<hex>"; the object is spent afterwards.
  std::string finish() {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_DigestFinal_ex(ctx_, md, &n);
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out = "sha256:";
    out.reserve(7 + 2 * n);
    for (unsigned int i = 0; i < n; ++i) {
      out.push_back(kHex[md[i] >> 4]);
      out.push_back(kHex[md[i] & 0xf]);
    }
    return out;
  }

 private:
  EVP_MD_CTX* ctx_;
};

// ---- curl plumbing ------------------------------------------------------------------

void initCurlOnce() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
      std::fprintf(stderr, "fatal: curl_global_init failed\n");
      std::abort();
    }
  });
}

// One easy handle per thread, reset between requests: curl_easy_reset keeps
// the handle's connection and DNS caches, so a pull's many requests to the
// same registry reuse one connection (and one TLS session).
CURL* threadCurlHandle() {
  struct Holder {
    CURL* handle = nullptr;
    ~Holder() {
      if (handle != nullptr) curl_easy_cleanup(handle);
    }
  };
  thread_local Holder holder;
  if (holder.handle == nullptr) {
    holder.handle = curl_easy_init();
    if (holder.handle == nullptr) {
      std::fprintf(stderr, "fatal: curl_easy_init failed\n");
      std::abort();
    }
  } else {
    curl_easy_reset(holder.handle);
  }
  return holder.handle;
}

struct SlistDeleter {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};
using Slist = std::unique_ptr<curl_slist, SlistDeleter>;

// Percent-encodes all but RFC 3986's unreserved characters.
std::string urlEscape(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '.' || c == '_' || c == '~') {
      out.push_back(ch);
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xf]);
    }
  }
  return out;
}

// "(CODE: message; CODE2: message2)" from a registry's JSON error body, or "".
std::string registryErrors(const std::string& body) {
  if (body.empty() || trim(body).front() != '{') return "";
  json::JsonReader reader;
  auto root = reader.parse(body);
  if (!root.ok()) return "";
  std::string out;
  root->field({"errors"}).forEach([&](const json::JsonCursor& e) {
    std::string code, message;
    e.field({"code"}).get(code);
    e.field({"message"}).get(message);
    if (code.empty() && message.empty()) return;
    if (!out.empty()) out += "; ";
    out += code;
    if (!code.empty() && !message.empty()) out += ": ";
    out += message;
  });
  return out.empty() ? "" : " (" + out + ")";
}

int codeForStatus(long status) {
  if (status == 404) return kErrNotFound;
  if (status == 408 || status == 429 || status >= 500) return kErrUnavailable;
  return kErrOther;
}

}  // namespace

// ---- public helpers ---------------------------------------------------------------

std::string ImageRef::name() const {
  std::string out;
  out.reserve(registry.size() + repository.size() + tag.size() + digest.size() + 3);
  out.append(registry).append("/").append(repository);
  if (!tag.empty()) out.append(":").append(tag);
  if (!digest.empty()) out.append("@").append(digest);
  return out;
}

std::string ImageRef::reference() const {
  if (!digest.empty()) return digest;
  if (!tag.empty()) return tag;
  return "latest";
}

bool isSha256Digest(std::string_view d) {
  if (!startsWith(d, "sha256:") || d.size() != 7 + 64) return false;
  return std::all_of(d.begin() + 7, d.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

std::string sha256Digest(std::string_view data) {
  Sha256 h;
  h.update(data.data(), data.size());
  return h.finish();
}

std::vector<AuthChallenge> parseWwwAuthenticate(std::string_view header) {
  // RFC 7235 §4.1 / §2.1:
  //   challenge  = auth-scheme [ 1*SP ( token68 / #auth-param ) ]
  //   auth-param = token BWS "=" BWS ( token / quoted-string )
  // Challenges and parameters are both comma-separated, so after a comma a
  // token followed by "=" continues the current challenge's parameters and
  // any other token starts a new challenge.
  auto isAlnum = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
  };
  // (strchr would also find the terminating NUL.)
  auto isTchar = [&](char c) {
    return isAlnum(c) || (c != '\0' && std::strchr("!#$%&'*+-.^_`|~", c) != nullptr);
  };
  auto isToken68Char = [&](char c) {
    return isAlnum(c) || (c != '\0' && std::strchr("-._~+/", c) != nullptr);
  };
  const std::string_view s = header;
  size_t i = 0;
  auto skipWs = [&] {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
  };
  auto skipWsAndCommas = [&] {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == ',')) ++i;
  };
  auto readToken = [&]() -> std::string_view {
    size_t start = i;
    while (i < s.size() && isTchar(s[i])) ++i;
    return s.substr(start, i - start);
  };
  // A quoted-string starting at s[i] == '"'; unterminated runs to the end.
  auto readQuoted = [&]() -> std::string {
    std::string out;
    ++i;
    while (i < s.size() && s[i] != '"') {
      if (s[i] == '\\' && i + 1 < s.size()) ++i;
      out.push_back(s[i]);
      ++i;
    }
    if (i < s.size()) ++i;  // closing quote
    return out;
  };
  // Skips an unparseable piece up to the next comma (outside quotes).
  auto skipJunk = [&] {
    while (i < s.size() && s[i] != ',') {
      if (s[i] == '"') {
        readQuoted();
      } else {
        ++i;
      }
    }
  };

  std::vector<AuthChallenge> out;
  while (true) {
    skipWsAndCommas();
    if (i >= s.size()) break;
    std::string_view scheme = readToken();
    if (scheme.empty()) {
      ++i;
      skipJunk();
      continue;
    }
    AuthChallenge ch;
    ch.scheme = toLower(scheme);

    // token68 ("Negotiate abc==", "Basic YWJj="): one opaque token that
    // fills the rest of the challenge. A parameter needs a value after its
    // '=' (an empty one is written ""), so "x=" at the end is a token68 too.
    skipWs();
    {
      const size_t start = i;
      while (i < s.size() && isToken68Char(s[i])) ++i;
      const size_t tokenEnd = i;
      while (i < s.size() && s[i] == '=') ++i;
      const size_t afterEq = i;
      skipWs();
      const bool atEnd = i >= s.size() || s[i] == ',';
      if (tokenEnd > start && atEnd) {
        ch.params[""] = std::string(s.substr(start, afterEq - start));
        out.push_back(std::move(ch));
        continue;
      }
      i = start;
    }

    // auth-params
    while (true) {
      skipWs();
      size_t paramStart = i;
      std::string_view name = readToken();
      skipWs();
      if (name.empty() || i >= s.size() || s[i] != '=') {
        // Not "name=": the start of the next challenge (or junk).
        i = paramStart;
        break;
      }
      ++i;  // '='
      skipWs();
      std::string value;
      if (i < s.size() && s[i] == '"') {
        value = readQuoted();
      } else {
        value = std::string(readToken());
      }
      std::string key = toLower(name);
      // RFC 7235: each parameter name occurs once; keep the first.
      ch.params.emplace(std::move(key), std::move(value));
      skipWs();
      if (i < s.size() && s[i] != ',') skipJunk();
      // Commas (possibly several, RFC 7230 #rule) before the next element.
      skipWsAndCommas();
      if (i >= s.size()) break;
      // Peek: "token =" continues this challenge, anything else ends it.
      size_t peek = i;
      std::string_view next = readToken();
      skipWs();
      bool isParam = !next.empty() && i < s.size() && s[i] == '=';
      i = peek;
      if (!isParam) break;
    }
    out.push_back(std::move(ch));
  }
  return out;
}

std::vector<RegistryEndpoint> registryEndpoints(const RegistryConfig& config,
                                                const std::string& registry) {
  const bool insecure =
      std::find(config.insecure.begin(), config.insecure.end(), registry) != config.insecure.end();
  std::vector<RegistryEndpoint> out;
  auto it = config.mirrors.find(registry);
  if (it != config.mirrors.end() && !it->second.empty()) {
    for (std::string url : it->second) {
      while (!url.empty() && url.back() == '/') url.pop_back();
      if (url.empty()) continue;
      if (!isHttpUrl(url)) {
        // A mirror given as a bare host: https, unless that host is insecure.
        const bool mirrorInsecure =
            std::find(config.insecure.begin(), config.insecure.end(), url) != config.insecure.end();
        url = (mirrorInsecure ? "http://" : "https://") + url;
      }
      out.push_back(RegistryEndpoint{std::move(url), true});
    }
    if (!out.empty()) return out;
  }
  // Docker Hub's API is not served on its reference name.
  const std::string host = registry == "docker.io" ? "registry-1.docker.io" : registry;
  out.push_back(RegistryEndpoint{(insecure ? "http://" : "https://") + host, false});
  return out;
}

// ---- one HTTP request -------------------------------------------------------------

namespace detail {

struct RegistryRequest {
  std::string url;
  std::vector<std::string> headers;
  Deadline deadline;
  // Buffered bodies (successful ones) larger than this fail the request.
  int64_t maxBody = kMaxErrorBody;
  // Streaming: successful (2xx) bodies go here instead of the buffer.
  const RegistryClient::BlobSink* sink = nullptr;
  // Credentials for this attempt (set by authorizedGet).
  std::string bearer;
  const std::pair<std::string, std::string>* basic = nullptr;
  const char* what = "response";  // for "manifest larger than ..."
};

struct RegistryResponse {
  long status = 0;
  std::string reason;
  std::map<std::string, std::string> headers;  // lowercase names
  std::string body;                            // buffered body: success (no sink) or error

  std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? std::string() : it->second;
  }
};

}  // namespace detail

namespace {

struct TransferState {
  detail::RegistryResponse* resp = nullptr;
  const RegistryClient::BlobSink* sink = nullptr;
  int64_t maxBody = 0;
  const char* what = "";
  Error abortError;  // why a callback stopped the transfer
  bool aborted = false;
};

size_t onHeader(char* data, size_t size, size_t nitems, void* userdata) {
  auto* st = static_cast<TransferState*>(userdata);
  const size_t len = size * nitems;
  std::string_view line = trim(std::string_view(data, len));
  if (startsWith(line, "HTTP/")) {
    // A new response (after a redirect, a 401 or a proxy's CONNECT): forget
    // the previous one's headers and body.
    auto& r = *st->resp;
    r.headers.clear();
    r.body.clear();
    r.reason.clear();
    r.status = 0;
    size_t sp = line.find(' ');
    if (sp != std::string_view::npos) {
      std::string_view rest = line.substr(sp + 1);
      size_t sp2 = rest.find(' ');
      std::string code(rest.substr(0, sp2));
      r.status = std::strtol(code.c_str(), nullptr, 10);
      if (sp2 != std::string_view::npos) r.reason = std::string(trim(rest.substr(sp2 + 1)));
    }
    return len;
  }
  size_t colon = line.find(':');
  if (colon == std::string_view::npos) return len;
  std::string name = toLower(trim(line.substr(0, colon)));
  std::string_view value = trim(line.substr(colon + 1));
  auto [it, inserted] = st->resp->headers.emplace(name, std::string(value));
  // Repeated headers (WWW-Authenticate) join as one comma-separated list.
  if (!inserted) it->second.append(", ").append(value);
  return len;
}

size_t onBody(char* data, size_t size, size_t nmemb, void* userdata) {
  auto* st = static_cast<TransferState*>(userdata);
  const size_t len = size * nmemb;
  auto& r = *st->resp;
  const bool success = r.status >= 200 && r.status < 300;
  if (success && st->sink != nullptr) {
    Status s = (*st->sink)(data, len);
    if (!s.ok()) {
      st->abortError = s.error();
      st->aborted = true;
      return 0;  // CURLE_WRITE_ERROR
    }
    return len;
  }
  const int64_t cap = success ? st->maxBody : kMaxErrorBody;
  if (static_cast<int64_t>(r.body.size() + len) > cap) {
    if (!success) return len;  // an error body is only read for its codes
    st->abortError =
        Error(std::string(st->what) + " larger than " + std::to_string(cap) + " bytes", kErrOther);
    st->aborted = true;
    return 0;
  }
  r.body.append(data, len);
  return len;
}

}  // namespace

namespace {

// Performs one GET. Non-2xx statuses are not errors here (the caller reads
// them); transport failures are, with readable messages.
Result<detail::RegistryResponse> performGet(const detail::RegistryRequest& req,
                                            const RegistryClientOptions& options) {
  const auto now = SteadyClock::now();
  if (now >= req.deadline) {
    return Error("GET " + req.url + ": deadline exceeded before the request", kErrTimeout);
  }
  const long leftMs = std::max<long>(
      1, static_cast<long>(
             std::chrono::duration_cast<std::chrono::milliseconds>(req.deadline - now).count()));

  CURL* h = threadCurlHandle();
  detail::RegistryResponse resp;
  TransferState st;
  st.resp = &resp;
  st.sink = req.sink;
  st.maxBody = req.maxBody;
  st.what = req.what;
  char errbuf[CURL_ERROR_SIZE] = {0};

  Slist headers;
  auto addHeader = [&](const std::string& hdr) {
    curl_slist* l = curl_slist_append(headers.get(), hdr.c_str());
    if (l == nullptr) {
      std::fprintf(stderr, "fatal: curl_slist_append: out of memory\n");
      std::abort();
    }
    (void)headers.release();
    headers.reset(l);
  };
  for (const auto& hdr : req.headers) addHeader(hdr);
  if (!req.bearer.empty()) addHeader("Authorization: Bearer " + req.bearer);

  curl_easy_setopt(h, CURLOPT_URL, req.url.c_str());
  curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
  // Worker threads: no signals (curl's timeouts on the default resolver
  // would use SIGALRM otherwise).
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  // Blob storage redirects to CDNs/object stores; never to other schemes.
  // curl drops Authorization when a redirect changes host, port or scheme.
  curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(h, CURLOPT_MAXREDIRS, 5L);
  curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(options.connectTimeout.count()));
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, leftMs);
  curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, options.lowSpeedBytesPerSecond);
  curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, static_cast<long>(options.lowSpeedTime.count()));
  curl_easy_setopt(h, CURLOPT_USERAGENT, options.userAgent.c_str());
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, onHeader);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, &st);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, onBody);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &st);
  if (headers) curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers.get());
  if (req.basic != nullptr) {
    curl_easy_setopt(h, CURLOPT_HTTPAUTH, static_cast<long>(CURLAUTH_BASIC));
    curl_easy_setopt(h, CURLOPT_USERNAME, req.basic->first.c_str());
    curl_easy_setopt(h, CURLOPT_PASSWORD, req.basic->second.c_str());
  }

  const CURLcode rc = curl_easy_perform(h);
  // The handle outlives this call (thread cache): drop pointers to locals.
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, nullptr);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, nullptr);

  if (rc == CURLE_OK) {
    if (resp.reason.empty()) resp.reason = reasonPhrase(resp.status);
    return resp;
  }

  const std::string prefix = "GET " + req.url + ": ";
  if (st.aborted) return Error(prefix + st.abortError.message, st.abortError.code);

  // Where it failed (after redirects, the last URL tried).
  const char* effective = nullptr;
  curl_easy_getinfo(h, CURLINFO_EFFECTIVE_URL, &effective);
  std::string where = effective != nullptr ? effective : req.url;
  std::string hostPort = hostOf(where);
  {
    CURLU* u = curl_url();
    if (u != nullptr && curl_url_set(u, CURLUPART_URL, where.c_str(), 0) == CURLUE_OK) {
      char* host = nullptr;
      char* port = nullptr;
      if (curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
          curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK) {
        hostPort = std::string(host) + ":" + port;
      }
      curl_free(host);
      curl_free(port);
    }
    curl_url_cleanup(u);
  }
  const std::string detail = errbuf[0] != '\0' ? errbuf : curl_easy_strerror(rc);

  switch (rc) {
    case CURLE_COULDNT_CONNECT: {
      long osErrno = 0;
      curl_easy_getinfo(h, CURLINFO_OS_ERRNO, &osErrno);
      std::string why = osErrno != 0 ? std::strerror(static_cast<int>(osErrno)) : detail;
      return Error(prefix + "connect to " + hostPort + " failed: " + why, kErrUnavailable);
    }
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
      return Error(prefix + "cannot resolve " + hostPort + ": " + detail, kErrUnavailable);
    case CURLE_OPERATION_TIMEDOUT:
      if (SteadyClock::now() >= req.deadline) {
        return Error(prefix + "deadline exceeded (" + detail + ")", kErrTimeout);
      }
      return Error(prefix + detail, kErrTimeout);
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
      return Error(prefix + detail, kErrUnavailable);
    default:
      return Error(prefix + detail, kErrOther);
  }
}

std::string httpError(const std::string& url, const detail::RegistryResponse& r) {
  std::string msg = "GET " + url + ": " + std::to_string(r.status);
  if (!r.reason.empty()) msg += " " + r.reason;
  msg += registryErrors(r.body);
  return msg;
}

}  // namespace

// ---- RegistryClient ----------------------------------------------------------------

RegistryClient::RegistryClient(RegistryConfig config, RegistryClientOptions options)
    : config_(std::move(config)), options_(std::move(options)) {
  initCurlOnce();
}

RegistryClient::~RegistryClient() = default;

const std::pair<std::string, std::string>* RegistryClient::credentialsFor(
    const RegistryEndpoint& endpoint, const ImageRef& ref) const {
  auto it = config_.basicAuth.find(hostOf(endpoint.baseUrl));
  if (it != config_.basicAuth.end()) return &it->second;
  // The registry's own credentials go to the registry itself only, never to
  // a mirror standing in for it.
  if (!endpoint.mirror) {
    it = config_.basicAuth.find(ref.registry);
    if (it != config_.basicAuth.end()) return &it->second;
  }
  return nullptr;
}

Status RegistryClient::fetchToken(const RegistryEndpoint& endpoint, const ImageRef& ref,
                                  const AuthChallenge& challenge, Deadline deadline) {
  const std::string realm = challenge.param("realm");
  if (!isHttpUrl(realm)) {
    return Error("registry " + endpoint.baseUrl + ": Bearer challenge with an unusable realm \"" +
                     realm + "\"",
                 kErrOther);
  }
  std::string url = realm;
  char sep = realm.find('?') == std::string::npos ? '?' : '&';
  auto addParam = [&](const char* k, const std::string& v) {
    url.push_back(sep);
    sep = '&';
    url.append(k).append("=").append(urlEscape(v));
  };
  const std::string service = challenge.param("service");
  if (!service.empty()) addParam("service", service);
  const std::string ourScope = "repository:" + ref.repository + ":pull";
  addParam("scope", ourScope);
  const std::string theirScope = challenge.param("scope");
  if (!theirScope.empty() && theirScope != ourScope) addParam("scope", theirScope);

  Request req;
  req.url = url;
  req.deadline = deadline;
  req.maxBody = kMaxTokenBody;
  req.what = "token response";
  req.basic = credentialsFor(endpoint, ref);
  auto resp = performGet(req, options_);
  if (!resp.ok()) return Error("token request: " + resp.message(), resp.error().code);
  if (resp->status != 200) {
    return Error("token request: " + httpError(url, *resp), codeForStatus(resp->status));
  }
  json::JsonReader reader;
  auto root = reader.parse(resp->body);
  if (!root.ok()) return Error("token request: GET " + url + ": " + root.message(), kErrOther);
  std::string token;
  int64_t expiresIn = 0;
  if (!root->field({"token"}).get(token) || token.empty()) {
    root->field({"access_token"}).get(token);
  }
  root->field({"expires_in"}).get(expiresIn);
  if (token.empty()) {
    return Error("token request: GET " + url + ": no token in the response", kErrOther);
  }
  auto lifetime = expiresIn > 0 ? std::chrono::seconds(expiresIn) : kDefaultTokenLifetime;
  auto margin = std::min<std::chrono::steady_clock::duration>(kTokenMargin, lifetime / 2);
  Token t;
  t.kind = Token::Kind::Bearer;
  t.value = std::move(token);
  t.expires = SteadyClock::now() + lifetime - margin;
  std::lock_guard<std::mutex> lock(tokensMutex_);
  tokens_[endpoint.baseUrl + " " + ref.repository] = std::move(t);
  return {};
}

Result<detail::RegistryResponse> RegistryClient::authorizedGet(const RegistryEndpoint& endpoint,
                                                               const ImageRef& ref,
                                                               Request& request) {
  const std::string key = endpoint.baseUrl + " " + ref.repository;
  for (int attempt = 0;; ++attempt) {
    request.bearer.clear();
    request.basic = nullptr;
    {
      std::lock_guard<std::mutex> lock(tokensMutex_);
      auto it = tokens_.find(key);
      if (it != tokens_.end()) {
        if (it->second.kind == Token::Kind::Basic) {
          request.basic = credentialsFor(endpoint, ref);
        } else if (SteadyClock::now() < it->second.expires) {
          request.bearer = it->second.value;
        } else {
          tokens_.erase(it);
        }
      }
    }
    auto resp = performGet(request, options_);
    if (!resp.ok() || resp->status != 401 || attempt > 0) return resp;

    auto challenges = parseWwwAuthenticate(resp->header("www-authenticate"));
    const AuthChallenge* bearer = nullptr;
    const AuthChallenge* basic = nullptr;
    for (const auto& c : challenges) {
      if (c.scheme == "bearer" && bearer == nullptr && !c.param("realm").empty()) bearer = &c;
      if (c.scheme == "basic" && basic == nullptr) basic = &c;
    }
    if (bearer != nullptr) {
      Status st = fetchToken(endpoint, ref, *bearer, request.deadline);
      if (!st.ok())
        return Error("GET " + request.url + ": 401 Unauthorized, " + st.message(), st.error().code);
      continue;
    }
    if (basic != nullptr && credentialsFor(endpoint, ref) != nullptr) {
      std::lock_guard<std::mutex> lock(tokensMutex_);
      tokens_[key] = Token{Token::Kind::Basic, {}, {}};
      continue;
    }
    return resp;  // the caller reports the 401
  }
}

Result<FetchedManifest> RegistryClient::fetchManifest(const ImageRef& ref,
                                                      const std::string& reference,
                                                      Deadline deadline) {
  const bool byDigest = startsWith(reference, "sha256:");
  if (byDigest && !isSha256Digest(reference)) {
    return Error("invalid manifest digest \"" + reference + "\"", kErrInvalidArgument);
  }
  if (startsWith(reference, "sha512:") || startsWith(reference, "sha384:")) {
    return Error("unsupported digest algorithm in \"" + reference + "\"", kErrInvalidArgument);
  }
  std::vector<std::string> errors;
  int lastCode = kErrOther;
  for (const auto& ep : registryEndpoints(config_, ref.registry)) {
    Request req;
    req.url = ep.baseUrl + "/v2/" + ref.repository + "/manifests/" + reference;
    req.headers.push_back(kAcceptManifests);
    req.deadline = deadline;
    req.maxBody = options_.maxManifestBytes;
    req.what = "manifest";
    auto resp = authorizedGet(ep, ref, req);
    if (!resp.ok()) {
      errors.push_back(resp.message());
      lastCode = resp.error().code;
      if (SteadyClock::now() >= deadline) break;
      continue;
    }
    if (resp->status != 200) {
      std::string msg = httpError(req.url, *resp);
      if (resp->status == 401 && credentialsFor(ep, ref) == nullptr) {
        msg += " (no credentials configured for " + hostOf(ep.baseUrl) + ")";
      }
      errors.push_back(std::move(msg));
      lastCode = codeForStatus(resp->status);
      continue;
    }
    FetchedManifest m;
    m.digest = sha256Digest(resp->body);
    if (byDigest && m.digest != reference) {
      errors.push_back("GET " + req.url + ": digest mismatch for " + reference + ": got " +
                       m.digest);
      lastCode = kErrOther;
      continue;
    }
    // A Docker-Content-Digest in another algorithm cannot be compared;
    // a sha256 one must agree with the body.
    const std::string served = resp->header("docker-content-digest");
    if (startsWith(served, "sha256:") && served != m.digest) {
      errors.push_back("GET " + req.url + ": digest mismatch for " + served + ": got " + m.digest);
      lastCode = kErrOther;
      continue;
    }
    std::string contentType = toLower(trim(resp->header("content-type")));
    if (size_t semi = contentType.find(';'); semi != std::string::npos) {
      contentType = std::string(trim(std::string_view(contentType).substr(0, semi)));
    }
    bool known = std::any_of(std::begin(kManifestMediaTypes), std::end(kManifestMediaTypes),
                             [&](const char* t) { return contentType == t; });
    if (known) {
      m.mediaType = contentType;
    } else {
      // Some mirrors serve manifests as application/json or octet-stream:
      // the document says what it is.
      json::JsonReader reader;
      auto root = reader.parse(resp->body);
      if (root.ok()) {
        root->field({"mediaType"}).get(m.mediaType);
        if (m.mediaType.empty()) {
          int64_t schemaVersion = 0;
          root->field({"schemaVersion"}).get(schemaVersion);
          if (root->field({"manifests"}).present()) {
            m.mediaType = "application/vnd.oci.image.index.v1+json";
          } else if (root->field({"layers"}).present()) {
            m.mediaType = "application/vnd.oci.image.manifest.v1+json";
          } else if (schemaVersion == 1) {
            m.mediaType = "application/vnd.docker.distribution.manifest.v1+json";
          }
        }
      }
      if (m.mediaType.empty()) m.mediaType = contentType;
    }
    m.body = std::move(resp->body);
    m.endpoint = ep.baseUrl;
    return m;
  }
  std::string all;
  for (const auto& e : errors) {
    if (!all.empty()) all += "; ";
    all += e;
  }
  if (all.empty()) all = "no endpoint for registry " + ref.registry;
  return Error(std::move(all), lastCode);
}

Status RegistryClient::fetchBlob(const ImageRef& ref, const std::string& digest, int64_t size,
                                 const BlobSink& sink, Deadline deadline,
                                 const std::string& preferEndpoint) {
  if (!isSha256Digest(digest)) {
    return Error("unsupported or invalid blob digest \"" + digest + "\"", kErrInvalidArgument);
  }
  if (size < 0) return Error("blob " + digest + ": negative size", kErrInvalidArgument);
  auto endpoints = registryEndpoints(config_, ref.registry);
  std::stable_partition(endpoints.begin(), endpoints.end(),
                        [&](const RegistryEndpoint& e) { return e.baseUrl == preferEndpoint; });

  std::vector<std::string> errors;
  int lastCode = kErrOther;
  for (const auto& ep : endpoints) {
    Sha256 hasher;
    int64_t delivered = 0;
    BlobSink checked = [&](const char* data, size_t len) -> Status {
      if (delivered + static_cast<int64_t>(len) > size) {
        return Error("size mismatch for " + digest + ": more than the expected " +
                         std::to_string(size) + " bytes",
                     kErrOther);
      }
      hasher.update(data, len);
      delivered += static_cast<int64_t>(len);
      return sink(data, len);
    };
    Request req;
    req.url = ep.baseUrl + "/v2/" + ref.repository + "/blobs/" + digest;
    req.deadline = deadline;
    req.sink = &checked;
    auto resp = authorizedGet(ep, ref, req);
    if (!resp.ok()) {
      // Bytes already handed to the sink cannot be taken back.
      if (delivered > 0) return resp.error();
      errors.push_back(resp.message());
      lastCode = resp.error().code;
      if (SteadyClock::now() >= deadline) break;
      continue;
    }
    if (resp->status != 200) {
      errors.push_back(httpError(req.url, *resp));
      lastCode = codeForStatus(resp->status);
      continue;
    }
    if (delivered != size) {
      return Error("GET " + req.url + ": size mismatch for " + digest + ": got " +
                       std::to_string(delivered) + " bytes, expected " + std::to_string(size),
                   kErrOther);
    }
    std::string got = hasher.finish();
    if (got != digest) {
      return Error("GET " + req.url + ": digest mismatch for " + digest + ": got " + got,
                   kErrOther);
    }
    return {};
  }
  std::string all;
  for (const auto& e : errors) {
    if (!all.empty()) all += "; ";
    all += e;
  }
  if (all.empty()) all = "no endpoint for registry " + ref.registry;
  return Error(std::move(all), lastCode);
}

}  // namespace sbx::runtime
