#include "http/server.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <condition_variable>
#include <exception>
#include <future>
#include <limits>
#include <mutex>
#include <optional>
#include <random>
#include <stdexcept>
#include <system_error>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

namespace bulwark::http {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using boost::system::error_code;
using SteadyClock = std::chrono::steady_clock;

constexpr auto kAsTuple = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t kMaxRequestIdLength = 128;
constexpr std::size_t kIdleReadSize = 4096;
// After the last response on a connection we half-close and read what the
// client still sends, so that closing does not turn into an RST that could
// destroy the response before the client reads it.
constexpr std::chrono::milliseconds kLingerTime{1000};
constexpr std::size_t kMaxLingerBytes = 256 * 1024;
constexpr std::chrono::milliseconds kAcceptBackoff{50};
constexpr std::chrono::seconds kStopAcceptingWait{2};
constexpr std::string_view kUnmatched = "unmatched";

// Set on the server's I/O threads, so that calls from a handler never block
// waiting for their own thread.
thread_local const void* tls_io_server = nullptr;

struct Connection {
  Connection(tcp::socket socket, std::string remote)
      : stream(std::move(socket)),
        deadline(stream.get_executor()),
        remote_address(std::move(remote)) {}

  beast::tcp_stream stream;  // its own timer bounds writes only (it closes on expiry)
  // Bounds idle waits and request reads. It cancels instead of closing, so
  // the server can still answer 408 after a read timed out.
  asio::steady_timer deadline;
  const std::string remote_address;

  // The fields below are touched only on the connection's strand.
  uint64_t deadline_generation = 0;
  bool timed_out = false;   // the current deadline fired
  bool idle = false;        // waiting for the first byte of a request
  bool served_any = false;  // at least one response was written
};

void ArmDeadline(const std::shared_ptr<Connection>& conn, SteadyClock::duration timeout) {
  const uint64_t generation = ++conn->deadline_generation;
  conn->timed_out = false;
  conn->deadline.expires_after(timeout);
  // The timer shares the connection's strand executor, so this runs on the strand.
  conn->deadline.async_wait([weak = std::weak_ptr<Connection>(conn), generation](error_code ec) {
    const std::shared_ptr<Connection> c = weak.lock();
    // A stale expiry may already be queued when the deadline is re-armed.
    if (ec || c == nullptr || c->deadline_generation != generation) return;
    c->timed_out = true;
    error_code ignored;
    c->stream.socket().cancel(ignored);
  });
}

void DisarmDeadline(Connection& conn) {
  ++conn.deadline_generation;
  conn.deadline.cancel();
}

// Closes at once. Runs on the connection's strand (or with no I/O thread running).
void CloseNow(Connection& conn) {
  error_code ignored;
  conn.stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
  conn.stream.close();
  DisarmDeadline(conn);
}

bool IsSaneRequestId(std::string_view id) {
  if (id.empty() || id.size() > kMaxRequestIdLength) return false;
  return std::all_of(id.begin(), id.end(), [](char c) { return c > 0x20 && c < 0x7F; });
}

// Not a secret: it only correlates log lines.
std::string GenerateRequestId() {
  thread_local std::mt19937_64 engine = [] {
    std::random_device device;
    std::seed_seq seed{device(), device(), device(), device()};
    return std::mt19937_64(seed);
  }();
  static constexpr char kHex[] = "0123456789abcdef";
  uint64_t bits = engine();
  std::string id(16, '0');
  for (char& c : id) {
    c = kHex[bits & 0xF];
    bits >>= 4;
  }
  return id;
}

std::string RequestIdFrom(const bhttp::fields& fields) {
  const auto it = fields.find("X-Request-Id");
  if (it != fields.end() && IsSaneRequestId(it->value())) return std::string(it->value());
  return GenerateRequestId();
}

std::string_view PathOf(std::string_view target) { return target.substr(0, target.find('?')); }

std::string AddressText(const asio::ip::address& address) {
  // A dual-stack listener reports IPv4 peers as ::ffff:a.b.c.d.
  if (address.is_v6() && address.to_v6().is_v4_mapped()) {
    return asio::ip::make_address_v4(asio::ip::v4_mapped, address.to_v6()).to_string();
  }
  return address.to_string();
}

bool IsTokenChar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

// A handler must not be able to split the response with CR/LF in a header.
bool IsValidResponse(const HttpResponse& response) {
  if (response.status < 200 || response.status > 599) return false;
  for (const auto& [name, value] : response.headers) {
    if (name.empty() || !std::all_of(name.begin(), name.end(), IsTokenChar)) return false;
    if (value.find_first_of(std::string_view("\r\n\0", 3)) != std::string::npos) return false;
  }
  return true;
}

// Framing headers belong to the server, not to handlers.
bool IsServerOwnedHeader(std::string_view name) {
  return HeaderNameEquals(name, "Connection") || HeaderNameEquals(name, "Content-Length") ||
         HeaderNameEquals(name, "Transfer-Encoding") || HeaderNameEquals(name, "Keep-Alive") ||
         HeaderNameEquals(name, "X-Request-Id");
}

bhttp::response<bhttp::string_body> ToWire(HttpResponse& response, unsigned version,
                                           bool keep_alive, const std::string& request_id) {
  bhttp::response<bhttp::string_body> out;
  out.version(version);
  out.result(static_cast<unsigned>(response.status));
  for (const auto& [name, value] : response.headers) {
    if (!IsServerOwnedHeader(name)) out.insert(name, value);
  }
  out.set("X-Request-Id", request_id);
  // Answers of an authentication service must never be cached; a handler may
  // still choose its own policy explicitly.
  if (response.Header("Cache-Control") == nullptr) out.set(bhttp::field::cache_control, "no-store");
  const bool bodiless = response.status == 204 || response.status == 304;
  if (!bodiless) {
    if (!response.body.empty() && response.Header("Content-Type") == nullptr) {
      out.set(bhttp::field::content_type, "application/json");
    }
    out.body() = std::move(response.body);
    out.content_length(out.body().size());
  }
  out.keep_alive(keep_alive);
  return out;
}

// The response for a request that could not be read, or nullopt when the
// client is gone and the connection should just close.
std::optional<HttpResponse> ReadErrorResponse(error_code ec, bool timed_out) {
  if (timed_out && ec == asio::error::operation_aborted) {
    return HttpResponse::Error(408, "request_timeout", "the request was not received in time");
  }
  if (ec == bhttp::error::header_limit) {
    return HttpResponse::Error(431, "request_header_too_large", "the request header is too large");
  }
  if (ec == bhttp::error::body_limit) {
    return HttpResponse::Error(413, "payload_too_large", "the request body is too large");
  }
  if (ec == bhttp::error::end_of_stream || ec == bhttp::error::partial_message) {
    return std::nullopt;
  }
  static const error_code kHttpError = bhttp::error::bad_method;
  if (ec.category() == kHttpError.category()) {
    return HttpResponse::Error(400, "bad_request", "the request is malformed");
  }
  return std::nullopt;  // a socket error
}

class InFlightRequest {
 public:
  explicit InFlightRequest(std::atomic<std::size_t>& counter) : counter_(counter) { ++counter_; }
  ~InFlightRequest() { --counter_; }
  InFlightRequest(const InFlightRequest&) = delete;
  InFlightRequest& operator=(const InFlightRequest&) = delete;

 private:
  std::atomic<std::size_t>& counter_;
};

}  // namespace

class HttpServer::Impl {
 public:
  Impl(ServerOptions options, const Router& router, WorkPools pools, RequestObserver* observer)
      : options_(std::move(options)),
        router_(router),
        pools_(pools),
        observer_(observer),
        ioc_(std::max(1, options_.io_threads)) {}

  ~Impl() {
    Stop();
    // A handler still running on a pool will post its completion into ioc_;
    // wait for it before ioc_ goes away.
    std::unique_lock lock(pool_mu_);
    pool_cv_.wait(lock, [&] { return pool_jobs_ == 0; });
  }

  void Start();
  uint16_t port() const { return port_; }
  void StopAccepting();
  void BeginDrain();
  std::size_t WaitForConnections(SteadyClock::time_point deadline);
  void Stop();

  std::size_t active_connections() const {
    std::lock_guard lock(mu_);
    return connections_.size();
  }
  std::size_t in_flight_requests() const { return in_flight_.load(); }

 private:
  struct Job {
    const Route* route = nullptr;
    HttpRequest request;
    HttpResponse response;
  };

  // Keeps a connection in the registry for as long as its coroutine frame exists.
  class ConnectionLease {
   public:
    ConnectionLease(Impl* impl, std::shared_ptr<Connection> conn) : impl_(impl) {
      std::lock_guard lock(impl_->mu_);
      id_ = ++impl_->next_connection_id_;
      impl_->connections_.emplace(id_, std::move(conn));
    }
    ConnectionLease(ConnectionLease&& other) noexcept
        : impl_(std::exchange(other.impl_, nullptr)), id_(other.id_) {}
    ConnectionLease& operator=(ConnectionLease&&) = delete;
    ~ConnectionLease() {
      if (impl_ == nullptr) return;
      std::lock_guard lock(impl_->mu_);
      impl_->connections_.erase(id_);
      impl_->connections_cv_.notify_all();
    }

   private:
    Impl* impl_;
    uint64_t id_ = 0;
  };

  // Counts a handler handed to a pool, until the pool is done with it.
  class PoolJobToken {
   public:
    explicit PoolJobToken(Impl* impl) : impl_(impl) {
      std::lock_guard lock(impl_->pool_mu_);
      ++impl_->pool_jobs_;
    }
    PoolJobToken(PoolJobToken&& other) noexcept : impl_(std::exchange(other.impl_, nullptr)) {}
    PoolJobToken& operator=(PoolJobToken&&) = delete;
    ~PoolJobToken() {
      if (impl_ == nullptr) return;
      std::lock_guard lock(impl_->pool_mu_);
      if (--impl_->pool_jobs_ == 0) impl_->pool_cv_.notify_all();
    }

   private:
    Impl* impl_;
  };

  // Runs a handler on a pool thread, then resumes the awaiting coroutine on
  // its strand.
  template <typename CompletionHandler>
  class PoolTask {
   public:
    PoolTask(Impl* impl, std::shared_ptr<Job> job, CompletionHandler handler)
        : token_(impl),
          impl_(impl),
          job_(std::move(job)),
          work_(asio::make_work_guard(asio::get_associated_executor(handler))),
          handler_(std::move(handler)) {}
    PoolTask(PoolTask&&) = default;

    void operator()() {
      impl_->RunHandler(*job_);
      asio::post(work_->get_executor(), std::move(*handler_));
      handler_.reset();
      work_.reset();
    }

   private:
    // Declared first so it is released last: after everything that touches
    // the io_context, also when the pool drops the task without running it.
    PoolJobToken token_;
    Impl* impl_;
    std::shared_ptr<Job> job_;
    std::optional<asio::executor_work_guard<asio::associated_executor_t<CompletionHandler>>> work_;
    std::optional<CompletionHandler> handler_;
  };

  struct Exchange {
    std::string method;
    std::string path;
    std::string request_id;
    std::string_view route = kUnmatched;
    SteadyClock::time_point started;
  };

  asio::awaitable<void> Listen(std::shared_ptr<tcp::acceptor> acceptor);
  void StartConnection(tcp::socket socket);
  asio::awaitable<void> Serve(std::shared_ptr<Connection> conn, ConnectionLease lease);
  asio::awaitable<error_code> ReadRequest(Connection& conn, beast::flat_buffer& buffer,
                                          bhttp::request_parser<bhttp::string_body>& parser);
  asio::awaitable<void> Dispatch(std::shared_ptr<Job> job);
  asio::awaitable<void> RunOnPool(asio::thread_pool& pool, std::shared_ptr<Job> job);
  void RunHandler(Job& job);
  asio::awaitable<bool> Respond(Connection& conn, HttpResponse response, unsigned version,
                                bool keep_alive, const Exchange& exchange);
  asio::awaitable<void> CloseGracefully(std::shared_ptr<Connection> conn);
  std::vector<std::shared_ptr<Connection>> SnapshotConnections() const;
  bool OnIoThread() const { return tls_io_server == this; }

  const ServerOptions options_;
  const Router& router_;
  const WorkPools pools_;
  RequestObserver* const observer_;

  std::atomic<bool> draining_{false};
  std::atomic<std::size_t> in_flight_{0};
  // Diagnostics only (no logger is linked into this module).
  std::atomic<uint64_t> handler_failures_{0};
  std::atomic<uint64_t> connection_failures_{0};
  std::atomic<uint64_t> accept_errors_{0};

  mutable std::mutex mu_;
  std::condition_variable connections_cv_;
  std::unordered_map<uint64_t, std::shared_ptr<Connection>> connections_;
  uint64_t next_connection_id_ = 0;

  std::mutex pool_mu_;
  std::condition_variable pool_cv_;
  std::size_t pool_jobs_ = 0;

  std::mutex stop_mu_;                // serializes Start() and Stop()
  std::atomic<bool> started_{false};  // acceptor_ and port_ are set before it turns true
  std::atomic<bool> stopped_{false};
  uint16_t port_ = 0;

  // Destroying ioc_ destroys the suspended coroutine frames, whose
  // destructors touch the members above; so ioc_ is declared after them.
  asio::io_context ioc_;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_;
  std::shared_ptr<tcp::acceptor> acceptor_;
  std::vector<std::thread> threads_;
};

void HttpServer::Impl::Start() {
  std::lock_guard stop_lock(stop_mu_);
  if (started_) throw std::logic_error("HttpServer::Start called twice");
  if (stopped_) throw std::logic_error("HttpServer::Start after Stop");

  error_code ec;
  tcp::endpoint endpoint;
  const asio::ip::address address = asio::ip::make_address(options_.host, ec);
  if (!ec) {
    endpoint = tcp::endpoint(address, options_.port);
  } else {
    tcp::resolver resolver(ioc_);
    const auto results =
        resolver.resolve(options_.host, std::to_string(options_.port), tcp::resolver::passive, ec);
    if (ec || results.empty()) {
      throw std::system_error(
          ec ? std::error_code(ec) : std::make_error_code(std::errc::address_not_available),
          "cannot resolve listen host \"" + options_.host + "\"");
    }
    endpoint = results.begin()->endpoint();
  }

  // Bind and listen here, synchronously, so that a taken port throws from Start().
  const std::string where = options_.host + ":" + std::to_string(options_.port);
  auto acceptor = std::make_shared<tcp::acceptor>(asio::make_strand(ioc_));
  const auto check = [&](std::string_view step) {
    if (ec) throw std::system_error(std::error_code(ec), std::string(step) + " " + where);
  };
  acceptor->open(endpoint.protocol(), ec);
  check("open");
  // Lets a restarted server bind while old connections sit in TIME_WAIT; it
  // does not allow two listeners on one port.
  acceptor->set_option(asio::socket_base::reuse_address(true), ec);
  check("setsockopt");
  acceptor->bind(endpoint, ec);
  check("bind");
  acceptor->listen(asio::socket_base::max_listen_connections, ec);
  check("listen");
  port_ = acceptor->local_endpoint(ec).port();
  check("getsockname");
  acceptor_ = acceptor;

  // Keeps run() going while nothing is pending (e.g. after StopAccepting).
  work_.emplace(ioc_.get_executor());
  // Accept errors are handled inside Listen(); what escapes is a bug or
  // exhaustion, and a server that silently stopped accepting is worse than
  // one that crashes, so rethrow it out of run().
  asio::co_spawn(acceptor->get_executor(), Listen(acceptor), [](std::exception_ptr error) {
    if (error) std::rethrow_exception(error);
  });
  started_ = true;
  const int threads = std::max(1, options_.io_threads);
  threads_.reserve(threads);
  for (int i = 0; i < threads; ++i) {
    threads_.emplace_back([this] {
      tls_io_server = this;
      ioc_.run();
    });
  }
}

void HttpServer::Impl::StopAccepting() {
  // Not under stop_mu_: a handler calling this must not deadlock with a
  // concurrent Stop() that joins its thread.
  if (!started_.load() || stopped_.load()) return;  // Stop() closes it itself
  const std::shared_ptr<tcp::acceptor> acceptor = acceptor_;
  auto closed = std::make_shared<std::promise<void>>();
  std::future<void> done = closed->get_future();
  // The acceptor is used by the listener on its strand; close it there.
  asio::post(acceptor->get_executor(), [acceptor, closed] {
    error_code ignored;
    acceptor->close(ignored);
    closed->set_value();
  });
  // Wait, so that connects after StopAccepting() returns are refused; an I/O
  // thread must not wait for itself, and a stopping server may never run it.
  if (!OnIoThread()) done.wait_for(kStopAcceptingWait);
}

void HttpServer::Impl::BeginDrain() {
  draining_.store(true);
  for (const std::shared_ptr<Connection>& conn : SnapshotConnections()) {
    asio::post(conn->stream.get_executor(), [this, conn] {
      if (!conn->idle) return;  // busy: its response carries "Connection: close"
      if (conn->served_any) {
        CloseNow(*conn);  // an idle keep-alive connection
        return;
      }
      // A new connection may be about to send its first request: give it
      // read_timeout to do so rather than the whole idle_timeout.
      if (conn->deadline.expiry() > SteadyClock::now() + options_.read_timeout) {
        ArmDeadline(conn, options_.read_timeout);
      }
    });
  }
}

std::size_t HttpServer::Impl::WaitForConnections(SteadyClock::time_point deadline) {
  std::vector<std::shared_ptr<Connection>> left;
  {
    std::unique_lock lock(mu_);
    connections_cv_.wait_until(lock, deadline, [&] { return connections_.empty(); });
    for (const auto& [id, conn] : connections_) left.push_back(conn);
  }
  for (const std::shared_ptr<Connection>& conn : left) {
    // A handler still running keeps its coroutine until it returns; its
    // response then fails to write on the closed socket.
    asio::post(conn->stream.get_executor(), [conn] { CloseNow(*conn); });
  }
  return left.size();
}

void HttpServer::Impl::Stop() {
  std::lock_guard stop_lock(stop_mu_);
  if (stopped_.load()) return;
  if (OnIoThread()) throw std::logic_error("HttpServer::Stop called on one of its I/O threads");
  stopped_ = true;
  if (!started_.load()) return;
  work_.reset();
  ioc_.stop();
  for (std::thread& thread : threads_) {
    if (thread.joinable()) thread.join();
  }
  // No I/O thread runs any more, so sockets may be closed from here: clients
  // see the close now rather than when the server object is destroyed.
  error_code ignored;
  acceptor_->close(ignored);
  for (const std::shared_ptr<Connection>& conn : SnapshotConnections()) CloseNow(*conn);
}

std::vector<std::shared_ptr<Connection>> HttpServer::Impl::SnapshotConnections() const {
  std::lock_guard lock(mu_);
  std::vector<std::shared_ptr<Connection>> out;
  out.reserve(connections_.size());
  for (const auto& [id, conn] : connections_) out.push_back(conn);
  return out;
}

asio::awaitable<void> HttpServer::Impl::Listen(std::shared_ptr<tcp::acceptor> acceptor) {
  for (;;) {
    // Each connection gets its own strand.
    auto [ec, socket] =
        co_await acceptor->async_accept(asio::any_io_executor(asio::make_strand(ioc_)), kAsTuple);
    if (ec) {
      if (ec == asio::error::operation_aborted || !acceptor->is_open()) co_return;
      ++accept_errors_;
      if (ec == asio::error::connection_aborted) continue;
      // Out of descriptors or memory: back off instead of spinning.
      asio::steady_timer pause(co_await asio::this_coro::executor, kAcceptBackoff);
      co_await pause.async_wait(kAsTuple);
      continue;
    }
    StartConnection(std::move(socket));
  }
}

void HttpServer::Impl::StartConnection(tcp::socket socket) {
  error_code ec;
  socket.set_option(tcp::no_delay(true), ec);
  const tcp::endpoint peer = socket.remote_endpoint(ec);
  std::string remote = ec ? std::string() : AddressText(peer.address());
  auto conn = std::make_shared<Connection>(std::move(socket), std::move(remote));
  // Registered before the coroutine starts, so the count never misses it.
  ConnectionLease lease(this, conn);
  const asio::any_io_executor executor = conn->stream.get_executor();
  asio::co_spawn(executor, Serve(std::move(conn), std::move(lease)),
                 [this](std::exception_ptr error) {
                   if (error) ++connection_failures_;
                 });
}

// One connection. Timeouts: waiting for the first byte of a request is bounded
// by idle_timeout (the connection is idle, so it just closes); from that byte
// on, reading the whole request is bounded by read_timeout (-> 408). Writing a
// response is also bounded by read_timeout, since ServerOptions has no write
// timeout and a client that stops reading must not pin the connection.
asio::awaitable<void> HttpServer::Impl::Serve(std::shared_ptr<Connection> conn,
                                              [[maybe_unused]] ConnectionLease lease) {
  beast::flat_buffer buffer;
  for (;;) {
    if (buffer.size() == 0) {  // otherwise a pipelined request is already here
      if (draining_.load() && conn->served_any) break;
      conn->idle = true;
      ArmDeadline(conn, draining_.load() ? std::min(options_.idle_timeout, options_.read_timeout)
                                         : options_.idle_timeout);
      auto [ec, n] = co_await conn->stream.async_read_some(buffer.prepare(kIdleReadSize), kAsTuple);
      conn->idle = false;
      DisarmDeadline(*conn);
      if (ec) break;  // closed by the peer, idle timeout, drain or forced close
      buffer.commit(n);
    }

    Exchange exchange;
    exchange.started = SteadyClock::now();
    bhttp::request_parser<bhttp::string_body> parser;
    parser.header_limit(static_cast<std::uint32_t>(
        std::min<std::size_t>(options_.header_limit, std::numeric_limits<std::uint32_t>::max())));
    parser.body_limit(options_.body_limit);
    ArmDeadline(conn, options_.read_timeout);
    const error_code read_error = co_await ReadRequest(*conn, buffer, parser);
    DisarmDeadline(*conn);

    if (read_error) {
      std::optional<HttpResponse> response = ReadErrorResponse(read_error, conn->timed_out);
      if (!response) break;
      {
        InFlightRequest in_flight(in_flight_);
        const auto& partial = parser.get();
        exchange.method = std::string(partial.method_string());
        exchange.path = std::string(PathOf(partial.target()));
        exchange.request_id = RequestIdFrom(partial);
        co_await Respond(*conn, std::move(*response), 11, false, exchange);
      }
      co_await CloseGracefully(conn);
      co_return;
    }

    std::optional<InFlightRequest> in_flight;
    in_flight.emplace(in_flight_);
    bhttp::request<bhttp::string_body> message = parser.release();
    const unsigned version = message.version();
    auto job = std::make_shared<Job>();
    HttpRequest& request = job->request;
    request.method = std::string(message.method_string());
    request.target = std::string(message.target());
    const std::size_t question = request.target.find('?');
    request.path = request.target.substr(0, question);
    if (question != std::string::npos) request.query = request.target.substr(question + 1);
    for (const auto& field : message) {
      request.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
    }
    request.body = std::move(message.body());
    request.remote_address = conn->remote_address;
    request.request_id = RequestIdFrom(message);
    exchange.method = request.method;
    exchange.path = request.path;
    exchange.request_id = request.request_id;

    co_await Dispatch(job);
    if (job->route != nullptr) exchange.route = job->route->name;

    const bool keep_alive = message.keep_alive() && !draining_.load();
    const bool written =
        co_await Respond(*conn, std::move(job->response), version, keep_alive, exchange);
    in_flight.reset();
    conn->served_any = true;
    if (!written) break;
    if (!keep_alive) {
      co_await CloseGracefully(conn);
      co_return;
    }
  }
  CloseNow(*conn);
}

asio::awaitable<error_code> HttpServer::Impl::ReadRequest(
    Connection& conn, beast::flat_buffer& buffer,
    bhttp::request_parser<bhttp::string_body>& parser) {
  auto [ec, n] = co_await bhttp::async_read_header(conn.stream, buffer, parser, kAsTuple);
  if (ec) co_return ec;
  if (parser.is_done()) co_return error_code();
  const auto& header = parser.get();
  const auto expect = header.find(bhttp::field::expect);
  if (header.version() >= 11 && expect != header.end() &&
      HeaderNameEquals(expect->value(), "100-continue")) {
    // The client waits for this before it sends the body.
    bhttp::response<bhttp::empty_body> proceed{bhttp::status::continue_, 11};
    conn.stream.expires_after(options_.read_timeout);
    auto [write_error, written] = co_await bhttp::async_write(conn.stream, proceed, kAsTuple);
    conn.stream.expires_never();
    if (write_error) co_return write_error;
  }
  auto [body_error, body_bytes] = co_await bhttp::async_read(conn.stream, buffer, parser, kAsTuple);
  co_return body_error;
}

asio::awaitable<void> HttpServer::Impl::Dispatch(std::shared_ptr<Job> job) {
  const RouteMatch match = router_.Find(job->request);
  if (match.status == 404 || match.route == nullptr) {
    if (match.status == 405) {
      job->response = HttpResponse::Error(405, "method_not_allowed",
                                          "the method is not allowed for this resource");
      job->response.SetHeader("Allow", match.allow);
    } else {
      job->response = HttpResponse::Error(404, "not_found", "no such resource");
    }
    co_return;
  }
  job->route = match.route;
  asio::thread_pool* pool = nullptr;
  switch (match.route->executor) {
    case Executor::kInline:
      break;
    case Executor::kStore:
      pool = pools_.store;
      break;
    case Executor::kHash:
      pool = pools_.hash;
      break;
  }
  if (pool == nullptr) {
    RunHandler(*job);
  } else {
    co_await RunOnPool(*pool, std::move(job));
  }
}

asio::awaitable<void> HttpServer::Impl::RunOnPool(asio::thread_pool& pool,
                                                  std::shared_ptr<Job> job) {
  // The job is shared with the pool task: if the connection's coroutine is
  // destroyed (Stop), the handler still has a live request to work on.
  return asio::async_initiate<const asio::use_awaitable_t<>&, void()>(
      [this, &pool](auto handler, std::shared_ptr<Job> pool_job) {
        asio::post(pool,
                   PoolTask<decltype(handler)>(this, std::move(pool_job), std::move(handler)));
      },
      asio::use_awaitable, std::move(job));
}

void HttpServer::Impl::RunHandler(Job& job) {
  try {
    job.response = job.route->handler(job.request);
    if (IsValidResponse(job.response)) return;
  } catch (...) {
    // what() may carry internals; the client only learns that it failed.
  }
  ++handler_failures_;
  job.response = HttpResponse::Error(500, "internal_error", "internal error");
}

asio::awaitable<bool> HttpServer::Impl::Respond(Connection& conn, HttpResponse response,
                                                unsigned version, bool keep_alive,
                                                const Exchange& exchange) {
  const int status = response.status;
  bhttp::response<bhttp::string_body> wire =
      ToWire(response, version, keep_alive, exchange.request_id);
  const std::size_t body_bytes = wire.body().size();
  conn.stream.expires_after(options_.read_timeout);
  auto [ec, n] = co_await bhttp::async_write(conn.stream, wire, kAsTuple);
  conn.stream.expires_never();
  // Reported also when the write failed: the request was still handled.
  if (observer_ != nullptr) {
    RequestRecord record;
    record.method = exchange.method;
    record.route = exchange.route;
    record.path = exchange.path;
    record.status = status;
    record.seconds = std::chrono::duration<double>(SteadyClock::now() - exchange.started).count();
    record.request_id = exchange.request_id;
    record.remote_address = conn.remote_address;
    record.response_bytes = body_bytes;
    observer_->OnRequest(record);
  }
  co_return !ec;
}

asio::awaitable<void> HttpServer::Impl::CloseGracefully(std::shared_ptr<Connection> conn) {
  error_code ec;
  conn->stream.socket().shutdown(tcp::socket::shutdown_send, ec);
  if (!ec) {
    ArmDeadline(conn, std::min<SteadyClock::duration>(options_.read_timeout, kLingerTime));
    std::array<char, 4096> scratch;
    std::size_t drained = 0;
    while (drained < kMaxLingerBytes) {
      auto [read_error, n] = co_await conn->stream.async_read_some(asio::buffer(scratch), kAsTuple);
      if (read_error) break;
      drained += n;
    }
    DisarmDeadline(*conn);
  }
  CloseNow(*conn);
}

HttpServer::HttpServer(ServerOptions options, const Router& router, WorkPools pools,
                       RequestObserver* observer)
    : impl_(std::make_unique<Impl>(std::move(options), router, pools, observer)) {}

HttpServer::~HttpServer() = default;

void HttpServer::Start() { impl_->Start(); }
uint16_t HttpServer::port() const { return impl_->port(); }
void HttpServer::StopAccepting() { impl_->StopAccepting(); }
void HttpServer::BeginDrain() { impl_->BeginDrain(); }
std::size_t HttpServer::WaitForConnections(std::chrono::steady_clock::time_point deadline) {
  return impl_->WaitForConnections(deadline);
}
void HttpServer::Stop() { impl_->Stop(); }
std::size_t HttpServer::active_connections() const { return impl_->active_connections(); }
std::size_t HttpServer::in_flight_requests() const { return impl_->in_flight_requests(); }

}  // namespace bulwark::http
