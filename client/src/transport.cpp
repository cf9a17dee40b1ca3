#include "transport.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <boost/beast/http.hpp>
#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace bulwark::client::detail {

namespace http = boost::beast::http;
using Clock = std::chrono::steady_clock;

Endpoint ParseBaseUrl(const std::string& url) {
  Endpoint e;
  std::string rest;
  if (url.rfind("http://", 0) == 0) {
    rest = url.substr(7);
  } else if (url.rfind("https://", 0) == 0) {
    e.tls = true;
    rest = url.substr(8);
  } else {
    throw std::invalid_argument("base URL must start with http:// or https://: " + url);
  }
  auto slash = rest.find('/');
  std::string authority = rest.substr(0, slash);
  if (slash != std::string::npos) e.prefix = rest.substr(slash);
  while (!e.prefix.empty() && e.prefix.back() == '/') e.prefix.pop_back();
  if (authority.empty()) throw std::invalid_argument("base URL without a host: " + url);
  if (authority.front() == '[') {  // [v6]:port
    auto close = authority.find(']');
    if (close == std::string::npos) throw std::invalid_argument("bad IPv6 host: " + url);
    e.host = authority.substr(1, close - 1);
    if (close + 1 < authority.size()) {
      if (authority[close + 1] != ':') throw std::invalid_argument("bad base URL: " + url);
      e.port = authority.substr(close + 2);
    }
  } else {
    auto colon = authority.rfind(':');
    e.host = authority.substr(0, colon);
    if (colon != std::string::npos) e.port = authority.substr(colon + 1);
  }
  if (e.port.empty()) e.port = e.tls ? "443" : "80";
  if (e.host.empty() || e.port.find_first_not_of("0123456789") != std::string::npos) {
    throw std::invalid_argument("bad host or port in base URL: " + url);
  }
  e.url = url;
  while (!e.url.empty() && e.url.back() == '/') e.url.pop_back();
  return e;
}

namespace {

int RemainingMs(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return left.count() < 0 ? 0 : static_cast<int>(left.count());
}

// Waits for `events` on fd until the deadline; false on timeout or error.
bool WaitFd(int fd, short events, Clock::time_point deadline) {
  for (int i = 0; i < 1000; ++i) {  // bounded against EINTR storms
    pollfd p{fd, events, 0};
    int rc = ::poll(&p, 1, RemainingMs(deadline));
    if (rc > 0) return true;
    if (rc == 0) return false;
    if (errno != EINTR) return false;
  }
  return false;
}

}  // namespace

struct ConnectionPool::TlsContext {
  SSL_CTX* ctx = nullptr;
  ~TlsContext() {
    if (ctx != nullptr) SSL_CTX_free(ctx);
  }
};

// A TCP connection, optionally TLS through memory BIOs (so every socket write
// uses MSG_NOSIGNAL and every wait honours the deadline).
class Connection {
 public:
  explicit Connection(int fd) : fd_(fd) {}
  ~Connection() {
    if (ssl_ != nullptr) SSL_free(ssl_);  // frees the BIOs too
    if (fd_ >= 0) ::close(fd_);
  }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  bool StartTls(SSL_CTX* ctx, const std::string& host, Clock::time_point deadline,
                std::string& error) {
    ssl_ = SSL_new(ctx);
    if (ssl_ == nullptr) return SetError(error, "SSL_new failed");
    rbio_ = BIO_new(BIO_s_mem());
    wbio_ = BIO_new(BIO_s_mem());
    if (rbio_ == nullptr || wbio_ == nullptr) return SetError(error, "BIO_new failed");
    SSL_set_bio(ssl_, rbio_, wbio_);
    in6_addr ip{};
    bool literal = ::inet_pton(AF_INET, host.c_str(), &ip) == 1 ||
                   ::inet_pton(AF_INET6, host.c_str(), &ip) == 1;
    if (literal) {  // no SNI for addresses (RFC 6066 §3); match an IP SAN
      X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl_), host.c_str());
    } else {
      SSL_set_tlsext_host_name(ssl_, host.c_str());
      SSL_set1_host(ssl_, host.c_str());
    }
    SSL_set_connect_state(ssl_);
    for (int i = 0; i < 64; ++i) {
      int rc = SSL_do_handshake(ssl_);
      if (!FlushTls(deadline, error)) return false;
      if (rc == 1) return true;
      int err = SSL_get_error(ssl_, rc);
      if (err != SSL_ERROR_WANT_READ) {
        const char* reason = ERR_reason_error_string(ERR_get_error());
        return SetError(error, std::string("TLS handshake failed: ") +
                                   (reason != nullptr ? reason : "unknown"));
      }
      if (FeedTls(deadline, error) <= 0) return false;
    }
    return SetError(error, "TLS handshake did not finish");
  }

  bool WriteAll(const std::string& data, Clock::time_point deadline, std::string& error) {
    if (ssl_ == nullptr) return SendRaw(data.data(), data.size(), deadline, error);
    std::size_t off = 0;
    for (int i = 0; i < 10000 && off < data.size(); ++i) {
      int rc = SSL_write(ssl_, data.data() + off, static_cast<int>(data.size() - off));
      if (!FlushTls(deadline, error)) return false;
      if (rc > 0) {
        off += static_cast<std::size_t>(rc);
        continue;
      }
      if (SSL_get_error(ssl_, rc) != SSL_ERROR_WANT_READ) return SetError(error, "TLS write");
      if (FeedTls(deadline, error) <= 0) return false;
    }
    return off == data.size() || SetError(error, "write did not finish");
  }

  // >0 bytes, 0 at end of stream, -1 on error or timeout (`timed_out` set).
  long ReadSome(char* buf, std::size_t n, Clock::time_point deadline, bool& timed_out,
                std::string& error) {
    if (ssl_ == nullptr) return RecvRaw(buf, n, deadline, timed_out, error);
    for (int i = 0; i < 10000; ++i) {
      int rc = SSL_read(ssl_, buf, static_cast<int>(n));
      if (rc > 0) return rc;
      int err = SSL_get_error(ssl_, rc);
      if (err == SSL_ERROR_ZERO_RETURN) return 0;
      if (!FlushTls(deadline, error)) return -1;
      if (err != SSL_ERROR_WANT_READ) {
        error = "TLS read failed";
        return -1;
      }
      long fed = FeedTls(deadline, error, &timed_out);
      if (fed <= 0) return fed;
    }
    error = "TLS read did not finish";
    return -1;
  }

  // True when the peer closed or sent something unexpected while idle.
  bool LooksDead() const {
    pollfd p{fd_, POLLIN, 0};
    return ::poll(&p, 1, 0) != 0;
  }

 private:
  static bool SetError(std::string& error, std::string message) {
    error = std::move(message);
    return false;
  }

  bool SendRaw(const char* data, std::size_t size, Clock::time_point deadline, std::string& error) {
    std::size_t off = 0;
    for (int i = 0; i < 100000 && off < size; ++i) {
      ssize_t rc = ::send(fd_, data + off, size - off, MSG_NOSIGNAL);
      if (rc > 0) {
        off += static_cast<std::size_t>(rc);
      } else if (rc < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        if (!WaitFd(fd_, POLLOUT, deadline)) return SetError(error, "write timed out");
      } else if (rc < 0 && errno == EINTR) {
        continue;
      } else {
        return SetError(error, std::string("write: ") + std::strerror(errno));
      }
    }
    return off == size || SetError(error, "write did not finish");
  }

  long RecvRaw(char* buf, std::size_t n, Clock::time_point deadline, bool& timed_out,
               std::string& error) {
    for (int i = 0; i < 100000; ++i) {
      ssize_t rc = ::recv(fd_, buf, n, 0);
      if (rc >= 0) return rc;
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) {
        error = std::string("read: ") + std::strerror(errno);
        return -1;
      }
      if (!WaitFd(fd_, POLLIN, deadline)) {
        timed_out = true;
        error = "read timed out";
        return -1;
      }
    }
    error = "read did not finish";
    return -1;
  }

  // Sends whatever the TLS engine wants to write.
  bool FlushTls(Clock::time_point deadline, std::string& error) {
    std::array<char, 16384> buf{};
    for (int i = 0; i < 10000; ++i) {
      int n = BIO_read(wbio_, buf.data(), static_cast<int>(buf.size()));
      if (n <= 0) return true;
      if (!SendRaw(buf.data(), static_cast<std::size_t>(n), deadline, error)) return false;
    }
    return true;
  }

  // Reads from the socket into the TLS engine: >0 bytes, 0 EOF, -1 error.
  long FeedTls(Clock::time_point deadline, std::string& error, bool* timed_out = nullptr) {
    std::array<char, 16384> buf{};
    bool to = false;
    long n = RecvRaw(buf.data(), buf.size(), deadline, to, error);
    if (timed_out != nullptr) *timed_out = to;
    if (n > 0) BIO_write(rbio_, buf.data(), static_cast<int>(n));
    if (n == 0) error = "connection closed during TLS";
    return n;
  }

  int fd_;
  SSL* ssl_ = nullptr;
  BIO* rbio_ = nullptr;
  BIO* wbio_ = nullptr;
};

ConnectionPool::ConnectionPool(Endpoint endpoint, TransportOptions options)
    : endpoint_(std::move(endpoint)), options_(std::move(options)) {
  if (endpoint_.tls) {
    tls_ = std::make_unique<TlsContext>();
    tls_->ctx = SSL_CTX_new(TLS_client_method());
    if (tls_->ctx == nullptr) throw std::runtime_error("SSL_CTX_new failed");
    SSL_CTX_set_min_proto_version(tls_->ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(tls_->ctx, SSL_VERIFY_PEER, nullptr);
    int ok = options_.ca_file.empty()
                 ? SSL_CTX_set_default_verify_paths(tls_->ctx)
                 : SSL_CTX_load_verify_locations(tls_->ctx, options_.ca_file.c_str(), nullptr);
    if (ok != 1) throw std::invalid_argument("cannot load CA file " + options_.ca_file);
  }
}

ConnectionPool::~ConnectionPool() = default;

void ConnectionPool::DropIdle() {
  std::vector<std::unique_ptr<Connection>> old;
  std::lock_guard lock(mutex_);
  old.swap(idle_);
}

std::unique_ptr<Connection> ConnectionPool::Connect(std::string& error) {
  auto deadline = Clock::now() + options_.connect_timeout;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* list = nullptr;
  int gai = ::getaddrinfo(endpoint_.host.c_str(), endpoint_.port.c_str(), &hints, &list);
  if (gai != 0) {
    error = std::string("resolve ") + endpoint_.host + ": " + ::gai_strerror(gai);
    return nullptr;
  }
  std::unique_ptr<Connection> conn;
  error = "no address";
  for (addrinfo* ai = list; ai != nullptr && conn == nullptr; ai = ai->ai_next) {
    int fd =
        ::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) {
      error = std::string("socket: ") + std::strerror(errno);
      continue;
    }
    int rc = ::connect(fd, ai->ai_addr, ai->ai_addrlen);
    if (rc != 0 && errno == EINPROGRESS) {
      if (WaitFd(fd, POLLOUT, deadline)) {
        int so_error = 0;
        socklen_t len = sizeof so_error;
        ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &so_error, &len);
        rc = so_error == 0 ? 0 : -1;
        errno = so_error;
        if (rc != 0) error = std::string("connect: ") + std::strerror(so_error);
      } else {
        error = "connect timed out";
        rc = -1;
      }
    } else if (rc != 0) {
      error = std::string("connect: ") + std::strerror(errno);
    }
    if (rc != 0) {
      ::close(fd);
      continue;
    }
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    conn = std::make_unique<Connection>(fd);
  }
  ::freeaddrinfo(list);
  if (conn != nullptr && tls_ != nullptr &&
      !conn->StartTls(tls_->ctx, endpoint_.host, deadline, error)) {
    return nullptr;
  }
  return conn;
}

Exchange ConnectionPool::Send(const RawRequest& request, bool allow_reuse) {
  Exchange ex;
  std::unique_ptr<Connection> conn;
  if (allow_reuse) {
    std::lock_guard lock(mutex_);
    while (!idle_.empty() && conn == nullptr) {
      conn = std::move(idle_.back());
      idle_.pop_back();
      if (conn->LooksDead()) conn.reset();
    }
  }
  ex.reused = conn != nullptr;
  if (conn == nullptr) {
    conn = Connect(ex.error);
    if (conn == nullptr) {
      ex.failure = Failure::kConnect;
      return ex;
    }
  }

  std::string wire;
  wire.reserve(256 + request.body.size());
  wire += request.method + " " + endpoint_.prefix + request.target + " HTTP/1.1\r\n";
  wire += "Host: " + endpoint_.host + ":" + endpoint_.port + "\r\n";
  bool has_type = false;
  for (const auto& [name, value] : request.headers) {
    wire += name + ": " + value + "\r\n";
    if (strcasecmp(name.c_str(), "Content-Type") == 0) has_type = true;
  }
  if (!request.body.empty() || request.method == "POST" || request.method == "PUT") {
    if (!has_type && !request.body.empty()) wire += "Content-Type: application/json\r\n";
    wire += "Content-Length: " + std::to_string(request.body.size()) + "\r\n";
  }
  wire += "\r\n";
  wire += request.body;

  auto deadline = Clock::now() + options_.read_timeout;
  if (!conn->WriteAll(wire, deadline, ex.error)) {
    ex.failure = Failure::kLost;
    return ex;
  }

  http::response_parser<http::string_body> parser;
  parser.body_limit(options_.max_response_bytes);
  parser.header_limit(64 * 1024);
  parser.eager(true);
  if (request.method == "HEAD") parser.skip(true);
  std::string buffer;
  std::array<char, 16384> chunk{};
  for (int i = 0; i < 100000 && !parser.is_done(); ++i) {
    bool timed_out = false;
    long n = conn->ReadSome(chunk.data(), chunk.size(), deadline, timed_out, ex.error);
    if (n < 0) {
      ex.failure = timed_out ? Failure::kTimeout : Failure::kLost;
      return ex;
    }
    boost::beast::error_code ec;
    if (n == 0) {
      if (parser.got_some()) parser.put_eof(ec);
      if (ec || !parser.is_done()) {
        ex.failure = Failure::kLost;
        ex.error = ex.received_any ? "connection closed mid-answer" : "connection closed";
        return ex;
      }
      break;
    }
    ex.received_any = true;
    buffer.append(chunk.data(), static_cast<std::size_t>(n));
    for (int j = 0; j < 1000 && !buffer.empty() && !parser.is_done(); ++j) {
      std::size_t used = parser.put(boost::asio::buffer(buffer), ec);
      if (ec == http::error::need_more) {
        ec = {};
        buffer.erase(0, used);
        break;
      }
      if (ec) {
        ex.failure = Failure::kProtocol;
        ex.error = "bad HTTP answer: " + ec.message();
        return ex;
      }
      buffer.erase(0, used);
      if (used == 0) break;
    }
  }
  if (!parser.is_done()) {
    ex.failure = Failure::kProtocol;
    ex.error = "HTTP answer did not finish";
    return ex;
  }
  auto& msg = parser.get();
  ex.status = static_cast<int>(msg.result_int());
  for (const auto& field : msg) {
    ex.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
  }
  ex.body = std::move(msg.body());
  if (msg.keep_alive() && buffer.empty()) {
    std::lock_guard lock(mutex_);
    if (idle_.size() < options_.max_idle_connections) idle_.push_back(std::move(conn));
  }
  return ex;
}

}  // namespace bulwark::client::detail
