#pragma once
// Router: method + path pattern → handler. Patterns are literal segments and
// {name} parameters: "/v1/sandboxes/{id}/containers/{name}/logs". Matching
// runs on the raw (still percent-encoded) segments, so an encoded "/"
// ("%2F") stays inside one parameter; parameters are then decoded.
//
// Not thread-safe; build it before serving.

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace sbx::http {

struct HttpRequest;
class HttpExchange;
using ExchangePtr = std::shared_ptr<HttpExchange>;
using Handler = std::function<void(const ExchangePtr&)>;

class Router {
 public:
  // Registers `handler` for `method` ("GET", "POST", ...) on `pattern`.
  void add(std::string_view method, std::string_view pattern, Handler handler);

  enum class Outcome { Matched, NotFound, MethodNotAllowed, BadPath };
  struct Match {
    Outcome outcome = Outcome::NotFound;
    const Handler* handler = nullptr;
    std::string allow;  // for MethodNotAllowed: "GET, DELETE"
    bool headFallback = false;  // HEAD served by the GET handler
  };

  // Fills req.params on a match. A HEAD request with no HEAD route is
  // matched to the GET route (headFallback). BadPath: a malformed escape in
  // a parameter.
  Match route(HttpRequest& req) const;

 private:
  struct Segment {
    std::string literal;
    std::string param;  // non-empty: a {param} segment
  };
  struct Route {
    std::string method;
    std::vector<Segment> segments;
    Handler handler;
  };
  bool matches(const Route& r, const std::vector<std::string_view>& parts) const;

  std::vector<Route> routes_;
};

}  // namespace sbx::http
