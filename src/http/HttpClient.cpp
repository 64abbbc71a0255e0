#include "http/HttpClient.h"

#include <arpa/inet.h>
#include <llhttp.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>
#include <string_view>
#include <utility>

namespace sbx::http {

namespace {

// Response headers are not covered by maxResponseBytes (a body limit), but a
// server streaming an endless header block must not grow memory forever.
constexpr size_t kMaxHeaderBytes = 256u << 10;
constexpr size_t kReadChunk = 64u << 10;
// Epoll is level-triggered: capping reads per readiness event keeps one fast
// server from monopolising a loop turn; the rest is read next turn.
constexpr int kMaxReadsPerEvent = 16;
// Interest while waiting for a response or idling in the pool. One constant
// for both, so reusing a pooled connection costs no epoll_ctl.
constexpr uint32_t kReadEvents = EPOLLIN | EPOLLRDHUP;

long long toMs(Duration d) {
  return static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(d).count());
}

std::string errnoText(int err) {
  char buf[128];
  // GNU strerror_r: returns a pointer to a static string or into buf.
  return ::strerror_r(err, buf, sizeof buf);
}

// ---- Addresses ---------------------------------------------------------------

struct Endpoint {
  sockaddr_storage addr{};
  socklen_t addrLen = 0;
  // Canonical "127.0.0.1:8080" / "[::1]:8080": the pool key and the peer
  // name in error messages, so "localhost" and "127.0.0.1" share a pool.
  std::string key;
  // The Host header value: the caller's spelling plus the port.
  std::string hostHeader;
};

// IP literals only: name resolution would block the loop.
std::optional<Endpoint> resolveLiteral(const std::string& host, uint16_t port) {
  Endpoint ep;
  std::string_view name = host;
  bool bracketed = name.size() >= 2 && name.front() == '[' && name.back() == ']';
  if (bracketed) name = name.substr(1, name.size() - 2);
  std::string literal(name);
  if (!bracketed && equalsIgnoreCase(literal, "localhost")) literal = "127.0.0.1";

  char text[INET6_ADDRSTRLEN] = {};
  auto* v4 = reinterpret_cast<sockaddr_in*>(&ep.addr);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&ep.addr);
  if (!bracketed && ::inet_pton(AF_INET, literal.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    ep.addrLen = sizeof(sockaddr_in);
    ::inet_ntop(AF_INET, &v4->sin_addr, text, sizeof text);
    ep.key = std::string(text) + ":" + std::to_string(port);
    ep.hostHeader = host + ":" + std::to_string(port);
    return ep;
  }
  if (::inet_pton(AF_INET6, literal.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    ep.addrLen = sizeof(sockaddr_in6);
    ::inet_ntop(AF_INET6, &v6->sin6_addr, text, sizeof text);
    ep.key = "[" + std::string(text) + "]:" + std::to_string(port);
    ep.hostHeader = "[" + literal + "]:" + std::to_string(port);
    return ep;
  }
  return std::nullopt;
}

// ---- Request serialization -------------------------------------------------

bool isTokenChar(char c) {
  // RFC 9110 tchar.
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool isToken(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), isTokenChar);
}

// Rejects what would let a caller-supplied string smuggle a second request
// line or header (CR, LF, NUL), or break the request line (spaces).
bool isSafeTarget(std::string_view s) {
  return !s.empty() && std::none_of(s.begin(), s.end(), [](char c) {
    return static_cast<unsigned char>(c) <= ' ' || c == 0x7f;
  });
}

bool isSafeValue(std::string_view s) {
  return std::none_of(s.begin(), s.end(),
                      [](char c) { return c == '\r' || c == '\n' || c == '\0'; });
}

std::optional<std::string> validate(const HttpClientRequest& req) {
  if (!isToken(req.method)) return "invalid request: bad method \"" + req.method + "\"";
  if (!isSafeTarget(req.target)) return std::string("invalid request: bad target");
  for (const auto& f : req.headers) {
    if (!isToken(f.name) || !isSafeValue(f.value)) {
      return "invalid request: bad header \"" + f.name + "\"";
    }
  }
  return std::nullopt;
}

bool isFramingHeader(std::string_view name) {
  // The client frames the body itself and decides about keep-alive; a
  // caller's copy of these would contradict it (and enable smuggling).
  return equalsIgnoreCase(name, "Content-Length") || equalsIgnoreCase(name, "Connection") ||
         equalsIgnoreCase(name, "Transfer-Encoding");
}

std::string serializeHead(const HttpClientRequest& req, const std::string& hostHeader) {
  std::string out;
  out.reserve(128 + req.target.size());
  out.append(req.method).append(" ").append(req.target).append(" HTTP/1.1\r\n");
  // A caller-supplied Host wins (virtual hosting behind an IP).
  if (!req.headers.has("Host")) out.append("Host: ").append(hostHeader).append("\r\n");
  for (const auto& f : req.headers) {
    if (isFramingHeader(f.name)) continue;
    out.append(f.name).append(": ").append(f.value).append("\r\n");
  }
  if (!req.body.empty() || req.method == "POST" || req.method == "PUT" || req.method == "PATCH") {
    out.append("Content-Length: ").append(std::to_string(req.body.size())).append("\r\n");
  }
  if (!req.keepAlive) out.append("Connection: close\r\n");
  out.append("\r\n");
  return out;
}

// ---- Connections and requests ----------------------------------------------

struct Request;

// One TCP connection. Owned by the Request using it, or by the idle pool.
// Released through EventLoop::deferDelete, since it is often closed from
// inside its own watcher callback.
struct Conn final : DeferredDeletable {
  std::string key;
  Fd fd;
  IoWatcher watcher;
  Timer idleTimer;
  Request* owner = nullptr;  // null while idle in the pool

  // Disarms everything that could call back and closes the socket now; the
  // memory goes later.
  void close() {
    idleTimer.cancel();
    watcher.reset();
    fd.reset();
    owner = nullptr;
  }
};

enum class Phase { kConnecting, kExchanging };

struct Request final : DeferredDeletable {
  HttpClient::RequestId id = 0;
  HttpClientRequest req;
  HttpClient::Callback cb;
  Endpoint ep;
  std::string head;  // request line + headers; the body is sent from req.body
  size_t sent = 0;   // bytes of head + body written
  std::unique_ptr<Conn> conn;
  Phase phase = Phase::kConnecting;

  Timer deadline;      // whole exchange
  Timer connectTimer;  // current connect attempt
  Timer failTimer;     // delivers a failure found synchronously, a turn later
  std::optional<Error> pendingError;

  bool reused = false;    // conn came from the pool
  bool retried = false;   // the one retry on a fresh connection is spent
  bool gotBytes = false;  // any response byte on this attempt
  bool writeFailed = false;

  // Parser state (reset per attempt and per message).
  llhttp_t parser{};
  HttpClientResponse resp;
  bool interim = false;          // parsing a 1xx response
  bool newField = true;          // next header-field span starts a new field
  bool complete = false;         // final response fully parsed
  bool serverKeepAlive = false;  // llhttp's verdict at message end
  size_t headerBytes = 0;
  std::optional<Error> parseError;  // set by a parser callback that aborts

  size_t totalOut() const { return head.size() + req.body.size(); }
  bool fullySent() const { return sent == totalOut(); }
};

// ---- llhttp callbacks --------------------------------------------------------

Request& requestOf(llhttp_t* p) { return *static_cast<Request*>(p->data); }

int countHeaderBytes(Request& r, size_t n) {
  r.headerBytes += n;
  if (r.headerBytes <= kMaxHeaderBytes) return 0;
  r.parseError = Error("response headers from " + r.ep.key + " exceed " +
                       std::to_string(kMaxHeaderBytes) + " bytes");
  return HPE_USER;
}

int onMessageBegin(llhttp_t* p) {
  Request& r = requestOf(p);
  // Also runs for the final response after a 1xx: drop the interim fields.
  r.resp = HttpClientResponse{};
  r.interim = false;
  r.newField = true;
  r.headerBytes = 0;
  return 0;
}

int onStatus(llhttp_t* p, const char*, size_t n) { return countHeaderBytes(requestOf(p), n); }

int onHeaderField(llhttp_t* p, const char* at, size_t n) {
  Request& r = requestOf(p);
  if (int rc = countHeaderBytes(r, n)) return rc;
  auto& fields = r.resp.headers.fields();
  if (r.newField || fields.empty()) {
    fields.emplace_back();
    r.newField = false;
  }
  fields.back().name.append(at, n);
  return 0;
}

int onHeaderFieldComplete(llhttp_t* p) {
  requestOf(p).newField = true;
  return 0;
}

int onHeaderValue(llhttp_t* p, const char* at, size_t n) {
  Request& r = requestOf(p);
  if (int rc = countHeaderBytes(r, n)) return rc;
  auto& fields = r.resp.headers.fields();
  if (!fields.empty()) fields.back().value.append(at, n);
  return 0;
}

int onHeaderValueComplete(llhttp_t* p) {
  auto& fields = requestOf(p).resp.headers.fields();
  if (!fields.empty()) {
    std::string& v = fields.back().value;
    while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.pop_back();
  }
  return 0;
}

int onHeadersComplete(llhttp_t* p) {
  Request& r = requestOf(p);
  int status = llhttp_get_status_code(p);
  r.resp.status = status;
  if (status == 101) {
    // Never asked for an upgrade; the bytes that follow are not HTTP.
    r.parseError =
        Error("invalid HTTP response from " + r.ep.key + ": unexpected 101 Switching Protocols");
    return -1;
  }
  if (status >= 100 && status < 200) {
    r.interim = true;
    return 1;  // interim responses have no body
  }
  // Tells llhttp not to expect the body that Content-Length announces.
  if (r.req.method == "HEAD") return 1;
  // Fail before reading a body announced as too large.
  if ((p->flags & F_CONTENT_LENGTH) && !(p->flags & F_CHUNKED) &&
      p->content_length > r.req.maxResponseBytes) {
    r.parseError = Error("response body from " + r.ep.key + " exceeds " +
                         std::to_string(r.req.maxResponseBytes) + " bytes");
    return -1;
  }
  return 0;
}

int onBody(llhttp_t* p, const char* at, size_t n) {
  Request& r = requestOf(p);
  if (r.resp.body.size() + n > r.req.maxResponseBytes) {
    r.parseError = Error("response body from " + r.ep.key + " exceeds " +
                         std::to_string(r.req.maxResponseBytes) + " bytes");
    return HPE_USER;
  }
  r.resp.body.append(at, n);
  return 0;
}

int onMessageComplete(llhttp_t* p) {
  Request& r = requestOf(p);
  if (r.interim) {
    // 100 Continue and friends: keep parsing, the final response follows.
    r.interim = false;
    return 0;
  }
  r.complete = true;
  // Read now: llhttp clears the flags this depends on right after the
  // callback.
  r.serverKeepAlive = llhttp_should_keep_alive(p) != 0;
  // Pausing stops llhttp_execute() exactly at the message end, so the
  // caller can tell whether the server sent bytes beyond the response.
  return HPE_PAUSED;
}

const llhttp_settings_t& parserSettings() {
  static const llhttp_settings_t settings = [] {
    llhttp_settings_t s;
    llhttp_settings_init(&s);
    s.on_message_begin = onMessageBegin;
    s.on_status = onStatus;
    s.on_header_field = onHeaderField;
    s.on_header_field_complete = onHeaderFieldComplete;
    s.on_header_value = onHeaderValue;
    s.on_header_value_complete = onHeaderValueComplete;
    s.on_headers_complete = onHeadersComplete;
    s.on_body = onBody;
    s.on_message_complete = onMessageComplete;
    return s;
  }();
  return settings;
}

// Fresh state for an attempt (the first one, or the retry).
void resetExchange(Request& r) {
  r.sent = 0;
  r.gotBytes = false;
  r.writeFailed = false;
  r.complete = false;
  r.serverKeepAlive = false;
  r.interim = false;
  r.newField = true;
  r.headerBytes = 0;
  r.parseError.reset();
  r.resp = HttpClientResponse{};
  llhttp_init(&r.parser, HTTP_RESPONSE, &parserSettings());
  r.parser.data = &r;
}

}  // namespace

// ---- Impl --------------------------------------------------------------------
//
// Ownership: `requests` owns in-flight requests, each owning its connection;
// `idle` owns pooled connections. Watchers and timers capture raw pointers to
// these, which stay valid because every path that drops an object first
// disarms its watchers and timers, then hands it to deferDelete(): the frame
// that triggered the drop may still be running inside it.
//
// User callbacks run last in finish(), and every caller returns right after
// finish(), so a callback may destroy the client or start new requests.

struct HttpClient::Impl {
  Impl(EventLoop& l, Options o) : loop(l), options(o), readBuf(kReadChunk) {}

  ~Impl() {
    // Possibly called from a user callback running under one of our
    // watchers: close everything now, free it at the end of the turn.
    for (auto& [id, r] : requests) {
      disarm(*r);
      r->cb = nullptr;  // release the caller's captures with the client
      if (r->conn) closeConn(std::move(r->conn));
      loop.deferDelete(std::move(r));
    }
    for (auto& [key, list] : idle) {
      for (auto& c : list) closeConn(std::move(c));
    }
  }

  RequestId start(HttpClientRequest req, Callback cb);
  bool cancel(RequestId id);

  Status connect(Request* r);
  void onConnEvent(Conn* c, uint32_t events);
  void onRequestEvent(Request* r, uint32_t events);
  void flush(Request* r);
  void onReadable(Request* r);
  void onClosed(Request* r, int err);
  void retry(Request* r);
  void fail(Request* r, Error err) { finish(r, std::move(err), false); }
  void failSoon(Request* r, Error err);
  void finish(Request* r, Result<HttpClientResponse> result, bool reusable);

  std::unique_ptr<Conn> takeIdle(const std::string& key);
  void release(std::unique_ptr<Conn> c);
  void dropIdle(Conn* c);
  void closeConn(std::unique_ptr<Conn> c) {
    c->close();
    loop.deferDelete(std::move(c));
  }
  static void disarm(Request& r) {
    r.deadline.cancel();
    r.connectTimer.cancel();
    r.failTimer.cancel();
  }

  EventLoop& loop;
  Options options;
  RequestId nextId = 1;
  std::unordered_map<RequestId, std::unique_ptr<Request>> requests;
  std::unordered_map<std::string, std::vector<std::unique_ptr<Conn>>> idle;  // oldest first
  size_t idleCount = 0;
  std::vector<char> readBuf;
};

HttpClient::RequestId HttpClient::Impl::start(HttpClientRequest req, Callback cb) {
  loop.assertInLoopThread();
  auto owned = std::make_unique<Request>();
  Request* r = owned.get();
  r->id = nextId++;
  r->req = std::move(req);
  r->cb = std::move(cb);
  requests.emplace(r->id, std::move(owned));

  // Synchronous failures go through failSoon(): the callback must never
  // run inside request().
  auto ep = resolveLiteral(r->req.host, r->req.port);
  if (!ep) {
    failSoon(r, Error("invalid host \"" + r->req.host + "\": expected an IP address"));
    return r->id;
  }
  r->ep = std::move(*ep);
  if (auto bad = validate(r->req)) {
    failSoon(r, Error(*bad));
    return r->id;
  }
  r->head = serializeHead(r->req, r->ep.hostHeader);
  resetExchange(*r);
  r->deadline = loop.runAfter(r->req.timeout, [this, r] {
    fail(r, Error("request to " + r->ep.key + " timed out after " +
                  std::to_string(toMs(r->req.timeout)) + "ms"));
  });

  if (r->req.keepAlive) {
    if (auto c = takeIdle(r->ep.key)) {
      c->owner = r;
      r->conn = std::move(c);
      r->reused = true;
      r->phase = Phase::kExchanging;
      // Write right away: an idle socket is writable. A dead one shows up
      // as EOF/reset on the read side, which retries.
      flush(r);
      return r->id;
    }
  }
  Status s = connect(r);
  if (!s) failSoon(r, s.error());
  return r->id;
}

Status HttpClient::Impl::connect(Request* r) {
  const int family = r->ep.addr.ss_family;
  Fd fd(::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) return Error("connect " + r->ep.key + ": " + errnoText(errno));
  int one = 1;
  // Requests are written in one go and then we wait: Nagle would only add
  // latency to a body that does not fit the first segment.
  ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  int rc = ::connect(fd.get(), reinterpret_cast<const sockaddr*>(&r->ep.addr), r->ep.addrLen);
  // EINTR on a non-blocking connect: the handshake goes on in the background
  // like EINPROGRESS.
  if (rc != 0 && errno != EINPROGRESS && errno != EINTR) {
    return Error("connect " + r->ep.key + ": " + errnoText(errno));
  }
  auto c = std::make_unique<Conn>();
  c->key = r->ep.key;
  c->fd = std::move(fd);
  c->owner = r;
  Conn* raw = c.get();
  // Even when connect() succeeded at once, wait for EPOLLOUT: one path.
  c->watcher =
      loop.watch(raw->fd.get(), EPOLLOUT, [this, raw](uint32_t ev) { onConnEvent(raw, ev); });
  r->conn = std::move(c);
  r->reused = false;
  r->phase = Phase::kConnecting;
  r->connectTimer = loop.runAfter(r->req.connectTimeout, [this, r] {
    fail(r, Error("connect " + r->ep.key + ": timed out after " +
                  std::to_string(toMs(r->req.connectTimeout)) + "ms"));
  });
  return {};
}

void HttpClient::Impl::onConnEvent(Conn* c, uint32_t events) {
  if (c->owner) {
    onRequestEvent(c->owner, events);
  } else {
    // Idle connections expect nothing: readability means the server closed
    // (or sent junk). Either way the connection is unusable.
    dropIdle(c);
  }
}

void HttpClient::Impl::onRequestEvent(Request* r, uint32_t events) {
  if (r->phase == Phase::kConnecting) {
    int err = 0;
    socklen_t len = sizeof err;
    if (::getsockopt(r->conn->fd.get(), SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
    if (err != 0) {
      fail(r, Error("connect " + r->ep.key + ": " + errnoText(err)));
      return;
    }
    r->connectTimer.cancel();
    r->phase = Phase::kExchanging;
    flush(r);
    return;  // level-triggered: any response shows up next turn
  }
  if ((events & EPOLLOUT) && !r->fullySent() && !r->writeFailed) flush(r);
  if (events & (EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP)) onReadable(r);
}

void HttpClient::Impl::flush(Request* r) {
  Conn& c = *r->conn;
  while (!r->fullySent()) {
    // Head and body go out in one sendmsg without copying the body.
    iovec iov[2];
    int count = 0;
    if (r->sent < r->head.size()) {
      iov[count++] = {r->head.data() + r->sent, r->head.size() - r->sent};
      if (!r->req.body.empty()) iov[count++] = {r->req.body.data(), r->req.body.size()};
    } else {
      size_t off = r->sent - r->head.size();
      iov[count++] = {r->req.body.data() + off, r->req.body.size() - off};
    }
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = static_cast<size_t>(count);
    ssize_t n = ::sendmsg(c.fd.get(), &msg, MSG_NOSIGNAL);
    if (n >= 0) {
      r->sent += static_cast<size_t>(n);
      continue;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      c.watcher.setEvents(kReadEvents | EPOLLOUT);
      return;
    }
    int err = errno;
    r->writeFailed = true;
    c.watcher.setEvents(kReadEvents);
    if (err != EPIPE && err != ECONNRESET) {
      failSoon(r, Error("write to " + r->ep.key + ": " + errnoText(err)));
    }
    // EPIPE/ECONNRESET: the socket is now readable (EOF or reset), and the
    // read side decides between a response the server already sent, a
    // retry, or an error. Not deciding here keeps request() callback-free.
    return;
  }
  c.watcher.setEvents(kReadEvents);
}

void HttpClient::Impl::onReadable(Request* r) {
  const int fd = r->conn->fd.get();
  for (int i = 0; i < kMaxReadsPerEvent; ++i) {
    ssize_t n = ::recv(fd, readBuf.data(), readBuf.size(), 0);
    if (n > 0) {
      r->gotBytes = true;
      llhttp_errno_t err = llhttp_execute(&r->parser, readBuf.data(), static_cast<size_t>(n));
      if (err == HPE_OK) continue;
      if (err == HPE_PAUSED && r->complete) {
        // Bytes past the response mean the server is out of step with us
        // (or pipelining junk): such a connection cannot be reused.
        bool trailing = llhttp_get_error_pos(&r->parser) != readBuf.data() + n;
        bool reusable = r->serverKeepAlive && r->req.keepAlive && r->fullySent() &&
                        !r->writeFailed && !trailing;
        finish(r, std::move(r->resp), reusable);
        return;
      }
      if (r->parseError) {
        fail(r, std::move(*r->parseError));
      } else {
        fail(r, Error("invalid HTTP response from " + r->ep.key + ": " +
                      llhttp_get_error_reason(&r->parser)));
      }
      return;
    }
    if (n == 0) {
      onClosed(r, 0);
      return;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return;
    onClosed(r, errno);
    return;
  }
}

void HttpClient::Impl::onClosed(Request* r, int err) {
  const bool peerGone = err == 0 || err == ECONNRESET || err == EPIPE;
  // The server dropped a pooled connection while we reused it (it had
  // closed it while idle, the FIN crossed our request). Nothing of ours was
  // processed, so one more try on a fresh connection is safe.
  if (peerGone && r->reused && !r->gotBytes && !r->retried) {
    retry(r);
    return;
  }
  if (err == 0) {
    // Close-delimited bodies end here.
    llhttp_finish(&r->parser);
    if (r->complete) {
      finish(r, std::move(r->resp), false);
      return;
    }
  }
  if (peerGone) {
    fail(r, Error("connection to " + r->ep.key + " closed before the response completed"));
  } else {
    fail(r, Error("read from " + r->ep.key + ": " + errnoText(err)));
  }
}

void HttpClient::Impl::retry(Request* r) {
  r->retried = true;
  closeConn(std::move(r->conn));
  r->failTimer.cancel();
  r->pendingError.reset();
  resetExchange(*r);
  Status s = connect(r);
  // Not inside request() (retries start from I/O callbacks): fail directly.
  if (!s) fail(r, s.error());
}

void HttpClient::Impl::failSoon(Request* r, Error err) {
  r->pendingError = std::move(err);
  r->failTimer = loop.runAfter(Duration::zero(), [this, r] {
    Error e = std::move(*r->pendingError);
    fail(r, std::move(e));
  });
}

void HttpClient::Impl::finish(Request* r, Result<HttpClientResponse> result, bool reusable) {
  auto it = requests.find(r->id);
  std::unique_ptr<Request> owned = std::move(it->second);
  requests.erase(it);
  disarm(*r);
  if (r->conn) {
    if (reusable) {
      release(std::move(r->conn));
    } else {
      closeConn(std::move(r->conn));
    }
  }
  Callback cb = std::move(r->cb);
  loop.deferDelete(std::move(owned));
  // Last: the callback may destroy the client (and with it `this`) or issue
  // requests, including one that reuses the connection just pooled.
  if (cb) cb(std::move(result));
}

bool HttpClient::Impl::cancel(RequestId id) {
  loop.assertInLoopThread();
  auto it = requests.find(id);
  if (it == requests.end()) return false;
  std::unique_ptr<Request> r = std::move(it->second);
  requests.erase(it);
  disarm(*r);
  r->cb = nullptr;
  // Mid-exchange: the connection's state is unknown, never pool it.
  if (r->conn) closeConn(std::move(r->conn));
  loop.deferDelete(std::move(r));
  return true;
}

std::unique_ptr<Conn> HttpClient::Impl::takeIdle(const std::string& key) {
  auto it = idle.find(key);
  if (it == idle.end()) return nullptr;
  // LIFO: the most recently used connection is the least likely to have
  // been closed by the server's idle timeout.
  std::unique_ptr<Conn> c = std::move(it->second.back());
  it->second.pop_back();
  if (it->second.empty()) idle.erase(it);
  --idleCount;
  c->idleTimer.cancel();
  return c;
}

void HttpClient::Impl::release(std::unique_ptr<Conn> c) {
  if (options.maxIdlePerHost == 0) {
    closeConn(std::move(c));
    return;
  }
  Conn* raw = c.get();
  raw->owner = nullptr;
  // Stay registered for input so a server-side close is noticed while idle.
  raw->watcher.setEvents(kReadEvents);
  raw->idleTimer = loop.runAfter(options.idleTimeout, [this, raw] { dropIdle(raw); });
  auto& list = idle[raw->key];
  list.push_back(std::move(c));
  ++idleCount;
  while (list.size() > options.maxIdlePerHost) {
    closeConn(std::move(list.front()));
    list.erase(list.begin());
    --idleCount;
  }
}

void HttpClient::Impl::dropIdle(Conn* c) {
  auto it = idle.find(c->key);
  if (it == idle.end()) return;
  auto& list = it->second;
  auto pos = std::find_if(list.begin(), list.end(), [c](const auto& p) { return p.get() == c; });
  if (pos == list.end()) return;
  std::unique_ptr<Conn> owned = std::move(*pos);
  list.erase(pos);
  if (list.empty()) idle.erase(it);
  --idleCount;
  closeConn(std::move(owned));
}

// ---- HttpClient --------------------------------------------------------------

HttpClient::HttpClient(EventLoop& loop) : HttpClient(loop, Options{}) {}

HttpClient::HttpClient(EventLoop& loop, Options options)
    : impl_(std::make_unique<Impl>(loop, options)) {}

HttpClient::~HttpClient() = default;

HttpClient::RequestId HttpClient::request(HttpClientRequest req, Callback cb) {
  return impl_->start(std::move(req), std::move(cb));
}

bool HttpClient::cancel(RequestId id) { return impl_->cancel(id); }

size_t HttpClient::inFlight() const { return impl_->requests.size(); }

size_t HttpClient::idleConnections() const { return impl_->idleCount; }

}  // namespace sbx::http
