// A small blocking HTTP/1.1 client for tests: keep-alive, raw writes for
// malformed input, bounded by socket timeouts. 127.0.0.1 only.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace bulwark::testing {

struct HttpResult {
  int status = 0;  // 0 when the connection failed or closed before a response
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::string error;  // why status is 0

  // Case-insensitive; nullopt when absent.
  std::optional<std::string> Header(const std::string& name) const;
};

class HttpConnection {
 public:
  explicit HttpConnection(int port, std::chrono::milliseconds timeout = std::chrono::seconds(10));
  ~HttpConnection();
  HttpConnection(const HttpConnection&) = delete;
  HttpConnection& operator=(const HttpConnection&) = delete;

  bool connected() const { return fd_ >= 0; }
  // Sends one request (Host and Content-Length added) and reads the response.
  HttpResult Request(const std::string& method, const std::string& target,
                     const std::string& body = "",
                     std::vector<std::pair<std::string, std::string>> headers = {});
  // Sends raw bytes and reads one response.
  HttpResult Raw(const std::string& bytes);
  bool SendRaw(const std::string& bytes);
  HttpResult ReadResponse();
  // True when the peer has closed the connection (reads EOF within the timeout).
  bool PeerClosed(std::chrono::milliseconds wait);

 private:
  int fd_ = -1;
  std::string buffer_;
};

// One request on a fresh connection.
HttpResult HttpRequest(int port, const std::string& method, const std::string& target,
                       const std::string& body = "",
                       std::vector<std::pair<std::string, std::string>> headers = {});

}  // namespace bulwark::testing
