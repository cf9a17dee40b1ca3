// Routing table: (method, path pattern) -> handler, with the executor the
// handler must run on so that no I/O thread ever blocks on a store or a hash.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "http/message.hpp"

namespace bulwark::http {

// Where a handler runs.
enum class Executor {
  kInline,  // on the I/O thread: must not block (health, metrics, static answers)
  kStore,   // on the bounded store worker pool (store reads and writes)
  kHash,    // on the bounded hashing pool (password hashing; login)
};

// What a handler returns: its response, or a next step and the executor that
// step must run on. A handler whose work spans two pools (login: a store read,
// then Argon2id, then a store write) hops between them this way instead of
// blocking one pool on the other's kind of work; the server runs each step on
// the executor it names, and sends the response of the last one.
class Reply {
 public:
  using Step = std::function<Reply()>;

  // A plain response: the common case, hence implicit.
  Reply(HttpResponse response) : response_(std::move(response)) {}  // NOLINT
  // Runs `step` on `executor` next; what it returns replaces this reply.
  static Reply Then(Executor executor, Step step);

  // Continues the request with the Reply passed to it; call exactly once,
  // from any thread. Dropping it uncalled answers 500.
  using Resume = std::function<void(Reply)>;
  // Starts an operation that completes by calling `resume`, without holding
  // a thread while it waits (a batched store write). The server calls
  // `start` on an I/O thread, so it must not block.
  using Start = std::function<void(Resume)>;
  static Reply Await(Start start);

  bool is_await() const { return static_cast<bool>(start_); }
  // REQUIRES: is_await(). Moves the start out.
  Start TakeStart() { return std::move(start_); }

  bool has_next() const { return static_cast<bool>(next_); }
  Executor next_executor() const { return next_executor_; }
  // REQUIRES: has_next(). Moves the next step out.
  Step TakeNext() { return std::move(next_); }
  HttpResponse& response() { return response_; }

  // Runs the remaining steps on the calling thread and returns the final
  // response (tests and tools that have no pools).
  HttpResponse RunInline() &&;

 private:
  Reply() = default;

  HttpResponse response_;
  Executor next_executor_ = Executor::kInline;
  Step next_;
  Start start_;
};

using Handler = std::function<Reply(HttpRequest&)>;

struct Route {
  std::string method;
  std::string pattern;  // "/v1/admin/users/{id}/sessions": {name} matches one non-empty segment
  std::string name;     // label for metrics and logs, e.g. "/v1/admin/users/{id}/sessions"
  Executor executor = Executor::kStore;
  Handler handler;
};

struct RouteMatch {
  const Route* route = nullptr;  // set when status == 200
  int status = 404;              // 200 matched, 404 no such path, 405 path exists for other methods
  std::string allow;             // for 405: the methods the path accepts, comma-separated
};

class Router {
 public:
  // Adds a route. Patterns are matched in insertion order; literal and
  // parameter segments may be mixed. Throws std::invalid_argument on a bad pattern.
  void Add(std::string method, std::string pattern, Executor executor, Handler handler);
  // Finds the route for the request's method and path and fills request.path_params.
  RouteMatch Find(HttpRequest& request) const;

  const std::vector<Route>& routes() const { return routes_; }

 private:
  std::vector<Route> routes_;
};

}  // namespace bulwark::http
