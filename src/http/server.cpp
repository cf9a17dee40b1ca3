#include "http/server.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <charconv>
#include <condition_variable>
#include <deque>
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
#include <boost/asio/basic_socket_acceptor.hpp>
#include <boost/asio/basic_stream_socket.hpp>
#include <boost/asio/basic_waitable_timer.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/buffers_suffix.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/read_size.hpp>
#include <boost/beast/http/basic_parser.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/beast/http/rfc7230.hpp>
#include <boost/beast/http/status.hpp>

#include "core/thread_name.hpp"

namespace bulwark::http {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using boost::system::error_code;
using SteadyClock = std::chrono::steady_clock;

// Every I/O object lives on one single-threaded io_context, so it uses that
// context's executor type directly rather than the type-erased any_io_executor.
using IoExecutor = asio::io_context::executor_type;
template <typename T>
using Awaitable = asio::awaitable<T, IoExecutor>;
using Socket = asio::basic_stream_socket<tcp, IoExecutor>;
using Acceptor = asio::basic_socket_acceptor<tcp, IoExecutor>;
using Timer = asio::basic_waitable_timer<SteadyClock, asio::wait_traits<SteadyClock>, IoExecutor>;

constexpr auto kUseAwaitable = asio::use_awaitable_t<IoExecutor>();
constexpr auto kAsTuple = asio::as_tuple(asio::use_awaitable_t<IoExecutor>());
constexpr std::size_t kMaxRequestIdLength = 128;
constexpr std::size_t kRequestIdLength = 16;
constexpr std::size_t kIdleReadSize = 4096;
constexpr std::size_t kMaxReadSize = 65536;
// A connection keeps the capacity of its request body between requests, up to this.
constexpr std::size_t kKeptBodyCapacity = 64 * 1024;
// After the last response on a connection we half-close and read what the
// client still sends, so that closing does not turn into an RST that could
// destroy the response before the client reads it.
constexpr std::chrono::milliseconds kLingerTime{1000};
constexpr std::size_t kMaxLingerBytes = 256 * 1024;
constexpr std::chrono::milliseconds kAcceptBackoff{50};
// While draining, a keep-alive connection that has just been answered stays
// open this long for a request its client may already have sent: closing it
// at once would race that request and fail it.
constexpr std::chrono::milliseconds kDrainGrace{200};
constexpr std::chrono::seconds kStopAcceptingWait{2};
constexpr std::string_view kUnmatched = "unmatched";
constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
constexpr SteadyClock::time_point kNever = SteadyClock::time_point::max();

// Set on the server's I/O threads, so that calls from a handler never block
// waiting for their own thread.
thread_local const void* tls_io_server = nullptr;

struct Connection {
  Connection(Socket s, std::string remote)
      : socket(std::move(s)), timer(socket.get_executor()), remote_address(std::move(remote)) {}

  Socket socket;
  // Bounds idle waits, request reads and response writes (see SetDeadline). It
  // cancels instead of closing, so the server can still answer 408 after a
  // read timed out.
  Timer timer;
  const std::string remote_address;

  // Everything below is touched only on the connection's I/O thread.
  SteadyClock::time_point deadline = kNever;      // when the current wait times out
  SteadyClock::time_point timer_expiry = kNever;  // when the pending timer wait ends
  bool timed_out = false;                         // the current deadline fired
  bool idle = false;                              // waiting for the first byte of a request
  SteadyClock::time_point idle_since;             // when the current idle wait began
  bool served_any = false;                        // at least one response was written
  beast::flat_buffer buffer;                      // bytes received and not yet parsed
  std::string head;                               // the response status line and headers
};

// The timer is lazy: moving a deadline later (the common case: every request
// pushes the idle deadline forward) only updates Connection::deadline, and a
// timer that fires early re-arms itself for the current deadline. The asio
// timer is re-armed only when a deadline moves earlier than its expiry.
void StartTimer(const std::shared_ptr<Connection>& conn, SteadyClock::time_point at) {
  conn->timer_expiry = at;
  conn->timer.expires_at(at);  // cancels a pending wait, whose handler then sees a newer expiry
  conn->timer.async_wait([weak = std::weak_ptr<Connection>(conn), at](error_code ec) {
    const std::shared_ptr<Connection> c = weak.lock();
    // Superseded by a re-arm, or cancelled by a close.
    if (c == nullptr || c->timer_expiry != at) return;
    c->timer_expiry = kNever;
    if (ec || c->deadline == kNever) return;
    if (SteadyClock::now() < c->deadline) {
      StartTimer(c, c->deadline);
      return;
    }
    c->timed_out = true;
    error_code ignored;
    c->socket.cancel(ignored);
  });
}

void SetDeadline(const std::shared_ptr<Connection>& conn, SteadyClock::time_point at) {
  conn->timed_out = false;
  conn->deadline = at;
  if (at < conn->timer_expiry) StartTimer(conn, at);
}

void ClearDeadline(Connection& conn) { conn.deadline = kNever; }

// Closes at once. Runs on the connection's I/O thread (or with no I/O thread running).
void CloseNow(Connection& conn) {
  error_code ignored;
  conn.socket.shutdown(tcp::socket::shutdown_both, ignored);
  conn.socket.close(ignored);
  conn.deadline = kNever;
  conn.timer_expiry = kNever;
  conn.timer.cancel();
}

bool IsSaneRequestId(std::string_view id) {
  if (id.empty() || id.size() > kMaxRequestIdLength) return false;
  return std::all_of(id.begin(), id.end(), [](char c) { return c > 0x20 && c < 0x7F; });
}

// Not a secret: it only correlates log lines.
void GenerateRequestId(std::string& id) {
  thread_local std::mt19937_64 engine = [] {
    std::random_device device;
    std::seed_seq seed{device(), device(), device(), device()};
    return std::mt19937_64(seed);
  }();
  static constexpr char kHex[] = "0123456789abcdef";
  uint64_t bits = engine();
  id.resize(kRequestIdLength);
  for (char& c : id) {
    c = kHex[bits & 0xF];
    bits >>= 4;
  }
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
    // A loop, not find_first_of: that calls memchr once per character.
    if (std::any_of(value.begin(), value.end(),
                    [](char c) { return c == '\r' || c == '\n' || c == '\0'; })) {
      return false;
    }
  }
  return true;
}

// Framing headers belong to the server, not to handlers.
bool IsServerOwnedHeader(std::string_view name) {
  return HeaderNameEquals(name, "Connection") || HeaderNameEquals(name, "Content-Length") ||
         HeaderNameEquals(name, "Transfer-Encoding") || HeaderNameEquals(name, "Keep-Alive") ||
         HeaderNameEquals(name, "X-Request-Id");
}

// Header values go out without surrounding spaces and tabs.
std::string_view TrimValue(std::string_view value) {
  const std::size_t begin = value.find_first_not_of(" \t");
  if (begin == std::string_view::npos) return {};
  const std::size_t end = value.find_last_not_of(" \t");
  return value.substr(begin, end - begin + 1);
}

void AppendField(std::string& out, std::string_view name, std::string_view value) {
  out.append(name);
  out.append(": ");
  out.append(TrimValue(value));
  out.append("\r\n");
}

// Writes the status line and header of the response into out (reusing its
// capacity) and returns the body to send after it.
std::string_view SerializeHead(std::string& out, const HttpResponse& response, unsigned version,
                               bool keep_alive, std::string_view request_id) {
  const unsigned code = static_cast<unsigned>(response.status);
  out.clear();
  out.append("HTTP/");
  out.push_back(static_cast<char>('0' + version / 10));
  out.push_back('.');
  out.push_back(static_cast<char>('0' + version % 10));
  out.push_back(' ');
  out.push_back(static_cast<char>('0' + code / 100));
  out.push_back(static_cast<char>('0' + (code / 10) % 10));
  out.push_back(static_cast<char>('0' + code % 10));
  out.push_back(' ');
  const beast::string_view reason = bhttp::obsolete_reason(static_cast<bhttp::status>(code));
  out.append(reason.data(), reason.size());
  out.append("\r\n");
  for (const auto& [name, value] : response.headers) {
    if (!IsServerOwnedHeader(name)) AppendField(out, name, value);
  }
  AppendField(out, "X-Request-Id", request_id);
  // Answers of an authentication service must never be cached; a handler may
  // still choose its own policy explicitly.
  if (response.Header("Cache-Control") == nullptr) AppendField(out, "Cache-Control", "no-store");
  std::string_view body;
  const bool bodiless = code == 204 || code == 304;
  if (!bodiless) {
    body = response.body;
    if (!body.empty() && response.Header("Content-Type") == nullptr) {
      AppendField(out, "Content-Type", "application/json");
    }
    std::array<char, 24> digits{};
    const auto end = std::to_chars(digits.data(), digits.data() + digits.size(), body.size()).ptr;
    AppendField(out, "Content-Length", std::string_view(digits.data(), end - digits.data()));
  }
  // HTTP/1.1 is persistent unless told otherwise, HTTP/1.0 the other way round.
  if (version >= 11 && !keep_alive) AppendField(out, "Connection", "close");
  if (version < 11 && keep_alive) AppendField(out, "Connection", "keep-alive");
  out.append("\r\n");
  return body;
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

// Parses a request straight into an HttpRequest (no intermediate Beast message).
class RequestParser final : public bhttp::basic_parser<true> {
 public:
  explicit RequestParser(HttpRequest& request) : request_(request) {}

  unsigned version() const { return version_; }

  // Like beast::http::message::keep_alive(): decided by the first Connection field.
  bool KeepAlive() const {
    const std::string* connection = Field(connection_);
    if (version_ < 11) {
      return connection != nullptr && bhttp::token_list(*connection).exists("keep-alive");
    }
    return connection == nullptr || !bhttp::token_list(*connection).exists("close");
  }

  bool ExpectsContinue() const {
    const std::string* expect = Field(expect_);
    return version_ >= 11 && expect != nullptr && HeaderNameEquals(*expect, "100-continue");
  }

  const std::string* RequestId() const { return Field(request_id_); }

  // Drops the header entries left over from the connection's previous
  // request. Call once parsing has ended, successfully or not.
  void TrimHeaders() { request_.headers.resize(fields_); }

 private:
  static constexpr std::size_t kAbsent = std::numeric_limits<std::size_t>::max();

  const std::string* Field(std::size_t index) const {
    return index == kAbsent ? nullptr : &request_.headers[index].second;
  }

  void on_request_impl(bhttp::verb, beast::string_view method, beast::string_view target,
                       int version, error_code&) override {
    request_.method.assign(method.data(), method.size());
    request_.target.assign(target.data(), target.size());
    version_ = static_cast<unsigned>(version);
  }

  void on_response_impl(int, beast::string_view, int, error_code&) override {}

  void on_field_impl(bhttp::field name, beast::string_view name_string, beast::string_view value,
                     error_code&) override {
    // The previous request's entries are overwritten, to reuse their capacity.
    const std::size_t index = fields_++;
    if (index < request_.headers.size()) {
      request_.headers[index].first.assign(name_string.data(), name_string.size());
      request_.headers[index].second.assign(value.data(), value.size());
    } else {
      request_.headers.emplace_back(std::piecewise_construct,
                                    std::forward_as_tuple(name_string.data(), name_string.size()),
                                    std::forward_as_tuple(value.data(), value.size()));
    }
    if (name == bhttp::field::connection) {
      if (connection_ == kAbsent) connection_ = index;
    } else if (name == bhttp::field::expect) {
      if (expect_ == kAbsent) expect_ = index;
    } else if (request_id_ == kAbsent &&
               HeaderNameEquals(std::string_view(name_string.data(), name_string.size()),
                                "X-Request-Id")) {
      request_id_ = index;
    }
  }

  void on_header_impl(error_code&) override {}

  void on_body_init_impl(const boost::optional<std::uint64_t>& content_length,
                         error_code&) override {
    // The length is within the body limit: the parser checked it already.
    if (content_length) request_.body.reserve(static_cast<std::size_t>(*content_length));
  }

  std::size_t on_body_impl(beast::string_view body, error_code&) override {
    request_.body.append(body.data(), body.size());
    return body.size();
  }

  void on_chunk_header_impl(std::uint64_t, beast::string_view, error_code&) override {}

  std::size_t on_chunk_body_impl(std::uint64_t, beast::string_view body, error_code&) override {
    request_.body.append(body.data(), body.size());
    return body.size();
  }

  void on_finish_impl(error_code&) override {}

  HttpRequest& request_;
  unsigned version_ = 11;
  std::size_t connection_ = kAbsent;
  std::size_t expect_ = kAbsent;
  std::size_t request_id_ = kAbsent;
  std::size_t fields_ = 0;  // header entries of this request
};

// Feeds the buffered bytes to the parser. Returns need_more when the parser
// (the header only, unless it is eager) needs bytes that have not arrived yet.
error_code ParseBuffered(RequestParser& parser, beast::flat_buffer& buffer) {
  error_code ec;
  while (!parser.is_done() && buffer.size() > 0) {
    const std::size_t used = parser.put(buffer.data(), ec);
    buffer.consume(used);
    if (ec) return ec;
    if (!parser.eager() && parser.is_header_done()) return ec;
    if (used == 0) break;
  }
  if (!parser.is_done() && (parser.eager() || !parser.is_header_done())) {
    return bhttp::error::need_more;
  }
  return ec;
}

// Clears a request for reuse by the connection's next one, keeping capacity.
void ResetRequest(HttpRequest& request, const std::string& remote_address) {
  request.method.clear();
  request.target.clear();
  request.path.clear();
  request.query.clear();
  // request.headers is overwritten by the parser (RequestParser::TrimHeaders).
  if (request.body.capacity() > kKeptBodyCapacity) {
    std::string().swap(request.body);
  } else {
    request.body.clear();
  }
  request.remote_address = remote_address;
  request.request_id.clear();
  request.path_params.clear();
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
      : options_(std::move(options)), router_(router), pools_(pools), observer_(observer) {
    const int threads = std::max(1, options_.io_threads);
    workers_.reserve(static_cast<std::size_t>(threads));
    for (int i = 0; i < threads; ++i) workers_.push_back(std::make_unique<IoWorker>());
    if (pools_.store != nullptr) store_queue_ = std::make_unique<PoolQueue>(this, *pools_.store);
    if (pools_.hash != nullptr) hash_queue_ = std::make_unique<PoolQueue>(this, *pools_.hash);
  }

  ~Impl() {
    Stop();
    // A handler still running on a pool will post its completion into an
    // io_context; wait for it before the contexts go away.
    {
      std::unique_lock lock(pool_mu_);
      pool_cv_.wait(lock, [&] { return pool_jobs_.load() == 0; });
    }
    // The first context holds the acceptor, and its pending accept may hold a
    // socket of another context: it goes first.
    acceptor_.reset();
    for (std::unique_ptr<IoWorker>& worker : workers_) worker.reset();
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
  // One single-threaded io_context per I/O thread; a connection lives on one
  // of them for its whole life, so nothing of it needs a strand or a lock.
  struct IoWorker {
    asio::io_context ioc{1};
    // Keeps run() going while nothing is pending (e.g. after StopAccepting).
    std::optional<asio::executor_work_guard<IoExecutor>> work;
    std::thread thread;
  };

  struct Job {
    const Route* route = nullptr;
    HttpRequest request;
    HttpResponse response;  // set when the last step has run
    // The step to run next and where: the route's handler while `next` is
    // empty, else the step the previous one returned (see Reply).
    Executor executor = Executor::kInline;
    Reply::Step next;
    // Set while the job waits for an operation it started (Reply::Await).
    Reply::Start start;
    bool done = false;
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
    explicit PoolJobToken(Impl* impl) : impl_(impl) { ++impl_->pool_jobs_; }
    PoolJobToken(PoolJobToken&& other) noexcept : impl_(std::exchange(other.impl_, nullptr)) {}
    PoolJobToken& operator=(PoolJobToken&&) = delete;
    ~PoolJobToken() {
      if (impl_ == nullptr) return;
      // Only the last job takes the lock: the destructor of Impl may be
      // waiting for it, and must not return before the notify is done.
      std::size_t jobs = impl_->pool_jobs_.load();
      while (jobs > 1) {
        if (impl_->pool_jobs_.compare_exchange_weak(jobs, jobs - 1)) return;
      }
      std::lock_guard lock(impl_->pool_mu_);
      if (--impl_->pool_jobs_ == 0) impl_->pool_cv_.notify_all();
    }

   private:
    Impl* impl_;
  };

  // A handler waiting for, or running on, a pool thread.
  class PoolWork {
   public:
    virtual ~PoolWork() = default;
    virtual void Run() = 0;
  };

  // Runs a handler on a pool thread, then resumes the awaiting coroutine on
  // its connection's I/O thread.
  template <typename CompletionHandler>
  class PoolTask final : public PoolWork {
   public:
    PoolTask(Impl* impl, std::shared_ptr<Job> job, CompletionHandler handler)
        : token_(impl),
          impl_(impl),
          job_(std::move(job)),
          work_(asio::make_work_guard(asio::get_associated_executor(handler))),
          handler_(std::move(handler)) {}

    void Run() override {
      impl_->RunStep(*job_);
      asio::post(work_->get_executor(), std::move(*handler_));
      handler_.reset();
      work_.reset();
    }

   private:
    // Declared first so it is released last: after everything that touches
    // the io_context, also when the task is dropped without running.
    PoolJobToken token_;
    Impl* impl_;
    std::shared_ptr<Job> job_;
    std::optional<asio::executor_work_guard<asio::associated_executor_t<CompletionHandler>>> work_;
    std::optional<CompletionHandler> handler_;
  };

  // Hands handlers to one thread pool in arrival order. Posting each handler
  // to the pool would wake a sleeping pool thread for nearly every request;
  // instead a "drainer" task runs queued handlers one after another, and
  // another drainer is posted only when a handler is queued while no drainer
  // is about to look at the queue. So a handler never waits behind one that
  // is running (handlers still run concurrently, up to the pool's size),
  // while a burst of short handlers costs few thread wake-ups.
  class PoolQueue {
   public:
    PoolQueue(Impl* impl, asio::thread_pool& pool) : impl_(impl), pool_(pool) {}

    void Submit(std::unique_ptr<PoolWork> work) {
      bool post = false;
      {
        std::lock_guard lock(mu_);
        queue_.push_back(std::move(work));
        post = TakeDrainerLocked();
      }
      if (post) PostDrainer();
    }

   private:
    class Drainer {
     public:
      explicit Drainer(PoolQueue* queue) : token_(queue->impl_), queue_(queue) {}
      Drainer(Drainer&& other) noexcept
          : token_(std::move(other.token_)), queue_(std::exchange(other.queue_, nullptr)) {}
      Drainer& operator=(Drainer&&) = delete;
      ~Drainer() {
        if (queue_ != nullptr) queue_->Abandon();  // the pool dropped it unrun
      }
      void operator()() { std::exchange(queue_, nullptr)->Drain(); }

     private:
      PoolJobToken token_;  // released last: Drain() and Abandon() touch the server
      PoolQueue* queue_;
    };

    // REQUIRES: mu_ held. Whether a new drainer must be posted for the queue.
    bool TakeDrainerLocked() {
      if (queue_.empty() || ready_ > 0) return false;
      ++ready_;
      ++drainers_;
      return true;
    }

    void PostDrainer() { asio::post(pool_, Drainer(this)); }

    void Drain() {
      for (;;) {
        std::unique_ptr<PoolWork> work;
        bool post = false;
        {
          std::lock_guard lock(mu_);
          --ready_;
          if (queue_.empty()) {
            --drainers_;
            return;
          }
          work = std::move(queue_.front());
          queue_.pop_front();
          post = TakeDrainerLocked();
        }
        if (post) PostDrainer();
        work->Run();
        work.reset();
        std::lock_guard lock(mu_);
        ++ready_;
      }
    }

    // The pool is shutting down without running a drainer: when no drainer is
    // left, the queued handlers are dropped as the pool would have dropped them.
    void Abandon() {
      std::deque<std::unique_ptr<PoolWork>> dropped;
      {
        std::lock_guard lock(mu_);
        --ready_;
        if (--drainers_ == 0) dropped.swap(queue_);
      }
    }

    Impl* const impl_;
    asio::thread_pool& pool_;
    std::mutex mu_;
    std::deque<std::unique_ptr<PoolWork>> queue_;
    std::size_t ready_ = 0;     // drainers that will look at the queue before running anything
    std::size_t drainers_ = 0;  // drainers posted and not finished
  };

  // The Reply::Resume of an awaiting job: hands the job its next reply and
  // resumes the coroutine on its I/O thread, exactly once; dropped uncalled
  // (an operation that lost its callback) it answers 500 rather than
  // leaving the request hanging.
  template <typename CompletionHandler>
  class Resumption {
   public:
    Resumption(Impl* impl, std::shared_ptr<Job> job, CompletionHandler handler)
        : token_(impl),
          impl_(impl),
          job_(std::move(job)),
          work_(asio::make_work_guard(asio::get_associated_executor(handler))),
          handler_(std::move(handler)) {}
    Resumption(const Resumption&) = delete;
    Resumption& operator=(const Resumption&) = delete;
    ~Resumption() {
      if (handler_) Resume(std::nullopt);
    }

    void Resume(std::optional<Reply> reply) {
      std::lock_guard lock(mu_);
      if (!handler_) return;
      if (reply) {
        impl_->AcceptReply(*job_, std::move(*reply));
      } else {
        impl_->FailJob(*job_);
      }
      // A next step bound for a pool goes there straight away rather than
      // through the I/O thread: one thread hop fewer per request.
      PoolQueue* pool = job_->done || job_->start ? nullptr : impl_->PoolFor(job_->executor);
      if (pool != nullptr) {
        pool->Submit(std::make_unique<PoolTask<CompletionHandler>>(impl_, std::move(job_),
                                                                   std::move(*handler_)));
      } else {
        asio::post(work_->get_executor(), std::move(*handler_));
      }
      handler_.reset();
      work_.reset();
    }

   private:
    PoolJobToken token_;  // declared first so it is released last
    Impl* impl_;
    std::shared_ptr<Job> job_;
    std::mutex mu_;
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

  Awaitable<void> Listen(std::shared_ptr<Acceptor> acceptor);
  void StartConnection(Socket socket);
  Awaitable<void> Serve(std::shared_ptr<Connection> conn, ConnectionLease lease);
  Awaitable<error_code> ReadRequest(const std::shared_ptr<Connection>& conn, RequestParser& parser);
  Awaitable<error_code> ReadMore(Connection& conn, RequestParser& parser);
  // Routes the request and runs its inline steps. Returns the pool the next
  // step runs on, or nullptr when the response is set (also when no route
  // matched).
  PoolQueue* Dispatch(Job& job);
  // Runs the job's inline steps; the pool of its next step, or nullptr when done.
  PoolQueue* Advance(Job& job);
  // The pool that runs `executor`'s steps; nullptr for inline (or no such pool).
  PoolQueue* PoolFor(Executor executor) const;
  Awaitable<void> RunOnPool(PoolQueue& pool, std::shared_ptr<Job> job);
  // Starts the operation the job awaits and resumes once it has called back.
  Awaitable<void> RunAwaited(std::shared_ptr<Job> job);
  // Runs the job's next step; sets job.response when it was the last.
  void RunStep(Job& job);
  // Takes what a step returned: the next step, an operation to await, or the response.
  void AcceptReply(Job& job, Reply reply);
  // Answers 500: the handler threw, returned an invalid response, or lost its resume.
  void FailJob(Job& job);
  Awaitable<bool> Respond(const std::shared_ptr<Connection>& conn, const HttpResponse& response,
                          unsigned version, bool keep_alive, const Exchange& exchange);
  Awaitable<bool> Write(const std::shared_ptr<Connection>& conn, std::string_view head,
                        std::string_view body);
  Awaitable<void> CloseGracefully(std::shared_ptr<Connection> conn);
  std::vector<std::shared_ptr<Connection>> SnapshotConnections() const;
  bool OnIoThread() const { return tls_io_server == this; }
  // How long a connection may wait for the first byte of its next request.
  SteadyClock::duration IdleWait(const Connection& conn) const {
    if (!draining_.load()) return options_.idle_timeout;
    const SteadyClock::duration wait = std::min(options_.idle_timeout, options_.read_timeout);
    return conn.served_any ? std::min<SteadyClock::duration>(wait, kDrainGrace) : wait;
  }

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
  std::atomic<std::size_t> pool_jobs_{0};
  std::unique_ptr<PoolQueue> store_queue_;  // null when there is no such pool
  std::unique_ptr<PoolQueue> hash_queue_;

  std::mutex stop_mu_;                // serializes Start() and Stop()
  std::atomic<bool> started_{false};  // acceptor_ and port_ are set before it turns true
  std::atomic<bool> stopped_{false};
  uint16_t port_ = 0;
  std::size_t next_worker_ = 0;  // used by the listener only

  // Destroying an io_context destroys the suspended coroutine frames, whose
  // destructors touch the members above; so the contexts are declared after them.
  std::vector<std::unique_ptr<IoWorker>> workers_;
  std::shared_ptr<Acceptor> acceptor_;
};

void HttpServer::Impl::Start() {
  std::lock_guard stop_lock(stop_mu_);
  if (started_) throw std::logic_error("HttpServer::Start called twice");
  if (stopped_) throw std::logic_error("HttpServer::Start after Stop");

  asio::io_context& listen_context = workers_.front()->ioc;
  error_code ec;
  tcp::endpoint endpoint;
  const asio::ip::address address = asio::ip::make_address(options_.host, ec);
  if (!ec) {
    endpoint = tcp::endpoint(address, options_.port);
  } else {
    tcp::resolver resolver(listen_context);
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
  auto acceptor = std::make_shared<Acceptor>(listen_context.get_executor());
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

  for (std::unique_ptr<IoWorker>& worker : workers_)
    worker->work.emplace(worker->ioc.get_executor());
  // Accept errors are handled inside Listen(); what escapes is a bug or
  // exhaustion, and a server that silently stopped accepting is worse than
  // one that crashes, so rethrow it out of run().
  asio::co_spawn(acceptor->get_executor(), Listen(acceptor), [](std::exception_ptr error) {
    if (error) std::rethrow_exception(error);
  });
  started_ = true;
  for (std::unique_ptr<IoWorker>& worker : workers_) {
    worker->thread = std::thread([this, context = &worker->ioc] {
      NameThisThread("bulwark-io");
      tls_io_server = this;
      if (options_.on_io_thread) options_.on_io_thread(context);
      context->run();
      if (options_.on_io_thread) options_.on_io_thread(nullptr);
    });
  }
}

void HttpServer::Impl::StopAccepting() {
  // Not under stop_mu_: a handler calling this must not deadlock with a
  // concurrent Stop() that joins its thread.
  if (!started_.load() || stopped_.load()) return;  // Stop() closes it itself
  const std::shared_ptr<Acceptor> acceptor = acceptor_;
  auto closed = std::make_shared<std::promise<void>>();
  std::future<void> done = closed->get_future();
  // The acceptor is used by the listener on its I/O thread; close it there.
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
    asio::post(conn->socket.get_executor(), [this, conn] {
      if (!conn->idle) return;  // busy: its response carries "Connection: close"
      // An idle keep-alive connection closes at once, unless its last response
      // went out so recently that the client may be sending its next request
      // right now (see IdleWait). A new connection may be about to send its
      // first request: give it read_timeout to do so rather than the whole
      // idle_timeout.
      const SteadyClock::time_point limit = conn->served_any
                                                ? conn->idle_since + kDrainGrace
                                                : SteadyClock::now() + options_.read_timeout;
      if (conn->deadline > limit) SetDeadline(conn, limit);  // a past limit fires at once
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
    asio::post(conn->socket.get_executor(), [conn] { CloseNow(*conn); });
  }
  return left.size();
}

void HttpServer::Impl::Stop() {
  std::lock_guard stop_lock(stop_mu_);
  if (stopped_.load()) return;
  if (OnIoThread()) throw std::logic_error("HttpServer::Stop called on one of its I/O threads");
  stopped_ = true;
  if (!started_.load()) return;
  for (std::unique_ptr<IoWorker>& worker : workers_) {
    worker->work.reset();
    worker->ioc.stop();
  }
  for (std::unique_ptr<IoWorker>& worker : workers_) {
    if (worker->thread.joinable()) worker->thread.join();
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

Awaitable<void> HttpServer::Impl::Listen(std::shared_ptr<Acceptor> acceptor) {
  for (;;) {
    // Connections go round-robin to the I/O threads, each to stay there.
    asio::io_context& target = workers_[next_worker_]->ioc;
    auto [ec, socket] = co_await acceptor->async_accept(target, kAsTuple);
    if (ec) {
      if (ec == asio::error::operation_aborted || !acceptor->is_open()) co_return;
      ++accept_errors_;
      if (ec == asio::error::connection_aborted) continue;
      // Out of descriptors or memory: back off instead of spinning.
      Timer pause(co_await asio::this_coro::executor, kAcceptBackoff);
      co_await pause.async_wait(kAsTuple);
      continue;
    }
    next_worker_ = (next_worker_ + 1) % workers_.size();
    StartConnection(std::move(socket));
  }
}

void HttpServer::Impl::StartConnection(Socket socket) {
  error_code ec;
  socket.set_option(tcp::no_delay(true), ec);
  // Responses are first written without waiting (see Write).
  socket.non_blocking(true, ec);
  const tcp::endpoint peer = socket.remote_endpoint(ec);
  std::string remote = ec ? std::string() : AddressText(peer.address());
  auto conn = std::make_shared<Connection>(std::move(socket), std::move(remote));
  // Registered before the coroutine starts, so the count never misses it.
  ConnectionLease lease(this, conn);
  const IoExecutor executor = conn->socket.get_executor();
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
Awaitable<void> HttpServer::Impl::Serve(std::shared_ptr<Connection> conn,
                                        [[maybe_unused]] ConnectionLease lease) {
  beast::flat_buffer& buffer = conn->buffer;
  // Reused by every request of the connection. Shared with a pool task, so
  // that a handler still running when the coroutine is destroyed (Stop) has a
  // live request to work on.
  const auto job = std::make_shared<Job>();
  Exchange exchange;
  const auto header_limit = static_cast<std::uint32_t>(
      std::min<std::size_t>(options_.header_limit, std::numeric_limits<std::uint32_t>::max()));
  for (;;) {
    if (buffer.size() == 0) {  // otherwise a pipelined request is already here
      const SteadyClock::time_point now = SteadyClock::now();
      conn->idle = true;
      conn->idle_since = now;
      SetDeadline(conn, now + IdleWait(*conn));
      auto [ec, n] = co_await conn->socket.async_read_some(buffer.prepare(kIdleReadSize), kAsTuple);
      conn->idle = false;
      ClearDeadline(*conn);
      if (ec) {
        // Closed by the peer, idle timeout, drain or forced close. A wait cut
        // short by a timeout or the drain may race a request that has just
        // arrived: that one is still served.
        error_code ignored;
        if (ec == asio::error::operation_aborted && conn->socket.is_open() &&
            conn->socket.available(ignored) > 0) {
          continue;
        }
        break;
      }
      buffer.commit(n);
    }

    exchange.started = SteadyClock::now();
    exchange.route = kUnmatched;
    job->route = nullptr;
    HttpRequest& request = job->request;
    ResetRequest(request, conn->remote_address);
    RequestParser parser(request);
    parser.header_limit(header_limit);
    parser.body_limit(options_.body_limit);
    parser.eager(false);  // the header first: Expect: 100-continue is answered before the body
    error_code read_error = ParseBuffered(parser, buffer);
    if (!read_error && !parser.is_done() && !parser.ExpectsContinue()) {
      parser.eager(true);  // the body may be here already
      read_error = ParseBuffered(parser, buffer);
    }
    if (read_error == bhttp::error::need_more || (!read_error && !parser.is_done())) {
      read_error = co_await ReadRequest(conn, parser);
    }
    parser.TrimHeaders();

    if (const std::string* id = parser.RequestId(); id != nullptr && IsSaneRequestId(*id)) {
      request.request_id = *id;
    } else {
      GenerateRequestId(request.request_id);
    }
    exchange.method = request.method;
    exchange.request_id = request.request_id;

    if (read_error) {
      std::optional<HttpResponse> response = ReadErrorResponse(read_error, conn->timed_out);
      if (!response) break;
      {
        InFlightRequest in_flight(in_flight_);
        exchange.path = PathOf(request.target);
        co_await Respond(conn, *response, 11, false, exchange);
      }
      co_await CloseGracefully(conn);
      co_return;
    }

    std::optional<InFlightRequest> in_flight;
    in_flight.emplace(in_flight_);
    const unsigned version = parser.version();
    const bool client_keep_alive = parser.KeepAlive();
    const std::size_t question = request.target.find('?');
    request.path.assign(request.target, 0, question);
    if (question != std::string::npos) request.query.assign(request.target, question + 1);
    exchange.path = request.path;

    // A handler may hop between pools (Reply::Then) or wait for an operation
    // (Reply::Await); each hop resumes here.
    for (PoolQueue* pool = Dispatch(*job);; pool = Advance(*job)) {
      if (pool != nullptr) {
        co_await RunOnPool(*pool, job);
      } else if (job->start) {
        co_await RunAwaited(job);
      } else {
        break;
      }
    }
    if (job->route != nullptr) exchange.route = job->route->name;

    const bool keep_alive = client_keep_alive && !draining_.load();
    const bool written = co_await Respond(conn, job->response, version, keep_alive, exchange);
    job->response = HttpResponse();
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

// The rest of a request whose bytes have not all arrived yet; the header may
// already be parsed. Bounded by read_timeout from the request's first byte.
Awaitable<error_code> HttpServer::Impl::ReadRequest(const std::shared_ptr<Connection>& conn,
                                                    RequestParser& parser) {
  const SteadyClock::time_point deadline = SteadyClock::now() + options_.read_timeout;
  SetDeadline(conn, deadline);
  error_code ec;
  if (!parser.is_header_done()) ec = co_await ReadMore(*conn, parser);
  if (!ec && !parser.is_done()) {
    if (parser.ExpectsContinue()) {
      // The client waits for this before it sends the body.
      const bool written = co_await Write(conn, kContinue, {});  // with a deadline of its own
      SetDeadline(conn, deadline);
      if (!written) ec = asio::error::connection_reset;
    }
    if (!ec) {
      parser.eager(true);
      ec = co_await ReadMore(*conn, parser);
    }
  }
  ClearDeadline(*conn);
  co_return ec;
}

// Reads until the parser is done with what it wants now (the header, or the
// whole message when eager), like beast::http::async_read.
Awaitable<error_code> HttpServer::Impl::ReadMore(Connection& conn, RequestParser& parser) {
  beast::flat_buffer& buffer = conn.buffer;
  for (;;) {
    const error_code parse_error = ParseBuffered(parser, buffer);
    if (parse_error != bhttp::error::need_more) co_return parse_error;
    const std::size_t size = beast::read_size(buffer, kMaxReadSize);
    if (size == 0) co_return bhttp::error::buffer_overflow;
    auto [ec, n] = co_await conn.socket.async_read_some(buffer.prepare(size), kAsTuple);
    buffer.commit(n);
    if (ec == asio::error::eof) {
      if (!parser.got_some()) co_return bhttp::error::end_of_stream;
      error_code eof_error;
      parser.put_eof(eof_error);
      if (!eof_error && !parser.is_done()) eof_error = bhttp::error::partial_message;
      co_return eof_error;
    }
    if (ec) co_return ec;
  }
}

HttpServer::Impl::PoolQueue* HttpServer::Impl::Dispatch(Job& job) {
  const RouteMatch match = router_.Find(job.request);
  if (match.status == 404 || match.route == nullptr) {
    if (match.status == 405) {
      job.response = HttpResponse::Error(405, "method_not_allowed",
                                         "the method is not allowed for this resource");
      job.response.SetHeader("Allow", match.allow);
    } else {
      job.response = HttpResponse::Error(404, "not_found", "no such resource");
    }
    return nullptr;
  }
  job.route = match.route;
  job.executor = match.route->executor;
  job.next = nullptr;
  job.done = false;
  return Advance(job);
}

HttpServer::Impl::PoolQueue* HttpServer::Impl::PoolFor(Executor executor) const {
  switch (executor) {
    case http::Executor::kInline:
      return nullptr;
    case http::Executor::kStore:
      return store_queue_.get();
    case http::Executor::kHash:
      return hash_queue_.get();
  }
  return nullptr;
}

HttpServer::Impl::PoolQueue* HttpServer::Impl::Advance(Job& job) {
  while (!job.done && !job.start) {
    if (PoolQueue* pool = PoolFor(job.executor)) return pool;
    RunStep(job);  // inline, or no such pool
  }
  return nullptr;
}

Awaitable<void> HttpServer::Impl::RunOnPool(PoolQueue& pool, std::shared_ptr<Job> job) {
  return asio::async_initiate<const asio::use_awaitable_t<IoExecutor>&, void()>(
      [this, &pool](auto handler, std::shared_ptr<Job> pool_job) {
        pool.Submit(std::make_unique<PoolTask<decltype(handler)>>(this, std::move(pool_job),
                                                                  std::move(handler)));
      },
      kUseAwaitable, std::move(job));
}

Awaitable<void> HttpServer::Impl::RunAwaited(std::shared_ptr<Job> job) {
  return asio::async_initiate<const asio::use_awaitable_t<IoExecutor>&, void()>(
      [this](auto handler, std::shared_ptr<Job> awaiting) {
        Reply::Start start = std::exchange(awaiting->start, nullptr);
        auto resumption =
            std::make_shared<Resumption<decltype(handler)>>(this, awaiting, std::move(handler));
        try {
          start([resumption](Reply reply) { resumption->Resume(std::move(reply)); });
        } catch (...) {
          resumption->Resume(std::nullopt);  // a no-op when it had already called back
        }
      },
      kUseAwaitable, std::move(job));
}

void HttpServer::Impl::RunStep(Job& job) {
  try {
    AcceptReply(job,
                job.next ? std::exchange(job.next, nullptr)() : job.route->handler(job.request));
  } catch (...) {
    // what() may carry internals; the client only learns that it failed.
    FailJob(job);
  }
}

void HttpServer::Impl::AcceptReply(Job& job, Reply reply) {
  if (reply.is_await()) {
    job.start = reply.TakeStart();
    return;
  }
  if (reply.has_next()) {
    job.executor = reply.next_executor();
    job.next = reply.TakeNext();
    return;
  }
  job.done = true;
  job.response = std::move(reply.response());
  if (!IsValidResponse(job.response)) FailJob(job);
}

void HttpServer::Impl::FailJob(Job& job) {
  job.done = true;
  job.next = nullptr;
  job.start = nullptr;
  ++handler_failures_;
  job.response = HttpResponse::Error(500, "internal_error", "internal error");
}

Awaitable<bool> HttpServer::Impl::Respond(const std::shared_ptr<Connection>& conn,
                                          const HttpResponse& response, unsigned version,
                                          bool keep_alive, const Exchange& exchange) {
  const std::string_view body =
      SerializeHead(conn->head, response, version, keep_alive, exchange.request_id);
  const bool written = co_await Write(conn, conn->head, body);
  // Reported also when the write failed: the request was still handled.
  if (observer_ != nullptr) {
    RequestRecord record;
    record.method = exchange.method;
    record.route = exchange.route;
    record.path = exchange.path;
    record.status = response.status;
    record.seconds = std::chrono::duration<double>(SteadyClock::now() - exchange.started).count();
    record.request_id = exchange.request_id;
    record.remote_address = conn->remote_address;
    record.response_bytes = body.size();
    observer_->OnRequest(record);
  }
  co_return written;
}

// Writes at once what the socket takes; only the rest waits, bounded by read_timeout.
Awaitable<bool> HttpServer::Impl::Write(const std::shared_ptr<Connection>& conn,
                                        std::string_view head, std::string_view body) {
  const std::array<asio::const_buffer, 2> buffers{asio::buffer(head.data(), head.size()),
                                                  asio::buffer(body.data(), body.size())};
  error_code ec;
  const std::size_t sent = conn->socket.write_some(buffers, ec);
  if (!ec && sent == head.size() + body.size()) co_return true;
  if (ec && ec != asio::error::would_block && ec != asio::error::try_again) co_return false;
  beast::buffers_suffix<std::array<asio::const_buffer, 2>> rest(buffers);
  rest.consume(sent);
  SetDeadline(conn, SteadyClock::now() + options_.read_timeout);
  auto [write_error, n] = co_await asio::async_write(conn->socket, rest, kAsTuple);
  ClearDeadline(*conn);
  co_return !write_error;
}

Awaitable<void> HttpServer::Impl::CloseGracefully(std::shared_ptr<Connection> conn) {
  error_code ec;
  conn->socket.shutdown(tcp::socket::shutdown_send, ec);
  if (!ec) {
    SetDeadline(conn, SteadyClock::now() +
                          std::min<SteadyClock::duration>(options_.read_timeout, kLingerTime));
    // What the client still sends is read into the connection's buffer and dropped.
    beast::flat_buffer& scratch = conn->buffer;
    std::size_t drained = 0;
    while (drained < kMaxLingerBytes) {
      scratch.clear();
      auto [read_error, n] =
          co_await conn->socket.async_read_some(scratch.prepare(kIdleReadSize), kAsTuple);
      if (read_error) break;
      drained += n;
    }
    ClearDeadline(*conn);
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
