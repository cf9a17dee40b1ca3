#include "tests/support/http_client.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <strings.h>
#include <cstring>

namespace bulwark::testing {

std::optional<std::string> HttpResult::Header(const std::string& name) const {
  for (const auto& [k, v] : headers) {
    if (strcasecmp(k.c_str(), name.c_str()) == 0) return v;
  }
  return std::nullopt;
}

HttpConnection::HttpConnection(int port, std::chrono::milliseconds timeout) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return;
  timeval tv{static_cast<time_t>(timeout.count() / 1000),
             static_cast<suseconds_t>((timeout.count() % 1000) * 1000)};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return;
  }
  fd_ = fd;
}

HttpConnection::~HttpConnection() {
  if (fd_ >= 0) close(fd_);
}

bool HttpConnection::SendRaw(const std::string& bytes) {
  if (fd_ < 0) return false;
  std::size_t sent = 0;
  while (sent < bytes.size()) {
    ssize_t n = send(fd_, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) return false;
    sent += static_cast<std::size_t>(n);
  }
  return true;
}

HttpResult HttpConnection::ReadResponse() {
  HttpResult result;
  if (fd_ < 0) {
    result.error = "not connected";
    return result;
  }
  char chunk[16384];
  std::size_t header_end;
  while ((header_end = buffer_.find("\r\n\r\n")) == std::string::npos) {
    ssize_t n = recv(fd_, chunk, sizeof chunk, 0);
    if (n <= 0) {
      result.error = n == 0 ? "connection closed" : std::string("recv: ") + strerror(errno);
      return result;
    }
    buffer_.append(chunk, static_cast<std::size_t>(n));
  }
  std::string head = buffer_.substr(0, header_end);
  buffer_.erase(0, header_end + 4);
  std::size_t line_end = head.find("\r\n");
  std::string status_line = head.substr(0, line_end);
  if (status_line.size() < 12) {
    result.error = "bad status line";
    return result;
  }
  result.status = std::stoi(status_line.substr(9, 3));
  std::size_t content_length = 0;
  std::size_t pos = line_end == std::string::npos ? head.size() : line_end + 2;
  while (pos < head.size()) {
    std::size_t end = head.find("\r\n", pos);
    if (end == std::string::npos) end = head.size();
    std::string line = head.substr(pos, end - pos);
    auto colon = line.find(':');
    if (colon != std::string::npos) {
      std::string name = line.substr(0, colon);
      std::string value = line.substr(colon + 1);
      while (!value.empty() && value.front() == ' ') value.erase(0, 1);
      if (strcasecmp(name.c_str(), "Content-Length") == 0) content_length = std::stoul(value);
      result.headers.emplace_back(std::move(name), std::move(value));
    }
    pos = end + 2;
  }
  while (buffer_.size() < content_length) {
    ssize_t n = recv(fd_, chunk, sizeof chunk, 0);
    if (n <= 0) {
      result.error = "body truncated";
      result.status = 0;
      return result;
    }
    buffer_.append(chunk, static_cast<std::size_t>(n));
  }
  result.body = buffer_.substr(0, content_length);
  buffer_.erase(0, content_length);
  return result;
}

HttpResult HttpConnection::Raw(const std::string& bytes) {
  if (!SendRaw(bytes)) {
    HttpResult r;
    r.error = "send failed";
    return r;
  }
  return ReadResponse();
}

HttpResult HttpConnection::Request(const std::string& method, const std::string& target,
                                   const std::string& body,
                                   std::vector<std::pair<std::string, std::string>> headers) {
  std::string req = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n";
  bool has_type = false;
  for (const auto& [k, v] : headers) {
    req += k + ": " + v + "\r\n";
    has_type = has_type || strcasecmp(k.c_str(), "Content-Type") == 0;
  }
  if (!body.empty() && !has_type) req += "Content-Type: application/json\r\n";
  if (!body.empty() || method == "POST" || method == "PUT" || method == "PATCH") {
    req += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  }
  req += "\r\n" + body;
  return Raw(req);
}

bool HttpConnection::PeerClosed(std::chrono::milliseconds wait) {
  if (fd_ < 0) return true;
  pollfd p{fd_, POLLIN, 0};
  if (poll(&p, 1, static_cast<int>(wait.count())) <= 0) return false;
  char c;
  return recv(fd_, &c, 1, MSG_PEEK) <= 0;
}

HttpResult HttpRequest(int port, const std::string& method, const std::string& target,
                       const std::string& body,
                       std::vector<std::pair<std::string, std::string>> headers) {
  HttpConnection conn(port);
  if (!conn.connected()) {
    HttpResult r;
    r.error = "connect failed";
    return r;
  }
  return conn.Request(method, target, body, std::move(headers));
}

}  // namespace bulwark::testing
