// HttpServer: HTTP/1.1 on Boost.Beast + Asio C++20 coroutines.
//
// One I/O thread per configured io_threads; keep-alive; bounded header and
// body sizes and read/idle timeouts (431/413/408); JSON errors; X-Request-Id on
// every response; handlers dispatched to the executor their Route names.
// The only translation units that include Beast are server.cpp (and its test).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "http/router.hpp"

namespace boost::asio {
class io_context;
class thread_pool;
}  // namespace boost::asio

namespace bulwark::http {

struct ServerOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 8080;  // 0 picks a free port (see HttpServer::port())
  int io_threads = 1;
  std::size_t header_limit = 16 * 1024;            // bytes of request line + headers -> 431
  std::size_t body_limit = 1024 * 1024;            // bytes -> 413
  std::chrono::milliseconds read_timeout{10'000};  // to read one whole request once started -> 408
  std::chrono::milliseconds idle_timeout{
      60'000};  // keep-alive connection with no request -> closed
  // Called on each I/O thread with its io_context before it serves, and with
  // nullptr once it has stopped: lets other modules keep I/O objects of
  // their own on the thread (redis::BindThreadToIoContext).
  std::function<void(boost::asio::io_context*)> on_io_thread;
};

// What the server reports after each response (for metrics and the access log).
struct RequestRecord {
  std::string_view method;
  std::string_view route;  // Route::name, or "unmatched"
  std::string_view path;
  int status = 0;
  double seconds = 0;
  std::string_view request_id;
  std::string_view remote_address;
  std::size_t response_bytes = 0;
};

class RequestObserver {
 public:
  virtual ~RequestObserver() = default;
  // Called on an I/O thread after a response is written; must not block.
  virtual void OnRequest(const RequestRecord& record) = 0;
};

// Thread pools a handler may run on; owned by the caller and outliving the server.
struct WorkPools {
  boost::asio::thread_pool* store = nullptr;
  boost::asio::thread_pool* hash = nullptr;
};

class HttpServer {
 public:
  HttpServer(ServerOptions options, const Router& router, WorkPools pools,
             RequestObserver* observer);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds, listens and starts the I/O threads. Throws std::system_error when
  // the address cannot be bound.
  void Start();
  // The bound port (useful with port 0). REQUIRES: Start() returned.
  uint16_t port() const;

  // Closes the listening socket: no new connections. Idempotent.
  void StopAccepting();
  // From now on every response carries "Connection: close"; busy connections
  // close after their current response. An idle keep-alive connection closes
  // once it has been idle for a short grace period (200 ms since its last
  // response: its client may already be sending the next request, which is
  // then still served); one that has not sent a request yet gets read_timeout
  // to send it.
  void BeginDrain();
  // Waits until every connection has closed or the deadline passes, then
  // closes whatever is left. Returns the number of connections force-closed.
  std::size_t WaitForConnections(std::chrono::steady_clock::time_point deadline);
  // Stops the I/O threads and joins them. Idempotent.
  void Stop();

  std::size_t active_connections() const;
  std::size_t in_flight_requests() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace bulwark::http
