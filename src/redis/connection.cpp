#include "redis/connection.hpp"

#include <openssl/ssl.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/write.hpp>

namespace bulwark::redis::detail {

using asio::ip::tcp;

std::string EndpointName(const Endpoint& endpoint) {
  if (endpoint.host.find(':') != std::string::npos) {
    return "[" + endpoint.host + "]:" + std::to_string(endpoint.port);
  }
  return endpoint.host + ":" + std::to_string(endpoint.port);
}

std::shared_ptr<Connection> Connection::Create(asio::io_context& io, const ConnectionConfig& config,
                                               PushHandlers push) {
  auto connection = std::make_shared<Connection>(io, config);
  connection->push_ = std::move(push);
  asio::post(io, [connection] { connection->Start(); });
  return connection;
}

Connection::Connection(asio::io_context& io, const ConnectionConfig& config)
    : io_(io), config_(config), resolver_(io), socket_(io), timer_(io) {
  if (config_.tls != nullptr) {
    tls_ = std::make_unique<asio::ssl::stream<tcp::socket&>>(socket_, *config_.tls);
  }
}

Connection::~Connection() = default;

void Connection::Submit(std::shared_ptr<Request> request) {
  asio::post(io_, [self = shared_from_this(), request = std::move(request)]() mutable {
    self->Enqueue(std::move(request));
  });
}

void Connection::Close(std::string reason) {
  asio::post(io_, [self = shared_from_this(), reason = std::move(reason)] { self->Fail(reason); });
}

void Connection::Start() {
  if (state_ == State::kClosed) return;
  connect_deadline_ = Clock::now() + config_.connect_timeout;
  ArmTimer();
  if (!config_.password.empty()) {
    auto auth = std::make_shared<Request>();
    std::vector<std::string> args = {"AUTH"};
    if (!config_.username.empty()) args.push_back(config_.username);
    args.push_back(config_.password);
    auth->encoded = EncodeCommand(args);
    auth->expected = 1;
    auth->timeout = config_.connect_timeout;
    std::weak_ptr<Connection> weak = weak_from_this();
    auth->done = [weak](BatchResult result) {
      auto self = weak.lock();
      if (!self || !result.ok) return;
      if (result.replies[0].IsError()) {
        // The server's own words (WRONGPASS ..., NOAUTH ...); never the password.
        self->Fail("AUTH failed: " + Describe(result.replies[0]));
      }
    };
    Enqueue(std::move(auth));
  }
  resolver_.async_resolve(config_.endpoint.host, std::to_string(config_.endpoint.port),
                          [self = shared_from_this()](const boost::system::error_code& ec,
                                                      const tcp::resolver::results_type& results) {
                            if (self->state_ == State::kClosed) return;
                            if (ec) {
                              self->Fail("cannot resolve " + EndpointName(self->config_.endpoint) +
                                         ": " + ec.message());
                              return;
                            }
                            asio::async_connect(
                                self->socket_, results,
                                [self](const boost::system::error_code& ec2, const tcp::endpoint&) {
                                  if (self->state_ == State::kClosed) return;
                                  if (ec2) {
                                    self->Fail("cannot connect to " +
                                               EndpointName(self->config_.endpoint) + ": " +
                                               ec2.message());
                                    return;
                                  }
                                  self->OnConnected();
                                });
                          });
}

void Connection::OnConnected() {
  boost::system::error_code ignored;
  socket_.set_option(tcp::no_delay(true), ignored);
  if (!tls_) {
    BecomeReady();
    return;
  }
  const std::string& host = config_.endpoint.host;
  // SNI only for names, not for IP literals.
  boost::system::error_code not_ip;
  asio::ip::make_address(host, not_ip);
  if (not_ip) SSL_set_tlsext_host_name(tls_->native_handle(), host.c_str());
  if (config_.tls_verify_peer) {
    tls_->set_verify_mode(asio::ssl::verify_peer);
    tls_->set_verify_callback(asio::ssl::host_name_verification(host));
  } else {
    tls_->set_verify_mode(asio::ssl::verify_none);
  }
  tls_->async_handshake(asio::ssl::stream_base::client, [self = shared_from_this()](
                                                            const boost::system::error_code& ec) {
    if (self->state_ == State::kClosed) return;
    if (ec) {
      self->Fail("TLS handshake with " + EndpointName(self->config_.endpoint) +
                 " failed: " + ec.message());
      return;
    }
    self->BecomeReady();
  });
}

void Connection::BecomeReady() {
  state_ = State::kReady;
  // Requests queued while connecting: their command timeout starts now.
  Clock::time_point now = Clock::now();
  for (auto& request : pending_) request->deadline = now + request->timeout;
  timer_armed_ = false;  // the connect deadline no longer applies
  StartRead();
  StartWrite();
  ArmTimer();
}

void Connection::Enqueue(std::shared_ptr<Request> request) {
  if (state_ == State::kClosed) {
    BatchResult result;
    result.error = close_reason_.empty()
                       ? "connection to " + EndpointName(config_.endpoint) + " closed"
                       : close_reason_;
    auto done = std::move(request->done);
    done(std::move(result));
    return;
  }
  Clock::time_point start = state_ == State::kConnecting ? connect_deadline_ : Clock::now();
  request->deadline = start + request->timeout;
  request->seq = next_seq_++;
  request->replies.reserve(request->expected);
  write_buf_ += request->encoded;
  request->encoded.clear();
  request->encoded.shrink_to_fit();
  pending_.push_back(std::move(request));
  if (state_ == State::kReady) {
    StartWrite();
    ArmTimer();
  }
}

void Connection::StartWrite() {
  if (writing_ || write_buf_.empty() || state_ != State::kReady) return;
  writing_ = true;
  out_buf_.clear();
  std::swap(out_buf_, write_buf_);
  sent_seq_ = next_seq_;
  auto handler = [self = shared_from_this()](const boost::system::error_code& ec, size_t) {
    self->writing_ = false;
    if (self->state_ == State::kClosed) return;
    if (ec) {
      self->Fail("write to " + EndpointName(self->config_.endpoint) + " failed: " + ec.message());
      return;
    }
    self->StartWrite();
  };
  if (tls_) {
    asio::async_write(*tls_, asio::buffer(out_buf_), std::move(handler));
  } else {
    asio::async_write(socket_, asio::buffer(out_buf_), std::move(handler));
  }
}

void Connection::StartRead() {
  auto handler = [self = shared_from_this()](const boost::system::error_code& ec, size_t n) {
    if (self->state_ == State::kClosed) return;
    if (ec) {
      self->Fail(ec == asio::error::eof
                     ? "connection closed by " + EndpointName(self->config_.endpoint)
                     : "read from " + EndpointName(self->config_.endpoint) +
                           " failed: " + ec.message());
      return;
    }
    if (!self->parser_.Feed(self->read_buf_.data(), n)) {
      self->Fail("protocol error from " + EndpointName(self->config_.endpoint) + ": " +
                 self->parser_.error());
      return;
    }
    while (self->state_ != State::kClosed) {
      std::optional<Reply> reply = self->parser_.Next();
      if (!reply) {
        if (!self->parser_.error().empty()) {
          self->Fail("protocol error from " + EndpointName(self->config_.endpoint) + ": " +
                     self->parser_.error());
        }
        break;
      }
      self->OnReply(std::move(*reply));
    }
    if (self->state_ == State::kClosed) return;
    self->ArmTimer();
    self->StartRead();
  };
  if (tls_) {
    tls_->async_read_some(asio::buffer(read_buf_), std::move(handler));
  } else {
    socket_.async_read_some(asio::buffer(read_buf_), std::move(handler));
  }
}

namespace {

bool IsPubSubMessage(const Reply& reply) {
  return reply.type == Reply::Type::kArray && reply.elements.size() == 3 &&
         reply.elements[0].type == Reply::Type::kString && reply.elements[0].str == "message";
}

}  // namespace

void Connection::OnReply(Reply reply) {
  // No command's reply looks like this (a PING in subscribed mode answers ["pong", ""]).
  if (push_.on_message && IsPubSubMessage(reply)) {
    push_.on_message(reply);
    return;
  }
  if (pending_.empty()) {
    Fail("unexpected reply from " + EndpointName(config_.endpoint));
    return;
  }
  std::shared_ptr<Request>& front = pending_.front();
  front->replies.push_back(std::move(reply));
  if (front->replies.size() < front->expected) return;
  std::shared_ptr<Request> request = std::move(front);
  pending_.pop_front();
  BatchResult result;
  result.ok = true;
  result.replies = std::move(request->replies);
  auto done = std::move(request->done);
  done(std::move(result));
}

void Connection::Fail(const std::string& reason) {
  if (state_ == State::kClosed) return;
  state_ = State::kClosed;
  close_reason_ = reason;
  closed_.store(true, std::memory_order_release);
  boost::system::error_code ignored;
  resolver_.cancel();
  timer_.cancel();
  socket_.shutdown(tcp::socket::shutdown_both, ignored);
  socket_.close(ignored);
  std::deque<std::shared_ptr<Request>> failed;
  failed.swap(pending_);
  write_buf_.clear();
  for (auto& request : failed) {
    BatchResult result;
    result.maybe_sent = request->seq < sent_seq_;
    result.error = reason;
    auto done = std::move(request->done);
    done(std::move(result));
  }
  if (auto on_close = std::move(push_.on_close)) on_close(reason);
  push_.on_message = nullptr;
}

void Connection::ArmTimer() {
  if (state_ == State::kClosed) return;
  Clock::time_point when;
  if (state_ == State::kConnecting) {
    when = connect_deadline_;
  } else if (!pending_.empty()) {
    when = pending_.front()->deadline;
  } else {
    return;
  }
  // An armed timer that fires no later than needed is kept (OnTimer re-arms).
  if (timer_armed_ && timer_expiry_ <= when) return;
  timer_armed_ = true;
  timer_expiry_ = when;
  uint64_t generation = ++timer_generation_;
  timer_.expires_at(when);  // cancels a superseded wait
  timer_.async_wait([self = shared_from_this(), generation](const boost::system::error_code&) {
    if (generation != self->timer_generation_) return;
    self->timer_armed_ = false;
    self->OnTimer();
  });
}

void Connection::OnTimer() {
  if (state_ == State::kClosed) return;
  Clock::time_point now = Clock::now();
  if (state_ == State::kConnecting) {
    if (now >= connect_deadline_) {
      Fail("connect to " + EndpointName(config_.endpoint) + " timed out");
      return;
    }
  } else if (!pending_.empty() && now >= pending_.front()->deadline) {
    Fail("no reply from " + EndpointName(config_.endpoint) + " within the command timeout");
    return;
  }
  ArmTimer();
}

NodePool::NodePool(asio::io_context& io, ConnectionConfig config, int size)
    : io_(io), config_(std::move(config)), connections_(static_cast<size_t>(std::max(1, size))) {}

std::string NodePool::name() const { return EndpointName(config_.endpoint); }

std::shared_ptr<Connection> NodePool::Pick() {
  std::lock_guard lock(mutex_);
  size_t index = next_++ % connections_.size();
  std::shared_ptr<Connection>& slot = connections_[index];
  if (!slot || slot->closed()) slot = Connection::Create(io_, config_);
  return slot;
}

void NodePool::CloseAll(const std::string& reason) {
  std::lock_guard lock(mutex_);
  for (auto& connection : connections_) {
    if (connection) connection->Close(reason);
  }
}

}  // namespace bulwark::redis::detail
