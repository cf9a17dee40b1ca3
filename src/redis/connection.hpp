// One pipelined connection to one Redis node, driven by the client's
// io_context thread, and a small pool of them per node. Internal to
// src/redis: this header includes Asio; redis_client.hpp does not.
#pragma once

#include <array>
#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "redis/redis_client.hpp"
#include "redis/resp.hpp"

namespace bulwark::redis::detail {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

// Outcome of one batch of commands sent on one connection.
struct BatchResult {
  bool ok = false;
  std::vector<Reply> replies;  // when ok: one per command, in order
  // When !ok: whether the bytes may have reached the server (then the
  // commands may have run).
  bool maybe_sent = false;
  std::string error;
};

struct Request {
  std::string encoded;  // RESP2 bytes of every command of the batch
  size_t expected = 0;  // number of replies
  std::chrono::milliseconds timeout{1000};
  // Filled in on the I/O thread.
  Clock::time_point deadline{};
  uint64_t seq = 0;
  std::vector<Reply> replies;
  std::function<void(BatchResult)> done;  // called once, on the I/O thread
};

struct ConnectionConfig {
  Endpoint endpoint;
  std::string username;
  std::string password;               // empty: no AUTH
  asio::ssl::context* tls = nullptr;  // null: plain TCP
  bool tls_verify_peer = true;
  std::chrono::milliseconds connect_timeout{1000};
};

// For a connection that also receives Pub/Sub messages it did not ask for
// (a subscriber): both run on the I/O thread.
struct PushHandlers {
  // A ["message", channel, payload] array, in the order the server sent it.
  std::function<void(const Reply&)> on_message;
  // Once, when the connection closes for whatever reason.
  std::function<void(const std::string& reason)> on_close;
};

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  static std::shared_ptr<Connection> Create(asio::io_context& io, const ConnectionConfig& config,
                                            PushHandlers push = {});
  ~Connection();

  // Any thread. The request's done() runs on the I/O thread.
  void Submit(std::shared_ptr<Request> request);
  // Any thread: fails every waiter and closes the socket.
  void Close(std::string reason);
  // The same at once, for the thread that runs the io_context while it is
  // not running (a stopped thread putting its connections away).
  void CloseNow(const std::string& reason) { Fail(reason); }
  bool closed() const { return closed_.load(std::memory_order_acquire); }

  // Not for direct use (use Create).
  Connection(asio::io_context& io, const ConnectionConfig& config);

 private:
  enum class State { kConnecting, kReady, kClosed };

  void Start();
  void Enqueue(std::shared_ptr<Request> request);
  void OnConnected();
  void BecomeReady();
  void StartWrite();
  void StartRead();
  void OnReply(Reply reply);
  void Fail(const std::string& reason);
  void ArmTimer();
  void OnTimer();

  asio::io_context& io_;
  ConnectionConfig config_;
  asio::ip::tcp::resolver resolver_;
  asio::ip::tcp::socket socket_;
  std::unique_ptr<asio::ssl::stream<asio::ip::tcp::socket&>> tls_;
  asio::steady_timer timer_;
  bool timer_armed_ = false;
  Clock::time_point timer_expiry_{};
  uint64_t timer_generation_ = 0;  // a wait of an older generation was superseded
  State state_ = State::kConnecting;
  std::atomic<bool> closed_{false};
  // Why Fail() closed it (I/O thread only): a request that arrives afterwards gets this, so a
  // caller whose command lost the race with a failed AUTH still sees "AUTH failed: WRONGPASS".
  std::string close_reason_;
  Clock::time_point connect_deadline_{};

  std::deque<std::shared_ptr<Request>> pending_;  // awaiting replies, FIFO
  uint64_t next_seq_ = 0;                         // seq of the next enqueued request
  uint64_t sent_seq_ = 0;  // requests with seq < sent_seq_ have been handed to the socket
  std::string write_buf_;  // queued bytes
  std::string out_buf_;    // bytes being written
  bool writing_ = false;
  ReplyParser parser_;
  std::array<char, 16384> read_buf_{};
  PushHandlers push_;
};

// `size` connections to one node, used round-robin; a closed one is replaced
// on next use.
class NodePool {
 public:
  NodePool(asio::io_context& io, ConnectionConfig config, int size);
  std::shared_ptr<Connection> Pick();
  void CloseAll(const std::string& reason);
  const Endpoint& endpoint() const { return config_.endpoint; }
  const ConnectionConfig& config() const { return config_; }
  std::string name() const;

  // Connected replicas of this node as last seen (ROLE); -1 unknown.
  std::atomic<int> replicas{-1};

 private:
  asio::io_context& io_;
  ConnectionConfig config_;
  std::mutex mutex_;
  std::vector<std::shared_ptr<Connection>> connections_;
  size_t next_ = 0;
};

std::string EndpointName(const Endpoint& endpoint);

}  // namespace bulwark::redis::detail
