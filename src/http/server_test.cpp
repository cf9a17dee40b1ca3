#include "http/server.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <boost/asio/thread_pool.hpp>

namespace bulwark::http {
namespace {

using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;

constexpr auto kIoTimeout = 5s;

// --- A minimal blocking HTTP/1.1 client over POSIX sockets ------------------

struct ClientResponse {
  int status = 0;  // 0: no (complete) response before the timeout or the close
  HeaderList headers;
  std::string body;

  std::optional<std::string> Header(std::string_view name) const {
    for (const auto& [key, value] : headers) {
      if (HeaderNameEquals(key, name)) return value;
    }
    return std::nullopt;
  }
};

int ConnectTo(uint16_t port, int* error) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    *error = errno;
    return -1;
  }
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0) {
    *error = errno;
    ::close(fd);
    return -1;
  }
  *error = 0;
  return fd;
}

class Client {
 public:
  explicit Client(uint16_t port) {
    int error = 0;
    fd_ = ConnectTo(port, &error);
  }
  ~Client() { Close(); }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  bool connected() const { return fd_ >= 0; }

  void Close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  bool Send(std::string_view bytes) {
    while (!bytes.empty()) {
      const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      bytes.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
  }

  ClientResponse Get(std::string_view target, HeaderList headers = {}) {
    return Request("GET", target, "", std::move(headers));
  }

  ClientResponse Request(std::string_view method, std::string_view target, std::string_view body,
                         HeaderList headers = {}) {
    std::string request = std::string(method) + " " + std::string(target) + " HTTP/1.1\r\n";
    request += "Host: 127.0.0.1\r\n";
    for (const auto& [name, value] : headers) request += name + ": " + value + "\r\n";
    if (!body.empty() || method == "POST") {
      request += "Content-Length: " + std::to_string(body.size()) + "\r\n";
    }
    request += "\r\n";
    request += body;
    if (!Send(request)) return {};
    return Read();
  }

  // Reads one response (Content-Length framed, or none for 1xx/204/304).
  ClientResponse Read() {
    const auto deadline = SteadyClock::now() + kIoTimeout;
    std::size_t header_end;
    while ((header_end = buffer_.find("\r\n\r\n")) == std::string::npos) {
      if (!Fill(deadline)) return {};
    }
    ClientResponse response;
    const std::string head = buffer_.substr(0, header_end);
    buffer_.erase(0, header_end + 4);
    std::size_t line_end = head.find("\r\n");
    const std::string status_line = head.substr(0, line_end);
    if (status_line.size() < 12 || status_line.rfind("HTTP/1.", 0) != 0) return {};
    const int status = std::stoi(status_line.substr(9, 3));
    while (line_end != std::string::npos) {
      const std::size_t start = line_end + 2;
      line_end = head.find("\r\n", start);
      const std::string line = head.substr(start, line_end - start);
      const std::size_t colon = line.find(':');
      if (colon == std::string::npos) continue;
      std::string value = line.substr(colon + 1);
      value.erase(0, value.find_first_not_of(' '));
      response.headers.emplace_back(line.substr(0, colon), value);
    }
    std::size_t length = 0;
    if (auto content_length = response.Header("Content-Length"))
      length = std::stoul(*content_length);
    while (buffer_.size() < length) {
      if (!Fill(deadline)) return {};
    }
    response.body = buffer_.substr(0, length);
    buffer_.erase(0, length);
    response.status = status;
    return response;
  }

  // True when the server closes (EOF or reset) within the wait.
  bool WaitClosed(std::chrono::milliseconds wait) {
    const auto deadline = SteadyClock::now() + wait;
    for (;;) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now());
      if (left <= 0ms) return false;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      char scratch[4096];
      const ssize_t n = ::recv(fd_, scratch, sizeof(scratch), 0);
      if (n == 0 || (n < 0 && errno == ECONNRESET)) return true;
      if (n > 0) buffer_.append(scratch, static_cast<std::size_t>(n));
    }
  }

 private:
  bool Fill(SteadyClock::time_point deadline) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now());
    if (left <= 0ms) return false;
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
    char scratch[4096];
    const ssize_t n = ::recv(fd_, scratch, sizeof(scratch), 0);
    if (n <= 0) return false;
    buffer_.append(scratch, static_cast<std::size_t>(n));
    return true;
  }

  int fd_ = -1;
  std::string buffer_;
};

// --- Test doubles ----------------------------------------------------------------

struct Recorded {
  std::string method;
  std::string route;
  std::string path;
  int status = 0;
  std::string request_id;
  std::string remote_address;
  std::size_t response_bytes = 0;
};

class RecordingObserver : public RequestObserver {
 public:
  void OnRequest(const RequestRecord& record) override {
    std::lock_guard lock(mu_);
    records_.push_back({std::string(record.method), std::string(record.route),
                        std::string(record.path), record.status, std::string(record.request_id),
                        std::string(record.remote_address), record.response_bytes});
    cv_.notify_all();
  }

  // The records once there are at least n of them (or whatever arrived in 5 s).
  std::vector<Recorded> WaitFor(std::size_t n) {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, kIoTimeout, [&] { return records_.size() >= n; });
    return records_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Recorded> records_;
};

// Blocks a handler until the test opens it (bounded, so a failing test ends).
class Gate {
 public:
  void Open() {
    std::lock_guard lock(mu_);
    open_ = true;
    cv_.notify_all();
  }
  void Wait() {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, 10s, [&] { return open_; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = false;
};

bool WaitUntil(const std::function<bool()>& condition, std::chrono::milliseconds limit = 5s) {
  const auto deadline = SteadyClock::now() + limit;
  while (!condition()) {
    if (SteadyClock::now() >= deadline) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

bool IsHex16(const std::string& id) {
  return id.size() == 16 && id.find_first_not_of("0123456789abcdef") == std::string::npos;
}

class HttpServerTest : public ::testing::Test {
 protected:
  HttpServerTest() {
    options_.port = 0;
    options_.io_threads = 1;
    router_.Add("GET", "/hello", Executor::kInline, [](HttpRequest& request) {
      return HttpResponse::Json(200, "{\"hello\":\"" + request.query + "\"}");
    });
    router_.Add("POST", "/echo", Executor::kInline,
                [](HttpRequest& request) { return HttpResponse::Json(200, request.body); });
    router_.Add("GET", "/users/{id}", Executor::kInline, [](HttpRequest& request) {
      return HttpResponse::Json(200, "\"" + request.path_params.at("id") + "\"");
    });
    router_.Add("PUT", "/users/{id}", Executor::kInline,
                [](HttpRequest&) { return HttpResponse::NoContent(); });
    router_.Add("GET", "/throw", Executor::kInline, [](HttpRequest&) -> HttpResponse {
      throw std::runtime_error("secret database detail");
    });
    router_.Add("GET", "/slow", Executor::kStore, [this](HttpRequest&) {
      ++slow_started_;
      gate_.Wait();
      return HttpResponse::Json(200, "{\"slow\":true}");
    });
  }

  ~HttpServerTest() override {
    gate_.Open();  // never leave a pool thread blocked behind a failed assertion
    server_.reset();
  }

  HttpServer& StartServer() {
    server_ = std::make_unique<HttpServer>(options_, router_, pools_, &observer_);
    server_->Start();
    return *server_;
  }

  uint16_t port() const { return server_->port(); }

  ServerOptions options_;
  Router router_;
  boost::asio::thread_pool store_pool_{2};
  boost::asio::thread_pool hash_pool_{1};  // used only by tests that set pools_.hash
  WorkPools pools_{&store_pool_, nullptr};
  RecordingObserver observer_;
  Gate gate_;
  std::atomic<int> slow_started_{0};
  std::unique_ptr<HttpServer> server_;
};

TEST_F(HttpServerTest, AnswersJsonWithRequestIdAndNoStore) {
  StartServer();
  Client client(port());
  ASSERT_TRUE(client.connected());
  const ClientResponse response = client.Get("/hello?who=me");
  ASSERT_EQ(response.status, 200);
  EXPECT_EQ(response.body, "{\"hello\":\"who=me\"}");
  EXPECT_EQ(response.Header("Content-Type"), "application/json");
  EXPECT_EQ(response.Header("Content-Length"), std::to_string(response.body.size()));
  EXPECT_EQ(response.Header("Cache-Control"), "no-store");
  EXPECT_EQ(response.Header("Server"), std::nullopt);
  ASSERT_TRUE(response.Header("X-Request-Id").has_value());
  EXPECT_TRUE(IsHex16(*response.Header("X-Request-Id"))) << *response.Header("X-Request-Id");

  const std::vector<Recorded> records = observer_.WaitFor(1);
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].method, "GET");
  EXPECT_EQ(records[0].route, "/hello");
  EXPECT_EQ(records[0].path, "/hello");
  EXPECT_EQ(records[0].status, 200);
  EXPECT_EQ(records[0].request_id, *response.Header("X-Request-Id"));
  EXPECT_EQ(records[0].remote_address, "127.0.0.1");
  EXPECT_EQ(records[0].response_bytes, response.body.size());
}

TEST_F(HttpServerTest, EchoesASaneRequestIdAndReplacesOthers) {
  StartServer();
  Client client(port());
  EXPECT_EQ(client.Get("/hello", {{"X-Request-Id", "abc-123_XYZ"}}).Header("X-Request-Id"),
            "abc-123_XYZ");
  const auto with_space = client.Get("/hello", {{"X-Request-Id", "two words"}});
  EXPECT_TRUE(IsHex16(with_space.Header("X-Request-Id").value_or("")));
  const auto too_long = client.Get("/hello", {{"X-Request-Id", std::string(129, 'a')}});
  EXPECT_TRUE(IsHex16(too_long.Header("X-Request-Id").value_or("")));
  EXPECT_EQ(client.Get("/hello", {{"X-Request-Id", std::string(128, 'a')}}).Header("X-Request-Id"),
            std::string(128, 'a'));
  // Two generated ids differ.
  EXPECT_NE(client.Get("/hello").Header("X-Request-Id"),
            client.Get("/hello").Header("X-Request-Id"));
}

TEST_F(HttpServerTest, PathParametersReachTheHandler) {
  StartServer();
  Client client(port());
  const ClientResponse response = client.Get("/users/u%2042");
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.body, "\"u 42\"");
  EXPECT_EQ(observer_.WaitFor(1).at(0).route, "/users/{id}");
}

TEST_F(HttpServerTest, UnknownPathIs404AndWrongMethodIs405WithAllow) {
  StartServer();
  Client client(port());
  const ClientResponse missing = client.Get("/nope");
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(missing.body, R"({"error":"not_found","message":"no such resource"})");
  EXPECT_TRUE(missing.Header("X-Request-Id").has_value());

  const ClientResponse wrong = client.Request("DELETE", "/users/7", "");
  EXPECT_EQ(wrong.status, 405);
  EXPECT_EQ(wrong.Header("Allow"), "GET, PUT");
  EXPECT_NE(wrong.body.find("\"error\":\"method_not_allowed\""), std::string::npos);

  const std::vector<Recorded> records = observer_.WaitFor(2);
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[0].route, "unmatched");
  EXPECT_EQ(records[0].status, 404);
  EXPECT_EQ(records[1].route, "unmatched");
  EXPECT_EQ(records[1].status, 405);
}

TEST_F(HttpServerTest, KeepAliveServesSeveralRequestsOnOneConnection) {
  StartServer();
  Client client(port());
  EXPECT_EQ(client.Get("/hello").status, 200);
  EXPECT_EQ(client.Request("PUT", "/users/1", "").status, 204);  // no body, no length
  const ClientResponse echoed = client.Request("POST", "/echo", "{\"x\":1}");
  EXPECT_EQ(echoed.status, 200);
  EXPECT_EQ(echoed.body, "{\"x\":1}");
  // Pipelined: two requests in one write, two responses in order.
  ASSERT_TRUE(client.Send(
      "GET /hello?1 HTTP/1.1\r\nHost: a\r\n\r\nGET /hello?2 HTTP/1.1\r\nHost: a\r\n\r\n"));
  EXPECT_EQ(client.Read().body, "{\"hello\":\"1\"}");
  EXPECT_EQ(client.Read().body, "{\"hello\":\"2\"}");
  EXPECT_EQ(server_->active_connections(), 1u);
}

TEST_F(HttpServerTest, NoContentHasNoBodyOrLength) {
  StartServer();
  Client client(port());
  const ClientResponse response = client.Request("PUT", "/users/1", "");
  EXPECT_EQ(response.status, 204);
  EXPECT_EQ(response.Header("Content-Length"), std::nullopt);
  EXPECT_EQ(response.Header("Content-Type"), std::nullopt);
  EXPECT_EQ(response.Header("Cache-Control"), "no-store");
}

TEST_F(HttpServerTest, Http10WithoutKeepAliveCloses) {
  StartServer();
  Client client(port());
  ASSERT_TRUE(client.Send("GET /hello HTTP/1.0\r\n\r\n"));
  const ClientResponse response = client.Read();
  EXPECT_EQ(response.status, 200);
  EXPECT_TRUE(client.WaitClosed(3s));
}

TEST_F(HttpServerTest, ConnectionCloseIsHonoured) {
  StartServer();
  Client client(port());
  const ClientResponse response = client.Get("/hello", {{"Connection", "close"}});
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.Header("Connection"), "close");
  EXPECT_TRUE(client.WaitClosed(3s));
}

TEST_F(HttpServerTest, BodyOverTheLimitIs413) {
  options_.body_limit = 16;
  StartServer();
  Client client(port());
  EXPECT_EQ(client.Request("POST", "/echo", std::string(16, 'a')).status, 200);
  const ClientResponse response = client.Request("POST", "/echo", std::string(1000, 'a'));
  EXPECT_EQ(response.status, 413);
  EXPECT_NE(response.body.find("\"error\":\"payload_too_large\""), std::string::npos);
  EXPECT_EQ(response.Header("Connection"), "close");
  EXPECT_TRUE(client.WaitClosed(3s));
  const std::vector<Recorded> records = observer_.WaitFor(2);
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[1].route, "unmatched");
  EXPECT_EQ(records[1].status, 413);
}

TEST_F(HttpServerTest, ChunkedBodyOverTheLimitIs413) {
  options_.body_limit = 16;
  StartServer();
  Client client(port());
  ASSERT_TRUE(
      client.Send("POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                  "10\r\n0123456789abcdef\r\n10\r\n0123456789abcdef\r\n0\r\n\r\n"));
  EXPECT_EQ(client.Read().status, 413);
}

TEST_F(HttpServerTest, HugeHeaderIs431) {
  options_.header_limit = 1024;
  StartServer();
  Client client(port());
  const ClientResponse response = client.Get("/hello", {{"X-Big", std::string(8000, 'b')}});
  EXPECT_EQ(response.status, 431);
  EXPECT_NE(response.body.find("\"error\":\"request_header_too_large\""), std::string::npos);
  EXPECT_TRUE(client.WaitClosed(3s));
  EXPECT_EQ(observer_.WaitFor(1).at(0).route, "unmatched");
}

TEST_F(HttpServerTest, StalledRequestIs408) {
  options_.read_timeout = 200ms;
  StartServer();
  Client client(port());
  const auto started = SteadyClock::now();
  ASSERT_TRUE(client.Send("GET /hello HTTP/1.1\r\nHost: a\r\n"));
  const ClientResponse response = client.Read();
  EXPECT_EQ(response.status, 408);
  EXPECT_NE(response.body.find("\"error\":\"request_timeout\""), std::string::npos);
  EXPECT_GE(SteadyClock::now() - started, 150ms);
  EXPECT_TRUE(client.WaitClosed(3s));
}

TEST_F(HttpServerTest, StalledBodyIs408) {
  options_.read_timeout = 200ms;
  StartServer();
  Client client(port());
  ASSERT_TRUE(client.Send("POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n12345"));
  EXPECT_EQ(client.Read().status, 408);
}

TEST_F(HttpServerTest, IdleConnectionIsClosedAfterIdleTimeout) {
  options_.idle_timeout = 200ms;
  options_.read_timeout = 5s;
  StartServer();
  Client client(port());
  EXPECT_EQ(client.Get("/hello").status, 200);
  const auto started = SteadyClock::now();
  EXPECT_TRUE(client.WaitClosed(3s));
  EXPECT_GE(SteadyClock::now() - started, 150ms);
  EXPECT_TRUE(WaitUntil([&] { return server_->active_connections() == 0; }));
  // A silent new connection is idle as well; it gets no 408.
  Client silent(port());
  EXPECT_TRUE(silent.WaitClosed(3s));
  EXPECT_EQ(silent.Read().status, 0);
}

TEST_F(HttpServerTest, MalformedRequestIs400) {
  StartServer();
  Client client(port());
  ASSERT_TRUE(client.Send("THIS IS NOT HTTP\r\n\r\n"));
  const ClientResponse response = client.Read();
  EXPECT_EQ(response.status, 400);
  EXPECT_NE(response.body.find("\"error\":\"bad_request\""), std::string::npos);
  EXPECT_TRUE(client.WaitClosed(3s));

  Client bad_length(port());
  ASSERT_TRUE(bad_length.Send("POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: x\r\n\r\n"));
  EXPECT_EQ(bad_length.Read().status, 400);
}

TEST_F(HttpServerTest, ThrowingHandlerIs500WithoutDetails) {
  StartServer();
  Client client(port());
  const ClientResponse response = client.Get("/throw");
  EXPECT_EQ(response.status, 500);
  EXPECT_EQ(response.body, R"({"error":"internal_error","message":"internal error"})");
  EXPECT_EQ(response.body.find("secret"), std::string::npos);
  EXPECT_EQ(client.Get("/hello").status, 200) << "the connection survives";
}

TEST_F(HttpServerTest, InvalidResponseHeaderIs500) {
  router_.Add("GET", "/split", Executor::kInline, [](HttpRequest&) {
    HttpResponse response = HttpResponse::Json(200, "{}");
    response.SetHeader("X-Evil", "a\r\nSet-Cookie: x=y");
    return response;
  });
  // A bare LF or a NUL is refused as well as CRLF.
  router_.Add("GET", "/lf", Executor::kInline, [](HttpRequest&) {
    HttpResponse response = HttpResponse::Json(200, "{}");
    response.SetHeader("X-Evil", "a\nSet-Cookie: x=y");
    return response;
  });
  router_.Add("GET", "/nul", Executor::kInline, [](HttpRequest&) {
    HttpResponse response = HttpResponse::Json(200, "{}");
    response.SetHeader("X-Evil", std::string("a\0b", 3));
    return response;
  });
  StartServer();
  Client client(port());
  const ClientResponse response = client.Get("/split");
  EXPECT_EQ(response.status, 500);
  EXPECT_EQ(response.Header("Set-Cookie"), std::nullopt);
  const ClientResponse lf = client.Get("/lf");
  EXPECT_EQ(lf.status, 500);
  EXPECT_EQ(lf.Header("Set-Cookie"), std::nullopt);
  EXPECT_EQ(client.Get("/nul").status, 500);
}

TEST_F(HttpServerTest, HandlerHeadersAreKeptButFramingIsTheServers) {
  router_.Add("GET", "/custom", Executor::kInline, [](HttpRequest&) {
    HttpResponse response;
    response.body = "plain";
    response.SetHeader("Content-Type", "text/plain");
    response.SetHeader("Cache-Control", "private, max-age=5");
    response.SetHeader("Content-Length", "999");
    response.SetHeader("Location", "/users/1");
    return response;
  });
  StartServer();
  Client client(port());
  const ClientResponse response = client.Get("/custom");
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.body, "plain");
  EXPECT_EQ(response.Header("Content-Type"), "text/plain");
  EXPECT_EQ(response.Header("Content-Length"), "5");
  EXPECT_EQ(response.Header("Cache-Control"), "private, max-age=5");
  EXPECT_EQ(response.Header("Location"), "/users/1");
}

TEST_F(HttpServerTest, ExpectContinueGetsA100) {
  StartServer();
  Client client(port());
  ASSERT_TRUE(client.Send(
      "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n"));
  EXPECT_EQ(client.Read().status, 100);
  ASSERT_TRUE(client.Send("{}"));
  const ClientResponse response = client.Read();
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.body, "{}");
}

TEST_F(HttpServerTest, HandlersRunOnTheExecutorTheirRouteNames) {
  std::mutex mu;
  std::thread::id inline_thread;
  std::thread::id store_thread;
  std::thread::id hash_thread;
  const auto record = [&](std::thread::id* where) {
    return [&mu, where](HttpRequest&) {
      std::lock_guard lock(mu);
      *where = std::this_thread::get_id();
      return HttpResponse::Json(200, "{}");
    };
  };
  router_.Add("GET", "/where/inline", Executor::kInline, record(&inline_thread));
  router_.Add("GET", "/where/store", Executor::kStore, record(&store_thread));
  router_.Add("GET", "/where/hash", Executor::kHash, record(&hash_thread));  // no hash pool
  StartServer();
  Client client(port());
  EXPECT_EQ(client.Get("/where/inline").status, 200);
  EXPECT_EQ(client.Get("/where/store").status, 200);
  EXPECT_EQ(client.Get("/where/hash").status, 200);
  std::lock_guard lock(mu);
  EXPECT_NE(inline_thread, std::thread::id());
  EXPECT_NE(store_thread, std::thread::id());
  EXPECT_NE(store_thread, inline_thread) << "a store handler must not run on the I/O thread";
  EXPECT_EQ(hash_thread, inline_thread) << "with no hash pool the handler runs inline";
}

TEST_F(HttpServerTest, HandlerStepsRunOnTheExecutorsTheyName) {
  std::mutex mu;
  std::vector<std::pair<std::string, std::thread::id>> steps;
  const auto record = [&](std::string what) {
    std::lock_guard lock(mu);
    steps.emplace_back(std::move(what), std::this_thread::get_id());
  };
  router_.Add("GET", "/where/inline", Executor::kInline, [&](HttpRequest&) {
    record("io");
    return HttpResponse::NoContent();
  });
  // store -> hash -> inline -> store, as login does (store, hash, store).
  router_.Add("GET", "/steps", Executor::kStore, [&](HttpRequest& request) {
    record("store");
    return Reply::Then(Executor::kHash, [&] {
      record("hash");
      return Reply::Then(Executor::kInline, [&] {
        record("inline");
        return Reply::Then(Executor::kStore, [&]() -> Reply {
          record("store");
          return HttpResponse::Json(200, "\"" + request.query + "\"");
        });
      });
    });
  });
  pools_.hash = &hash_pool_;
  StartServer();
  Client client(port());
  EXPECT_EQ(client.Get("/where/inline").status, 204);
  const ClientResponse response = client.Get("/steps?done");
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.body, "\"done\"");
  std::lock_guard lock(mu);
  ASSERT_EQ(steps.size(), 5u);
  const std::thread::id io = steps[0].second;
  EXPECT_EQ(steps[1].first, "store");
  EXPECT_NE(steps[1].second, io);
  EXPECT_EQ(steps[2].first, "hash");
  EXPECT_NE(steps[2].second, io);
  EXPECT_NE(steps[2].second, steps[1].second);
  EXPECT_EQ(steps[3].first, "inline");
  EXPECT_EQ(steps[3].second, io) << "an inline step runs on the connection's I/O thread";
  EXPECT_EQ(steps[4].first, "store");
  EXPECT_NE(steps[4].second, io);
  EXPECT_NE(steps[4].second, steps[2].second);
}

TEST_F(HttpServerTest, ThrowingOrInvalidLaterStepIs500AndTheConnectionGoesOn) {
  router_.Add("GET", "/steps/throw", Executor::kStore, [](HttpRequest&) {
    return Reply::Then(Executor::kStore, []() -> Reply { throw std::runtime_error("detail"); });
  });
  router_.Add("GET", "/steps/invalid", Executor::kInline, [](HttpRequest&) {
    return Reply::Then(Executor::kStore, []() -> Reply { return HttpResponse{42, {}, ""}; });
  });
  StartServer();
  Client client(port());
  const ClientResponse thrown = client.Get("/steps/throw");
  EXPECT_EQ(thrown.status, 500);
  EXPECT_EQ(thrown.body.find("detail"), std::string::npos);
  EXPECT_EQ(client.Get("/steps/invalid").status, 500);
  EXPECT_EQ(client.Get("/hello?again").status, 200);
}

TEST_F(HttpServerTest, AwaitedOperationsResumeTheRequestFromAnotherThread) {
  // An operation completing on a thread of its own (as a store's batch writer
  // does); its next step, bound for the store pool, runs there.
  std::mutex mu;
  std::vector<std::thread> completers;
  std::thread::id start_thread, completer_thread, next_thread;
  router_.Add("GET", "/await", Executor::kInline, [&](HttpRequest&) {
    return Reply::Await([&](Reply::Resume resume) {
      std::lock_guard lock(mu);
      start_thread = std::this_thread::get_id();
      completers.emplace_back([&, resume] {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        {
          std::lock_guard inner(mu);
          completer_thread = std::this_thread::get_id();
        }
        resume(Reply::Then(Executor::kStore, [&]() -> Reply {
          std::lock_guard inner(mu);
          next_thread = std::this_thread::get_id();
          return HttpResponse::Json(200, "\"resumed\"");
        }));
      });
    });
  });
  // Awaiting twice in a row, the second resuming on the caller's thread.
  router_.Add("GET", "/await/twice", Executor::kStore, [](HttpRequest&) {
    return Reply::Await([](Reply::Resume resume) {
      resume(Reply::Await([](Reply::Resume again) { again(HttpResponse::Json(201, "{}")); }));
    });
  });
  StartServer();
  Client client(port());
  const ClientResponse response = client.Get("/await");
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.body, "\"resumed\"");
  EXPECT_EQ(client.Get("/await/twice").status, 201);
  std::vector<std::thread> to_join;
  {
    std::lock_guard lock(mu);
    EXPECT_NE(start_thread, std::thread::id());
    EXPECT_NE(completer_thread, start_thread);
    EXPECT_NE(next_thread, std::thread::id());
    EXPECT_NE(next_thread, start_thread) << "a store step must not run on the I/O thread";
    EXPECT_NE(next_thread, completer_thread) << "the completing thread only hands it on";
    to_join.swap(completers);
  }
  for (std::thread& t : to_join) t.join();
}

TEST_F(HttpServerTest, AnAwaitThatNeverResumesOrThrowsIs500AndTheConnectionGoesOn) {
  router_.Add("GET", "/await/dropped", Executor::kInline, [](HttpRequest&) {
    return Reply::Await([](Reply::Resume) {});  // loses its resume
  });
  router_.Add("GET", "/await/throws", Executor::kStore, [](HttpRequest&) {
    return Reply::Await([](Reply::Resume) { throw std::runtime_error("detail"); });
  });
  router_.Add("GET", "/await/invalid", Executor::kInline, [](HttpRequest&) {
    return Reply::Await([](Reply::Resume resume) { resume(HttpResponse{42, {}, ""}); });
  });
  StartServer();
  Client client(port());
  EXPECT_EQ(client.Get("/await/dropped").status, 500);
  const ClientResponse thrown = client.Get("/await/throws");
  EXPECT_EQ(thrown.status, 500);
  EXPECT_EQ(thrown.body.find("detail"), std::string::npos);
  EXPECT_EQ(client.Get("/await/invalid").status, 500);
  EXPECT_EQ(client.Get("/hello?again").status, 200);
}

TEST_F(HttpServerTest, PooledHandlersRunConcurrently) {
  StartServer();
  Client first(port());
  Client second(port());
  ASSERT_TRUE(first.Send("GET /slow HTTP/1.1\r\nHost: a\r\n\r\n"));
  ASSERT_TRUE(second.Send("GET /slow HTTP/1.1\r\nHost: a\r\n\r\n"));
  // Both are blocked on the gate at once: neither blocks the I/O thread.
  ASSERT_TRUE(WaitUntil([&] { return slow_started_ == 2; }));
  EXPECT_EQ(server_->in_flight_requests(), 2u);
  Client third(port());
  EXPECT_EQ(third.Get("/hello").status, 200);
  gate_.Open();
  EXPECT_EQ(first.Read().status, 200);
  EXPECT_EQ(second.Read().status, 200);
  EXPECT_TRUE(WaitUntil([&] { return server_->in_flight_requests() == 0; }));
}

TEST_F(HttpServerTest, DrainClosesBusyConnectionsAfterTheirResponse) {
  StartServer();
  Client client(port());
  ASSERT_TRUE(client.Send("GET /slow HTTP/1.1\r\nHost: a\r\n\r\n"));
  ASSERT_TRUE(WaitUntil([&] { return slow_started_ == 1; }));
  server_->StopAccepting();
  server_->BeginDrain();
  gate_.Open();
  const ClientResponse response = client.Read();
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.Header("Connection"), "close");
  EXPECT_TRUE(client.WaitClosed(3s));
  client.Close();
  EXPECT_EQ(server_->WaitForConnections(SteadyClock::now() + 3s), 0u);
  EXPECT_EQ(server_->active_connections(), 0u);
}

TEST_F(HttpServerTest, DrainClosesIdleKeepAliveConnectionsAtOnce) {
  StartServer();  // idle_timeout stays at 60 s
  Client idle(port());
  EXPECT_EQ(idle.Get("/hello").status, 200);
  const auto started = SteadyClock::now();
  server_->BeginDrain();
  EXPECT_TRUE(idle.WaitClosed(3s));
  EXPECT_LT(SteadyClock::now() - started, 2s);
  EXPECT_EQ(server_->WaitForConnections(SteadyClock::now() + 3s), 0u);
}

TEST_F(HttpServerTest, DrainLetsANewConnectionSendOneRequest) {
  StartServer();
  Client fresh(port());
  ASSERT_TRUE(WaitUntil([&] { return server_->active_connections() == 1; }));
  server_->BeginDrain();
  const ClientResponse response = fresh.Get("/hello");
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.Header("Connection"), "close");
  EXPECT_TRUE(fresh.WaitClosed(3s));
}

TEST_F(HttpServerTest, WaitForConnectionsForceClosesWhatOutlivesTheDeadline) {
  StartServer();
  Client client(port());
  ASSERT_TRUE(client.Send("GET /slow HTTP/1.1\r\nHost: a\r\n\r\n"));
  ASSERT_TRUE(WaitUntil([&] { return slow_started_ == 1; }));
  server_->BeginDrain();
  const auto started = SteadyClock::now();
  EXPECT_EQ(server_->WaitForConnections(SteadyClock::now() + 200ms), 1u);
  EXPECT_GE(SteadyClock::now() - started, 150ms);
  EXPECT_TRUE(client.WaitClosed(3s)) << "force-closed while the handler still runs";
  gate_.Open();
  EXPECT_TRUE(WaitUntil([&] { return server_->active_connections() == 0; }));
  EXPECT_TRUE(WaitUntil([&] { return server_->in_flight_requests() == 0; }));
}

TEST_F(HttpServerTest, StopAcceptingRefusesNewConnections) {
  StartServer();
  Client before(port());
  EXPECT_EQ(before.Get("/hello").status, 200);
  server_->StopAccepting();
  server_->StopAccepting();  // idempotent
  int error = 0;
  const int fd = ConnectTo(port(), &error);
  if (fd >= 0) ::close(fd);
  EXPECT_LT(fd, 0);
  EXPECT_EQ(error, ECONNREFUSED);
  EXPECT_EQ(before.Get("/hello").status, 200) << "existing connections keep working";
}

TEST_F(HttpServerTest, StartOnATakenPortThrows) {
  StartServer();
  ServerOptions clash = options_;
  clash.port = port();
  HttpServer second(clash, router_, pools_, nullptr);
  EXPECT_THROW(second.Start(), std::system_error);
}

TEST_F(HttpServerTest, BadListenAddressThrows) {
  options_.host = "192.0.2.1";  // TEST-NET-1: a literal, so no DNS; not a local address
  HttpServer server(options_, router_, pools_, nullptr);
  EXPECT_THROW(server.Start(), std::system_error);
}

TEST_F(HttpServerTest, StopIsIdempotentAndClosesOpenConnections) {
  options_.io_threads = 2;
  StartServer();
  Client busy(port());
  ASSERT_TRUE(busy.Send("GET /slow HTTP/1.1\r\nHost: a\r\n\r\n"));
  ASSERT_TRUE(WaitUntil([&] { return slow_started_ == 1; }));
  Client idle(port());
  EXPECT_EQ(idle.Get("/hello").status, 200);
  Client half(port());
  ASSERT_TRUE(half.Send("GET /hel"));
  // Accepted and registered; a connection still in the accept queue is only
  // closed when the server object goes away.
  ASSERT_TRUE(WaitUntil([&] { return server_->active_connections() == 3; }));
  server_->Stop();
  server_->Stop();
  EXPECT_TRUE(idle.WaitClosed(3s));
  EXPECT_TRUE(half.WaitClosed(3s));
  EXPECT_TRUE(busy.WaitClosed(3s));
  gate_.Open();  // the destructor waits for the pooled handler to return
  server_.reset();
}

TEST_F(HttpServerTest, DestructorWithoutStartIsFine) {
  HttpServer server(options_, router_, pools_, nullptr);
  server.Stop();
  server.StopAccepting();
  server.BeginDrain();
  EXPECT_EQ(server.WaitForConnections(SteadyClock::now()), 0u);
}

TEST_F(HttpServerTest, ManyClientsOnSeveralIoThreads) {
  options_.io_threads = 2;
  StartServer();
  constexpr int kClients = 8;
  constexpr int kRequests = 20;
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kClients; ++i) {
    threads.emplace_back([&, i] {
      Client client(port());
      for (int j = 0; j < kRequests; ++j) {
        const std::string target = "/users/" + std::to_string(i * 1000 + j);
        const ClientResponse response = client.Get(target);
        if (response.status == 200 && response.body == "\"" + target.substr(7) + "\"") ++ok;
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(ok.load(), kClients * kRequests);
  EXPECT_EQ(observer_.WaitFor(kClients * kRequests).size(),
            static_cast<std::size_t>(kClients * kRequests));
}

}  // namespace
}  // namespace bulwark::http
