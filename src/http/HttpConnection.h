#pragma once
// HttpConnection: one accepted socket of an HttpServer. Internal to src/http.
//
// Requests are parsed one at a time: llhttp is paused at the end of each
// message and resumed only after that request's response is complete, so
// pipelined requests are answered in order without a response queue, and a
// client that pipelines faster than it reads is throttled by backpressure.

#include <llhttp.h>

#include <memory>
#include <string>

#include "http/HttpServer.h"
#include "reactor/EventLoop.h"

namespace sbx::http {

class HttpConnection final : public DeferredDeletable {
 public:
  HttpConnection(HttpServer& server, Fd fd);
  ~HttpConnection() override;

  void start();
  // Nothing in progress: no request being read, processed or answered.
  // Such a connection may be closed to make room (HttpServer's cap).
  bool idle() const {
    return !closed_ && phase_ == Phase::Idle && !awaiting_ && !closeAfterWrite_ &&
           pendingOutput() == 0 && inOff_ == in_.size();
  }
  // When it last became idle (accepted, or its last response finished): the
  // cap closes the longest idle first.
  TimePoint idleSince() const { return idleSince_; }
  // Closes now: unregisters, closes the fd, tells the exchange its client is
  // gone, and hands itself to the server for deferred deletion.
  void close();
  // Server shutdown: close if nothing is in progress, else finish the
  // current request with Connection: close.
  void shutdownGracefully();

  // Used by HttpExchange.
  void respond(HttpExchange& ex, int status, std::string_view body, std::string_view contentType,
               const HttpHeaders* extra);
  void beginStream(HttpExchange& ex, int status, std::string_view contentType,
                   const HttpHeaders* extra);
  bool writeChunk(HttpExchange& ex, std::string_view data);
  void endStream(HttpExchange& ex);

 private:
  enum class Phase { Idle, Headers, Body, Processing };
  enum class Framing { Length, Chunked, CloseDelimited };

  static int onMessageBegin(llhttp_t* p);
  static int onUrl(llhttp_t* p, const char* at, size_t len);
  static int onHeaderField(llhttp_t* p, const char* at, size_t len);
  static int onHeaderValue(llhttp_t* p, const char* at, size_t len);
  static int onHeaderValueComplete(llhttp_t* p);
  static int onHeadersComplete(llhttp_t* p);
  static int onBody(llhttp_t* p, const char* at, size_t len);
  static int onMessageComplete(llhttp_t* p);
  static const llhttp_settings_t& settings();

  void onEvents(uint32_t events);
  void handleRead();
  void processInput();
  void dispatch();
  void finishExchange(HttpExchange& ex);
  void writeHead(HttpExchange& ex, int status, std::string_view contentType,
                 const HttpHeaders* extra, Framing framing, size_t contentLength);
  void logExchange(const HttpExchange& ex);
  // Answers a request that failed before dispatch (400/408/413/417/431)
  // and closes the connection once the answer is written.
  void failRequest(int status, std::string_view message);
  void flush();
  void updateInterest();
  void setReadDeadline(Duration d);
  void clearReadDeadline();
  void updateTimer();
  void onTimer();
  size_t pendingOutput() const { return out_.size() - outOff_; }
  bool headerLimitExceeded(size_t more);

  HttpServer& server_;
  EventLoop& loop_;
  Fd fd_;
  IoWatcher watcher_;
  Timer timer_;
  TimePoint timerAt_;
  bool hasReadDeadline_ = false;
  TimePoint readDeadline_;
  bool hasWriteDeadline_ = false;
  TimePoint writeDeadline_;
  Phase phase_ = Phase::Idle;
  TimePoint idleSince_{};

  llhttp_t parser_;
  std::string in_;
  size_t inOff_ = 0;
  std::string out_;
  size_t outOff_ = 0;

  ExchangePtr ex_;           // the request being read or awaiting its response
  bool awaiting_ = false;    // dispatched, response not complete yet
  bool messageComplete_ = false;
  bool keepAlive_ = true;
  bool closeAfterWrite_ = false;
  bool peerClosed_ = false;
  bool closed_ = false;
  bool inProcess_ = false;
  bool aboveHighWater_ = false;

  std::string field_;
  std::string value_;
  size_t headerBytes_ = 0;
  int pendingError_ = 0;
  std::string pendingErrorMessage_;
};

}  // namespace sbx::http
