// HTTP/1.1 over TCP (optionally TLS) for the client: non-blocking sockets and
// poll() for the connect and read deadlines, Beast's parser for responses
// (transport.cpp is the only translation unit that includes Beast or OpenSSL's
// SSL API). Internal to libbulwark-client.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace bulwark::client::detail {

struct Endpoint {
  std::string url;  // as configured, without a trailing '/'
  bool tls = false;
  std::string host;
  std::string port;
  std::string prefix;  // path prefix without a trailing '/' ("" or "/auth")
};
// Throws std::invalid_argument for anything but http(s)://host[:port][/prefix].
Endpoint ParseBaseUrl(const std::string& url);

struct TransportOptions {
  std::chrono::milliseconds connect_timeout{500};
  std::chrono::milliseconds read_timeout{3000};
  std::string ca_file;
  std::size_t max_idle_connections = 8;
  std::size_t max_response_bytes = 1024 * 1024;
};

enum class Failure {
  kNone,
  kConnect,   // no connection was established: the request surely did not reach the server
  kTimeout,   // the request was (maybe) sent but no complete answer came in time
  kLost,      // the connection broke after the request was (maybe) sent
  kProtocol,  // an unparseable or oversized answer
};

struct Exchange {
  Failure failure = Failure::kNone;
  std::string error;
  bool reused = false;        // the request went out on a kept-alive connection
  bool received_any = false;  // at least one byte of an answer arrived
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
};

struct RawRequest {
  std::string method;
  std::string target;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
};

class Connection;

// Connections to one endpoint, with an idle keep-alive pool. Thread-safe.
class ConnectionPool {
 public:
  ConnectionPool(Endpoint endpoint, TransportOptions options);
  ~ConnectionPool();
  ConnectionPool(const ConnectionPool&) = delete;
  ConnectionPool& operator=(const ConnectionPool&) = delete;

  const Endpoint& endpoint() const { return endpoint_; }
  // One exchange; `allow_reuse` picks an idle kept-alive connection when there is one.
  Exchange Send(const RawRequest& request, bool allow_reuse);
  // Closes the idle connections (after a failure: they are likely dead too).
  void DropIdle();

 private:
  std::unique_ptr<Connection> Connect(std::string& error);

  Endpoint endpoint_;
  TransportOptions options_;
  struct TlsContext;
  std::unique_ptr<TlsContext> tls_;
  std::mutex mutex_;
  std::vector<std::unique_ptr<Connection>> idle_;
};

}  // namespace bulwark::client::detail
