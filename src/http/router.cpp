#include "http/router.hpp"

#include <algorithm>
#include <future>
#include <memory>
#include <stdexcept>
#include <unordered_set>
#include <utility>

namespace bulwark::http {
namespace {

// Splits "/a/b/c" into its segments one at a time, without allocating.
class SegmentCursor {
 public:
  // REQUIRES: path starts with '/'.
  explicit SegmentCursor(std::string_view path) : rest_(path.substr(1)) {}

  bool done() const { return done_; }

  std::string_view Next() {
    const std::size_t slash = rest_.find('/');
    std::string_view segment = rest_.substr(0, slash);
    if (slash == std::string_view::npos) {
      done_ = true;
      rest_ = {};
    } else {
      rest_ = rest_.substr(slash + 1);
    }
    return segment;
  }

 private:
  std::string_view rest_;
  bool done_ = false;
};

bool IsParameter(std::string_view segment) {
  return segment.size() >= 2 && segment.front() == '{' && segment.back() == '}';
}

bool IsTokenChar(char c) {
  // RFC 9110 tchar.
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool IsParameterNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Percent-decodes a path segment. A malformed escape is kept verbatim: the
// handler validates the value anyway, and a 404 would hide the real problem.
std::string PercentDecode(std::string_view segment) {
  std::string out;
  out.reserve(segment.size());
  for (std::size_t i = 0; i < segment.size(); ++i) {
    if (segment[i] == '%' && i + 2 < segment.size() && HexValue(segment[i + 1]) >= 0 &&
        HexValue(segment[i + 2]) >= 0) {
      out.push_back(static_cast<char>(HexValue(segment[i + 1]) * 16 + HexValue(segment[i + 2])));
      i += 2;
    } else {
      out.push_back(segment[i]);
    }
  }
  return out;
}

void ValidatePattern(std::string_view pattern) {
  const auto fail = [&](std::string_view why) {
    throw std::invalid_argument("bad route pattern \"" + std::string(pattern) +
                                "\": " + std::string(why));
  };
  if (pattern.empty() || pattern.front() != '/') fail("must start with '/'");
  if (pattern == "/") return;
  std::unordered_set<std::string_view> names;
  SegmentCursor cursor(pattern);
  while (!cursor.done()) {
    const std::string_view segment = cursor.Next();
    if (segment.empty()) fail("empty segment");
    if (IsParameter(segment)) {
      const std::string_view name = segment.substr(1, segment.size() - 2);
      if (name.empty()) fail("empty parameter name");
      for (char c : name) {
        if (!IsParameterNameChar(c)) fail("parameter names are [A-Za-z0-9_]");
      }
      if (!names.insert(name).second) fail("duplicate parameter name");
    } else if (segment.find_first_of("{}") != std::string_view::npos) {
      fail("a parameter must be a whole segment");
    }
  }
}

// Matches path against pattern; on success appends the parameters to params
// (when params is not null).
bool Matches(std::string_view pattern, std::string_view path,
             std::unordered_map<std::string, std::string>* params) {
  if (path.empty() || path.front() != '/') return false;
  SegmentCursor pattern_cursor(pattern);
  SegmentCursor path_cursor(path);
  while (!pattern_cursor.done() && !path_cursor.done()) {
    const std::string_view expected = pattern_cursor.Next();
    const std::string_view actual = path_cursor.Next();
    if (IsParameter(expected)) {
      if (actual.empty()) return false;
      if (params != nullptr) {
        params->insert_or_assign(std::string(expected.substr(1, expected.size() - 2)),
                                 PercentDecode(actual));
      }
    } else if (expected != actual) {
      return false;
    }
  }
  return pattern_cursor.done() && path_cursor.done();
}

}  // namespace

Reply Reply::Then(Executor executor, Step step) {
  if (!step) throw std::invalid_argument("Reply::Then without a step");
  Reply reply;
  reply.next_executor_ = executor;
  reply.next_ = std::move(step);
  return reply;
}

Reply Reply::Await(Start start) {
  if (!start) throw std::invalid_argument("Reply::Await without a start");
  Reply reply;
  reply.start_ = std::move(start);
  return reply;
}

HttpResponse Reply::RunInline() && {
  Reply reply = std::move(*this);
  for (;;) {
    if (reply.is_await()) {
      auto promise = std::make_shared<std::promise<Reply>>();
      std::future<Reply> next = promise->get_future();
      reply.TakeStart()([promise](Reply r) { promise->set_value(std::move(r)); });
      reply = next.get();
    } else if (reply.has_next()) {
      reply = reply.TakeNext()();
    } else {
      return std::move(reply.response_);
    }
  }
}

void Router::Add(std::string method, std::string pattern, Executor executor, Handler handler) {
  if (method.empty()) throw std::invalid_argument("route method is empty");
  for (char c : method) {
    if (!IsTokenChar(c)) throw std::invalid_argument("bad route method \"" + method + "\"");
  }
  ValidatePattern(pattern);
  if (!handler) throw std::invalid_argument("route " + method + " " + pattern + " has no handler");
  Route route;
  route.method = std::move(method);
  route.name = pattern;  // the pattern, not the path: bounded label cardinality
  route.pattern = std::move(pattern);
  route.executor = executor;
  route.handler = std::move(handler);
  routes_.push_back(std::move(route));
}

RouteMatch Router::Find(HttpRequest& request) const {
  request.path_params.clear();
  RouteMatch match;
  std::vector<std::string_view> allowed;
  for (const Route& route : routes_) {
    if (!Matches(route.pattern, request.path, nullptr)) continue;
    if (route.method == request.method) {
      Matches(route.pattern, request.path, &request.path_params);
      match.route = &route;
      match.status = 200;
      return match;
    }
    match.status = 405;
    if (std::find(allowed.begin(), allowed.end(), route.method) == allowed.end()) {
      allowed.push_back(route.method);  // insertion order; two patterns may cover one path
    }
  }
  for (std::string_view method : allowed) {
    if (!match.allow.empty()) match.allow += ", ";
    match.allow += method;
  }
  return match;
}

}  // namespace bulwark::http
