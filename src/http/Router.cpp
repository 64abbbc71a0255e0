#include "http/Router.h"

#include "http/HttpRequest.h"
#include "http/UrlCodec.h"

namespace sbx::http {

namespace {

// "/a/b/" → {"a", "b", ""}; "/" → {""}.
void splitPath(std::string_view path, std::vector<std::string_view>& out) {
  out.clear();
  if (!path.empty() && path[0] == '/') path.remove_prefix(1);
  for (;;) {
    size_t slash = path.find('/');
    out.push_back(path.substr(0, slash));
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
}

}  // namespace

void Router::add(std::string_view method, std::string_view pattern, Handler handler) {
  Route r;
  r.method = std::string(method);
  std::vector<std::string_view> parts;
  splitPath(pattern, parts);
  for (std::string_view p : parts) {
    Segment s;
    if (p.size() >= 2 && p.front() == '{' && p.back() == '}') {
      s.param = std::string(p.substr(1, p.size() - 2));
    } else {
      s.literal = std::string(p);
    }
    r.segments.push_back(std::move(s));
  }
  r.handler = std::move(handler);
  routes_.push_back(std::move(r));
}

bool Router::matches(const Route& r, const std::vector<std::string_view>& parts) const {
  if (r.segments.size() != parts.size()) return false;
  for (size_t i = 0; i < parts.size(); ++i) {
    const Segment& s = r.segments[i];
    if (s.param.empty()) {
      if (s.literal != parts[i]) return false;
    } else if (parts[i].empty()) {
      return false;  // a parameter is never empty
    }
  }
  return true;
}

Router::Match Router::route(HttpRequest& req) const {
  thread_local std::vector<std::string_view> parts;
  splitPath(req.rawPath(), parts);
  Match m;
  const Route* found = nullptr;
  const Route* getRoute = nullptr;
  for (const Route& r : routes_) {
    if (!matches(r, parts)) continue;
    if (r.method == req.method) {
      found = &r;
      break;
    }
    if (r.method == "GET" && req.method == "HEAD" && !getRoute) getRoute = &r;
    if (!m.allow.empty()) m.allow += ", ";
    m.allow += r.method;
    if (r.method == "GET") m.allow += ", HEAD";
  }
  if (!found && getRoute) {
    found = getRoute;
    m.headFallback = true;
  }
  if (!found) {
    m.outcome = m.allow.empty() ? Outcome::NotFound : Outcome::MethodNotAllowed;
    return m;
  }
  req.params.clear();
  for (size_t i = 0; i < parts.size(); ++i) {
    const Segment& s = found->segments[i];
    if (s.param.empty()) continue;
    auto decoded = percentDecode(parts[i]);
    if (!decoded) {
      m.outcome = Outcome::BadPath;
      return m;
    }
    req.params.emplace_back(s.param, std::move(*decoded));
  }
  m.outcome = Outcome::Matched;
  m.handler = &found->handler;
  m.allow.clear();
  return m;
}

}  // namespace sbx::http
