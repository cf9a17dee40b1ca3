#include "fake_server.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <stdexcept>

namespace bulwark::client::testing {

using Clock = std::chrono::steady_clock;

std::optional<std::string> FakeRequest::Header(const std::string& name) const {
  for (const auto& [k, v] : headers) {
    if (strcasecmp(k.c_str(), name.c_str()) == 0) return v;
  }
  return std::nullopt;
}

FakeServer::FakeServer(Handler handler) : handler_(std::move(handler)) {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(listen_fd_, 64) != 0) {
    throw std::runtime_error("fake server: bind/listen failed");
  }
  socklen_t len = sizeof addr;
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
  acceptor_ = std::thread([this] { AcceptLoop(); });
}

FakeServer::~FakeServer() { Stop(); }

void FakeServer::Stop() {
  if (stop_.exchange(true)) return;
  if (acceptor_.joinable()) acceptor_.join();
  ::close(listen_fd_);
  std::vector<std::thread> workers;
  {
    std::lock_guard lock(mutex_);
    workers.swap(workers_);
  }
  for (auto& t : workers) t.join();
}

void FakeServer::AcceptLoop() {
  // Bounded by stop_: each poll waits at most 20 ms.
  while (!stop_) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (::poll(&p, 1, 20) <= 0) continue;
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    ++connections_;
    std::lock_guard lock(mutex_);
    workers_.emplace_back([this, fd] { Serve(fd); });
  }
}

namespace {

// Reads more bytes; false on EOF, error, stop or after `idle` without data.
bool ReadMore(int fd, std::string& buffer, const std::atomic<bool>& stop,
              std::chrono::milliseconds idle) {
  auto deadline = Clock::now() + idle;
  while (!stop && Clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    int rc = ::poll(&p, 1, 20);
    if (rc < 0) return false;
    if (rc == 0) continue;
    char chunk[8192];
    ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
    if (n <= 0) return false;
    buffer.append(chunk, static_cast<std::size_t>(n));
    return true;
  }
  return false;
}

void SendAll(int fd, const std::string& data) {
  std::size_t off = 0;
  for (int i = 0; i < 10000 && off < data.size(); ++i) {
    ssize_t n = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return;
    off += static_cast<std::size_t>(n);
  }
}

const char* Reason(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 204:
      return "No Content";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 429:
      return "Too Many Requests";
    case 503:
      return "Service Unavailable";
    default:
      return "Status";
  }
}

}  // namespace

void FakeServer::Serve(int fd) {
  std::string buffer;
  for (int served = 0; served < 100000 && !stop_; ++served) {
    std::size_t end = std::string::npos;
    for (int i = 0; i < 1000 && (end = buffer.find("\r\n\r\n")) == std::string::npos; ++i) {
      if (!ReadMore(fd, buffer, stop_, std::chrono::seconds(10))) {
        ::close(fd);
        return;
      }
    }
    if (end == std::string::npos) break;
    FakeRequest req;
    std::string head = buffer.substr(0, end);
    buffer.erase(0, end + 4);
    auto line_end = head.find("\r\n");
    std::string first = head.substr(0, line_end);
    auto sp1 = first.find(' ');
    auto sp2 = first.find(' ', sp1 + 1);
    req.method = first.substr(0, sp1);
    req.target = first.substr(sp1 + 1, sp2 - sp1 - 1);
    std::size_t pos = line_end == std::string::npos ? head.size() : line_end + 2;
    while (pos < head.size()) {
      auto next = head.find("\r\n", pos);
      if (next == std::string::npos) next = head.size();
      std::string line = head.substr(pos, next - pos);
      auto colon = line.find(':');
      if (colon != std::string::npos) {
        std::string value = line.substr(colon + 1);
        while (!value.empty() && value.front() == ' ') value.erase(0, 1);
        req.headers.emplace_back(line.substr(0, colon), value);
      }
      pos = next + 2;
    }
    std::size_t length =
        std::strtoul(req.Header("Content-Length").value_or("0").c_str(), nullptr, 10);
    for (int i = 0; i < 1000 && buffer.size() < length; ++i) {
      if (!ReadMore(fd, buffer, stop_, std::chrono::seconds(10))) break;
    }
    req.body = buffer.substr(0, length);
    buffer.erase(0, std::min(length, buffer.size()));
    ++requests_;
    FakeResponse res = handler_(req);
    if (res.delay.count() > 0) {
      auto until = Clock::now() + res.delay;
      while (!stop_ && Clock::now() < until)
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    if (res.drop) break;
    std::string out = "HTTP/1.1 " + std::to_string(res.status) + " " + Reason(res.status) + "\r\n";
    for (const auto& [k, v] : res.headers) out += k + ": " + v + "\r\n";
    out += "Content-Length: " + std::to_string(res.body.size()) + "\r\n";
    if (res.close) out += "Connection: close\r\n";
    out += "\r\n" + res.body;
    SendAll(fd, out);
    if (res.close || res.close_silently) break;
  }
  ::close(fd);
}

int RefusedPort() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);  // bound but never listening: nothing accepts on it
  return ntohs(addr.sin_port);
}

}  // namespace bulwark::client::testing
