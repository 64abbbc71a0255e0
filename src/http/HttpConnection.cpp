#include "http/HttpConnection.h"

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <ctime>
#include <random>
#include <string_view>

#include "json/JsonWriter.h"

namespace sbx::http {

namespace {

constexpr size_t kReadChunk = 64 * 1024;

// RFC 9110 tchar.
bool isTokenChar(char ch) {
  const unsigned char c = static_cast<unsigned char>(ch);
  if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
}

HttpConnection* self(llhttp_t* p) { return static_cast<HttpConnection*>(p->data); }

// A client's X-Request-ID is echoed only if it is short and plain, so it
// cannot inject anything into headers or logs.
bool acceptableRequestId(const std::string& id) {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id) {
    bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              c == '-' || c == '_' || c == '.' || c == ':';
    if (!ok) return false;
  }
  return true;
}

std::string generateRequestId() {
  // splitmix64 over a per-thread random seed and a counter: unique within
  // the process, unpredictable enough to correlate logs, no syscall.
  thread_local uint64_t state = std::random_device{}() ^ (uint64_t(std::random_device{}()) << 32);
  uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  z ^= z >> 31;
  static const char kHex[] = "0123456789abcdef";
  std::string out(16, '0');
  for (int i = 15; i >= 0; --i) {
    out[static_cast<size_t>(i)] = kHex[z & 15];
    z >>= 4;
  }
  return out;
}

// "Date: Sat, 28 Nov 2026 17:00:00 GMT\r\n", formatted once per second.
std::string_view dateHeader() {
  thread_local time_t cachedSec = -1;
  thread_local char buf[64];
  thread_local size_t len = 0;
  time_t now = ::time(nullptr);
  if (now != cachedSec) {
    cachedSec = now;
    tm t;
    ::gmtime_r(&now, &t);
    len = std::strftime(buf, sizeof buf, "Date: %a, %d %b %Y %H:%M:%S GMT\r\n", &t);
  }
  return std::string_view(buf, len);
}

void appendNumber(std::string& out, uint64_t v) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}

void appendHex(std::string& out, size_t v) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, v, 16);
  out.append(buf, r.ptr);
}

}  // namespace

// ---- HttpExchange ------------------------------------------------------------

void HttpExchange::respond(int status, std::string_view body, std::string_view contentType,
                           const HttpHeaders* extra) {
  if (conn_ && state_ == State::Pending) conn_->respond(*this, status, body, contentType, extra);
}

void HttpExchange::respondError(int status, std::string_view message, const HttpHeaders* extra) {
  respond(status, json::errorBody(message), "application/json", extra);
}

void HttpExchange::beginStream(int status, std::string_view contentType, const HttpHeaders* extra) {
  if (conn_ && state_ == State::Pending) conn_->beginStream(*this, status, contentType, extra);
}

bool HttpExchange::write(std::string_view data) {
  if (!conn_ || state_ != State::Streaming) return false;
  return conn_->writeChunk(*this, data);
}

void HttpExchange::end() {
  if (conn_ && state_ == State::Streaming) conn_->endStream(*this);
}

void HttpExchange::reset() {
  req_.clear();
  state_ = State::Pending;
  head_ = false;
  status_ = 0;
  bodyBytes_ = 0;
  onDrain_ = nullptr;
  onClose_ = nullptr;
}

// ---- HttpConnection ----------------------------------------------------------

const llhttp_settings_t& HttpConnection::settings() {
  static const llhttp_settings_t s = [] {
    llhttp_settings_t x;
    llhttp_settings_init(&x);
    x.on_message_begin = &HttpConnection::onMessageBegin;
    x.on_url = &HttpConnection::onUrl;
    x.on_header_field = &HttpConnection::onHeaderField;
    x.on_header_value = &HttpConnection::onHeaderValue;
    x.on_header_value_complete = &HttpConnection::onHeaderValueComplete;
    x.on_headers_complete = &HttpConnection::onHeadersComplete;
    x.on_body = &HttpConnection::onBody;
    x.on_message_complete = &HttpConnection::onMessageComplete;
    return x;
  }();
  return s;
}

HttpConnection::HttpConnection(HttpServer& server, Fd fd)
    : server_(server), loop_(server.loop_), fd_(std::move(fd)), ex_(std::make_shared<HttpExchange>()) {
  llhttp_init(&parser_, HTTP_REQUEST, &settings());
  parser_.data = this;
  ex_->conn_ = this;
}

HttpConnection::~HttpConnection() {
  if (ex_) ex_->conn_ = nullptr;
}

void HttpConnection::start() {
  watcher_ = loop_.watch(fd_.get(), EPOLLIN, [this](uint32_t ev) { onEvents(ev); });
  idleSince_ = loop_.now();
  // Until the first byte arrives the connection is held to the header
  // timeout: an idle opener gets no more time than a slow sender.
  setReadDeadline(server_.options_.headerTimeout);
}

void HttpConnection::close() {
  if (closed_) return;
  closed_ = true;
  watcher_.reset();
  timer_.cancel();
  fd_.reset();
  if (ex_) {
    ex_->conn_ = nullptr;
    bool unfinished = awaiting_ && !ex_->responded();
    auto onClose = std::move(ex_->onClose_);
    ex_->onDrain_ = nullptr;
    if (unfinished && onClose) onClose();
  }
  server_.connectionClosed(this);
}

void HttpConnection::shutdownGracefully() {
  if (closed_) return;
  if (phase_ == Phase::Idle && !awaiting_ && pendingOutput() == 0) {
    close();
    return;
  }
  keepAlive_ = false;
  closeAfterWrite_ = true;
}

// ---- reading and parsing ---------------------------------------------------------

void HttpConnection::onEvents(uint32_t events) {
  if (events & EPOLLOUT) {
    flush();
    if (closed_) return;
  }
  if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) handleRead();
}

void HttpConnection::handleRead() {
  char buf[kReadChunk];
  for (int i = 0; i < 4 && !closed_; ++i) {
    ssize_t n = ::recv(fd_.get(), buf, sizeof buf, 0);
    if (n > 0) {
      in_.append(buf, static_cast<size_t>(n));
      if (static_cast<size_t>(n) < sizeof buf) break;
      continue;
    }
    if (n == 0) {
      peerClosed_ = true;
      break;
    }
    if (errno == EAGAIN || errno == EINTR) break;
    close();  // ECONNRESET and friends
    return;
  }
  processInput();
  if (closed_) return;
  if (peerClosed_) {
    // A client may half-close after sending its last request: answer what is
    // complete, then close. Anything half-sent is dropped.
    if (!awaiting_ && pendingOutput() == 0) {
      close();
      return;
    }
    closeAfterWrite_ = true;
    keepAlive_ = false;
  }
  updateInterest();
}

bool HttpConnection::headerLimitExceeded(size_t more) {
  headerBytes_ += more;
  if (headerBytes_ > server_.options_.maxHeaderBytes) {
    pendingError_ = 431;
    pendingErrorMessage_ = "request headers too large (max " +
                           std::to_string(server_.options_.maxHeaderBytes) + " bytes)";
    return true;
  }
  return false;
}

int HttpConnection::onMessageBegin(llhttp_t* p) {
  HttpConnection* c = self(p);
  if (c->ex_.use_count() > 1) {
    // The previous exchange is still referenced by a handler: start afresh.
    c->ex_->conn_ = nullptr;
    c->ex_ = std::make_shared<HttpExchange>();
    c->ex_->conn_ = c;
  } else {
    c->ex_->reset();
  }
  c->ex_->req_.startedAt = c->loop_.now();
  c->headerBytes_ = 0;
  c->field_.clear();
  c->value_.clear();
  c->phase_ = Phase::Headers;
  c->setReadDeadline(c->server_.options_.headerTimeout);
  return 0;
}

int HttpConnection::onUrl(llhttp_t* p, const char* at, size_t len) {
  HttpConnection* c = self(p);
  if (c->headerLimitExceeded(len)) return HPE_USER;
  c->ex_->req_.target.append(at, len);
  return 0;
}

int HttpConnection::onHeaderField(llhttp_t* p, const char* at, size_t len) {
  HttpConnection* c = self(p);
  if (c->headerLimitExceeded(len)) return HPE_USER;
  c->field_.append(at, len);
  return 0;
}

int HttpConnection::onHeaderValue(llhttp_t* p, const char* at, size_t len) {
  HttpConnection* c = self(p);
  if (c->headerLimitExceeded(len)) return HPE_USER;
  c->value_.append(at, len);
  return 0;
}

int HttpConnection::onHeaderValueComplete(llhttp_t* p) {
  HttpConnection* c = self(p);
  HttpHeaders& h = c->ex_->req_.headers;
  if (h.size() >= c->server_.options_.maxHeaderCount) {
    c->pendingError_ = 431;
    c->pendingErrorMessage_ =
        "too many request headers (max " + std::to_string(c->server_.options_.maxHeaderCount) + ")";
    return HPE_USER;
  }
  if (c->headerLimitExceeded(4)) return HPE_USER;  // ": " and CRLF
  // llhttp (lenient without LLHTTP_STRICT_MODE) lets "Bad Header: x" and
  // ": x" through; RFC 9110 field names are non-empty tokens.
  if (c->field_.empty() || !std::all_of(c->field_.begin(), c->field_.end(), isTokenChar)) {
    c->pendingError_ = 400;
    c->pendingErrorMessage_ = "invalid header name";
    return HPE_USER;
  }
  h.add(std::move(c->field_), std::move(c->value_));
  c->field_.clear();
  c->value_.clear();
  return 0;
}

int HttpConnection::onHeadersComplete(llhttp_t* p) {
  HttpConnection* c = self(p);
  HttpRequest& req = c->ex_->req_;
  const HttpServerOptions& o = c->server_.options_;
  req.method = llhttp_method_name(static_cast<llhttp_method_t>(llhttp_get_method(p)));
  req.httpMinor = llhttp_get_http_minor(p);
  const std::string* rid = req.headers.find("X-Request-ID");
  req.requestId = (rid && acceptableRequestId(*rid)) ? *rid : generateRequestId();

  const bool hasLength = (p->flags & F_CONTENT_LENGTH) != 0;
  const bool chunked = (p->flags & F_CHUNKED) != 0;
  if (hasLength && p->content_length > o.maxBodyBytes) {
    c->pendingError_ = 413;
    c->pendingErrorMessage_ =
        "request body too large (max " + std::to_string(o.maxBodyBytes) + " bytes)";
    return -1;
  }
  if (const std::string* expect = req.headers.find("Expect")) {
    if (!equalsIgnoreCase(*expect, "100-continue")) {
      c->pendingError_ = 417;
      c->pendingErrorMessage_ = "unsupported Expect: " + expect->substr(0, 64);
      return -1;
    }
    if (req.httpMinor >= 1 && (chunked || (hasLength && p->content_length > 0))) {
      // The body is acceptable so far: tell the client to send it now
      // rather than after its own timeout.
      c->out_ += "HTTP/1.1 100 Continue\r\n\r\n";
      c->flush();
      if (c->closed_) return -1;
    }
  }
  if (hasLength && p->content_length > 0) req.body.reserve(p->content_length);
  c->phase_ = Phase::Body;
  c->setReadDeadline(o.bodyTimeout);
  return 0;
}

int HttpConnection::onBody(llhttp_t* p, const char* at, size_t len) {
  HttpConnection* c = self(p);
  std::string& body = c->ex_->req_.body;
  if (body.size() + len > c->server_.options_.maxBodyBytes) {
    c->pendingError_ = 413;
    c->pendingErrorMessage_ =
        "request body too large (max " + std::to_string(c->server_.options_.maxBodyBytes) + " bytes)";
    return HPE_USER;
  }
  body.append(at, len);
  return 0;
}

int HttpConnection::onMessageComplete(llhttp_t* p) {
  HttpConnection* c = self(p);
  // An Upgrade or CONNECT request is answered and the connection closed:
  // llhttp stops parsing after one, so keeping the connection would leave
  // whatever follows unparsed for good.
  c->keepAlive_ = c->keepAlive_ && llhttp_should_keep_alive(p) && !p->upgrade;
  c->messageComplete_ = true;
  return HPE_PAUSED;  // one request at a time: resume after its response
}

void HttpConnection::processInput() {
  if (inProcess_ || closed_) return;
  inProcess_ = true;
  const size_t highWater = server_.options_.outputHighWater;
  while (!closed_ && !awaiting_ && !closeAfterWrite_ && inOff_ < in_.size() &&
         pendingOutput() < highWater) {
    const char* data = in_.data() + inOff_;
    size_t len = in_.size() - inOff_;
    llhttp_errno_t err = llhttp_execute(&parser_, data, len);
    size_t consumed = len;
    if (err == HPE_PAUSED || err == HPE_PAUSED_UPGRADE) {
      consumed = static_cast<size_t>(llhttp_get_error_pos(&parser_) - data);
      if (err == HPE_PAUSED_UPGRADE) {
        // No protocol switching: answer, then close. llhttp returns this on
        // every later call without consuming a byte: what follows is
        // dropped, never parsed.
        keepAlive_ = false;
        consumed = len;
        if (!messageComplete_ && !awaiting_) closeAfterWrite_ = true;
      } else {
        llhttp_resume(&parser_);
      }
    } else if (err != HPE_OK) {
      if (closed_) break;
      int status = pendingError_ ? pendingError_ : 400;
      std::string message = pendingError_ ? pendingErrorMessage_
                                          : std::string("malformed request: ") +
                                                llhttp_get_error_reason(&parser_);
      failRequest(status, message);
      break;
    }
    inOff_ += consumed;
    if (messageComplete_) {
      messageComplete_ = false;
      dispatch();
    }
  }
  if (inOff_ == in_.size()) {
    in_.clear();
    inOff_ = 0;
  } else if (inOff_ > kReadChunk) {
    in_.erase(0, inOff_);
    inOff_ = 0;
  }
  inProcess_ = false;
  if (!closed_ && !awaiting_ && phase_ == Phase::Idle && !closeAfterWrite_) {
    setReadDeadline(server_.options_.idleTimeout);
  }
  if (!closed_) {
    flush();
    if (!closed_) updateInterest();
  }
}

void HttpConnection::dispatch() {
  ++server_.counters_.requests;
  phase_ = Phase::Processing;
  clearReadDeadline();
  awaiting_ = true;
  ExchangePtr ex = ex_;  // the handler may outlive or replace nothing; keep it alive here
  HttpRequest& req = ex->req_;
  ex->head_ = req.method == "HEAD";
  if (!req.rawQuery().empty()) {
    auto q = parseQuery(req.rawQuery());
    if (!q) {
      ex->respondError(400, "malformed query string");
      return;
    }
    req.query = std::move(*q);
  }
  Router::Match m = server_.router_.route(req);
  switch (m.outcome) {
    case Router::Outcome::Matched:
      (*m.handler)(ex);
      return;
    case Router::Outcome::NotFound:
      ex->respondError(404, "not found: " + std::string(req.rawPath()));
      return;
    case Router::Outcome::MethodNotAllowed: {
      HttpHeaders allow;
      allow.add("Allow", m.allow);
      ex->respondError(405, "method " + req.method + " not allowed; allowed: " + m.allow, &allow);
      return;
    }
    case Router::Outcome::BadPath:
      ex->respondError(400, "malformed path: bad percent-encoding");
      return;
  }
}

// ---- writing -------------------------------------------------------------------

void HttpConnection::writeHead(HttpExchange& ex, int status, std::string_view contentType,
                               const HttpHeaders* extra, Framing framing, size_t contentLength) {
  ex.status_ = status;
  out_ += "HTTP/1.1 ";
  appendNumber(out_, static_cast<uint64_t>(status));
  out_ += ' ';
  out_ += statusReason(status);
  out_ += "\r\n";
  out_ += dateHeader();
  if (!contentType.empty()) {
    out_ += "Content-Type: ";
    out_ += contentType;
    out_ += "\r\n";
  }
  if (framing == Framing::Chunked) {
    out_ += "Transfer-Encoding: chunked\r\n";
  } else if (framing == Framing::Length) {
    out_ += "Content-Length: ";
    appendNumber(out_, contentLength);
    out_ += "\r\n";
  } else {
    keepAlive_ = false;  // the body ends when the connection closes
  }
  out_ += "X-Request-ID: ";
  out_ += ex.req_.requestId;
  out_ += "\r\n";
  if (extra) {
    for (const auto& f : *extra) {
      out_ += f.name;
      out_ += ": ";
      out_ += f.value;
      out_ += "\r\n";
    }
  }
  if (!keepAlive_ || server_.shuttingDown_) {
    keepAlive_ = false;
    out_ += "Connection: close\r\n";
  } else if (ex.req_.httpMinor == 0) {
    out_ += "Connection: keep-alive\r\n";
  }
  out_ += "\r\n";
}

void HttpConnection::respond(HttpExchange& ex, int status, std::string_view body,
                             std::string_view contentType, const HttpHeaders* extra) {
  writeHead(ex, status, contentType, extra, Framing::Length, body.size());
  if (!ex.head_) out_ += body;
  ex.bodyBytes_ = ex.head_ ? 0 : body.size();
  ex.state_ = HttpExchange::State::Done;
  finishExchange(ex);
}

void HttpConnection::beginStream(HttpExchange& ex, int status, std::string_view contentType,
                                 const HttpHeaders* extra) {
  // HTTP/1.0 clients know no chunking: their stream ends with the connection.
  writeHead(ex, status, contentType, extra,
            ex.req_.httpMinor >= 1 ? Framing::Chunked : Framing::CloseDelimited, 0);
  ex.state_ = HttpExchange::State::Streaming;
  if (!inProcess_) flush();
}

bool HttpConnection::writeChunk(HttpExchange& ex, std::string_view data) {
  if (!data.empty() && !ex.head_) {
    if (ex.req_.httpMinor >= 1) {
      appendHex(out_, data.size());
      out_ += "\r\n";
      out_ += data;
      out_ += "\r\n";
    } else {
      out_ += data;
    }
    ex.bodyBytes_ += data.size();
  }
  if (!inProcess_) flush();
  if (closed_) return false;
  if (pendingOutput() >= server_.options_.outputHighWater) {
    aboveHighWater_ = true;
    return false;
  }
  return true;
}

void HttpConnection::endStream(HttpExchange& ex) {
  if (ex.req_.httpMinor >= 1 && !ex.head_) out_ += "0\r\n\r\n";
  ex.state_ = HttpExchange::State::Done;
  finishExchange(ex);
}

void HttpConnection::logExchange(const HttpExchange& ex) {
  if (!server_.accessLog_) return;
  AccessLogEntry e;
  e.method = ex.req_.method;
  e.path = ex.req_.rawPath();
  e.status = ex.status_;
  e.bytes = ex.bodyBytes_;
  e.micros = static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(loop_.now() - ex.req_.startedAt)
          .count());
  e.requestId = ex.req_.requestId;
  server_.accessLog_->log(e);
}

void HttpConnection::finishExchange(HttpExchange& ex) {
  logExchange(ex);
  ex.onDrain_ = nullptr;
  ex.onClose_ = nullptr;
  awaiting_ = false;
  phase_ = Phase::Idle;
  idleSince_ = loop_.now();
  if (!keepAlive_) closeAfterWrite_ = true;
  if (inProcess_) return;  // processInput() flushes and goes on with the next request
  flush();
  if (closed_) return;
  if (!closeAfterWrite_) {
    setReadDeadline(server_.options_.idleTimeout);
    processInput();  // pipelined requests waiting in the buffer
  } else {
    updateInterest();
  }
}

void HttpConnection::failRequest(int status, std::string_view message) {
  keepAlive_ = false;
  HttpExchange& ex = *ex_;
  if (ex.req_.requestId.empty()) ex.req_.requestId = generateRequestId();
  if (ex.req_.method.empty()) ex.req_.method = "-";
  std::string body = json::errorBody(message);
  writeHead(ex, status, "application/json", nullptr, Framing::Length, body.size());
  out_ += body;
  ex.bodyBytes_ = body.size();
  ex.state_ = HttpExchange::State::Done;
  logExchange(ex);
  closeAfterWrite_ = true;
  phase_ = Phase::Idle;
  clearReadDeadline();
  in_.clear();
  inOff_ = 0;
}

void HttpConnection::flush() {
  while (outOff_ < out_.size()) {
    ssize_t n = ::send(fd_.get(), out_.data() + outOff_, out_.size() - outOff_, MSG_NOSIGNAL);
    if (n > 0) {
      outOff_ += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) break;
    close();  // EPIPE, ECONNRESET
    return;
  }
  if (outOff_ == out_.size()) {
    out_.clear();
    outOff_ = 0;
    hasWriteDeadline_ = false;
    if (closeAfterWrite_ && !awaiting_ && !(ex_ && ex_->streaming())) {
      close();
      return;
    }
  } else {
    if (outOff_ > 256 * 1024) {
      out_.erase(0, outOff_);
      outOff_ = 0;
    }
    hasWriteDeadline_ = true;
    writeDeadline_ = loop_.now() + server_.options_.writeTimeout;
  }
  if (!inProcess_) updateInterest();
  if (aboveHighWater_ && pendingOutput() < server_.options_.outputHighWater / 2) {
    aboveHighWater_ = false;
    if (ex_ && ex_->streaming() && ex_->onDrain_) {
      auto cb = ex_->onDrain_;  // copy: the callback may replace itself
      cb();
    }
  }
}

void HttpConnection::updateInterest() {
  if (closed_) return;
  // Stop reading while a response is pending and the input buffer already
  // holds a full request's worth, or when the client is not reading ours.
  const HttpServerOptions& o = server_.options_;
  size_t buffered = in_.size() - inOff_;
  bool read = !peerClosed_ && !closeAfterWrite_ && pendingOutput() < o.outputHighWater &&
              buffered < o.maxHeaderBytes + o.maxBodyBytes + kReadChunk;
  uint32_t want = (read ? EPOLLIN : 0u) | (pendingOutput() > 0 ? EPOLLOUT : 0u);
  watcher_.setEvents(want);
  updateTimer();
}

// ---- timeouts -----------------------------------------------------------------
//
// One timer per connection, re-armed lazily: deadlines move on every request
// but the timer is only touched when it would fire too late, so the common
// keep-alive path costs no heap operation.

void HttpConnection::setReadDeadline(Duration d) {
  hasReadDeadline_ = true;
  readDeadline_ = loop_.now() + d;
  updateTimer();
}

void HttpConnection::clearReadDeadline() { hasReadDeadline_ = false; }

void HttpConnection::updateTimer() {
  if (closed_) return;
  bool has = hasReadDeadline_ || hasWriteDeadline_;
  if (!has) return;  // a pending timer firing early just re-checks
  TimePoint due = hasReadDeadline_ ? readDeadline_ : writeDeadline_;
  if (hasWriteDeadline_ && writeDeadline_ < due) due = writeDeadline_;
  if (timer_.pending() && timerAt_ <= due) return;
  timerAt_ = due;
  timer_ = loop_.runAt(due, [this] { onTimer(); });
}

void HttpConnection::onTimer() {
  TimePoint now = loop_.now();
  if (hasWriteDeadline_ && now >= writeDeadline_) {
    close();  // the client stopped reading
    return;
  }
  if (hasReadDeadline_ && now >= readDeadline_) {
    switch (phase_) {
      case Phase::Headers:
        failRequest(408, "timed out reading request headers");
        flush();
        return;
      case Phase::Body:
        failRequest(408, "timed out reading request body");
        flush();
        return;
      case Phase::Idle:
      case Phase::Processing:
        if (awaiting_ || pendingOutput() > 0) break;
        close();
        return;
    }
  }
  updateTimer();
}

}  // namespace sbx::http
