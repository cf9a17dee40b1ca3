// Redis client for Bulwark's shared key/value state: standalone, Sentinel and
// Cluster behind one interface. Connections run on the client's own Asio
// thread; many callers' commands are pipelined on a few connections per node.
// The calls below block the calling worker thread until the reply arrives:
// call them from a store/worker pool, never from an HTTP I/O thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/result.hpp"
#include "metrics/registry.hpp"
#include "resilience/circuit_breaker.hpp"

namespace boost::asio {
class io_context;
}

namespace bulwark::redis {

// One RESP2 reply.
struct Reply {
  enum class Type { kNil, kStatus, kString, kInteger, kArray, kError };
  Type type = Type::kNil;
  std::string str;  // kStatus, kString, kError (the whole error line, e.g. "WRONGTYPE ...")
  int64_t integer = 0;
  std::vector<Reply> elements;  // kArray

  bool IsNil() const { return type == Type::kNil; }
  bool IsError() const { return type == Type::kError; }
};

struct Endpoint {
  std::string host;
  uint16_t port = 6379;
};

// "host:port,host:port" -> endpoints; kInvalidArgument naming the bad item.
Result<std::vector<Endpoint>> ParseEndpoints(const std::string& list);

enum class Mode { kStandalone, kSentinel, kCluster };

struct ClientOptions {
  Mode mode = Mode::kStandalone;
  // Standalone: the server (the first that answers is used). Cluster: seed
  // nodes. Sentinel: the sentinels.
  std::vector<Endpoint> endpoints;
  std::string master_name;  // Sentinel mode
  std::string username;     // ACL user; empty means AUTH <password> only
  std::string password;     // secret: never logged
  bool tls = false;
  std::string tls_ca_file;      // empty: system default trust store
  bool tls_verify_peer = true;  // verify certificate and host name
  std::chrono::milliseconds connect_timeout{1000};
  std::chrono::milliseconds command_timeout{1000};
  int connections_per_node = 2;
  // Redirects/failover retries before kUnavailable (MOVED, ASK, TRYAGAIN,
  // CLUSTERDOWN, LOADING, READONLY, connection loss on a read-only call).
  int max_attempts = 5;
  // When nothing answers at Connect(), return a client anyway that keeps
  // looking for the topology in the background (calls fail with kUnavailable
  // until then) instead of failing: for callers that can serve without Redis.
  bool connect_lazily = false;
  resilience::BreakerOptions breaker;
  // optional: bulwark_dependency_*{dependency="redis"}; in Sentinel mode also
  // bulwark_redis_sentinel_subscriptions and bulwark_redis_switch_master_followed_total.
  metrics::Registry* metrics = nullptr;
  // How often the maintenance thread checks the topology: ROLE on the
  // primaries (a primary that is no longer one triggers a re-resolve), lost
  // subscriptions, and every 10th round Cluster's slot map. Sentinel's
  // +switch-master and Cluster's MOVED are followed at once, not at this pace.
  std::chrono::milliseconds maintenance_interval{1000};
};

struct WaitResult {
  std::vector<Reply> replies;
  // Replicas that acknowledged the writes (WAIT's answer); -1 when the node
  // has no replicas (WAIT was not sent).
  int replicas_acked = -1;
};

// What a client tracking a key prefix reports (Client::TrackKeyPrefix). Called
// from the client's threads, never with a client lock held; must not block.
class KeyChangeListener {
 public:
  virtual ~KeyChangeListener() = default;
  // Keys under the prefix that were written, deleted or expired on a primary;
  // nullptr: every key may have changed (FLUSHALL, FLUSHDB).
  virtual void OnKeysChanged(const std::vector<std::string>* keys) = 0;
  // live: every primary now reports its changes, so what is read from here on
  // may be kept until a change is reported. !live: changes may be missed from
  // now on (a subscription lost, a primary not yet subscribed, a failover):
  // forget everything kept and keep nothing until live again.
  virtual void OnTrackingChanged(bool live) = 0;
};

// Thread-safe.
class Client {
 public:
  virtual ~Client() = default;

  // Sends one command, e.g. {"SET", key, value, "PX", "1000"}, routed by its
  // first key in Cluster mode; follows redirects and failover. Error replies
  // come back as a Reply of type kError (the caller decides); kUnavailable
  // when no node answered within the timeouts or the breaker is open.
  virtual Result<Reply> Command(std::vector<std::string> args) = 0;

  // Sends commands back to back on one connection to one node and returns
  // their replies in order. In Cluster mode every key of every command must
  // hash to one slot (use hash tags); kInvalidArgument otherwise.
  virtual Result<std::vector<Reply>> Pipeline(std::vector<std::vector<std::string>> commands) = 0;

  // Pipeline, then `WAIT 1 <timeout>` on the same connection when the node
  // has at least one replica, so that OK means "on a replica too" (unless
  // replicas_acked reports 0 after the timeout).
  virtual Result<WaitResult> PipelineAndWait(std::vector<std::vector<std::string>> commands,
                                             std::chrono::milliseconds wait_timeout) = 0;

  // One read-only command, sent without blocking the caller: `done` runs
  // once on the client's I/O thread (it must not block) with the reply, or
  // with nullopt when this one attempt could not answer — a redirect,
  // failover, timeout, open breaker or lost connection — and the caller
  // should use Command() from a worker thread, which retries. For hot reads
  // (GET of a session) served from an HTTP I/O thread. On a thread bound by
  // BindThreadToIoContext the command goes on that thread's own connection
  // and `done` runs on that thread: no thread hop either way.
  using AsyncReply = std::function<void(std::optional<Reply>)>;
  virtual void TryCommandAsync(std::vector<std::string> args, AsyncReply done) = 0;

  // One write (a script, say), plus `WAIT 1 <wait_timeout>` on the same
  // connection when `wait` and the node has a replica, tried once without
  // blocking the caller, like TryCommandAsync (on a bound thread: its own
  // connection, `done` on that thread). `done` runs once with nullopt when
  // the write surely did not run here — not sent, an open or half-open
  // breaker, a redirect, a cross-slot command, or a reply the blocking path
  // handles (MOVED, ASK, TRYAGAIN, CLUSTERDOWN, LOADING, READONLY,
  // MASTERDOWN, NOSCRIPT) — or may have run but is idempotent: the caller
  // should use PipelineAndWait/Command from a worker thread. Otherwise with
  // the replies, or kUnavailable when it may have run and is not idempotent
  // (never re-sent, as Command would not). The default defers every write.
  using AsyncWaitReply = std::function<void(std::optional<Result<WaitResult>>)>;
  virtual void TryWriteAsync(std::vector<std::string> args, bool wait,
                             std::chrono::milliseconds wait_timeout, AsyncWaitReply done) {
    (void)args;
    (void)wait;
    (void)wait_timeout;
    done(std::nullopt);
  }

  // Server-assisted client-side caching (Redis 6+ CLIENT TRACKING in BCAST
  // mode): a subscriber connection per primary, following the topology,
  // reports every change to a key beginning with `prefix` to `listener`. One
  // prefix per client; a second call replaces the first. The listener is held
  // weakly: once it is gone, tracking stops. Redis that refuses CLIENT
  // TRACKING (older than 6, or an ACL) simply never reports live.
  virtual void TrackKeyPrefix(std::string prefix, std::weak_ptr<KeyChangeListener> listener) = 0;

  // PING on every primary; OK when all answer.
  virtual Status Ping() = 0;

  virtual resilience::BreakerState breaker_state() const = 0;
};

// Connects (discovering the primary or the cluster's slot map); kUnavailable
// when nothing answers, kInvalidArgument for bad options.
Result<std::unique_ptr<Client>> Connect(const ClientOptions& options);

// Declares that the calling thread alone runs `io` (an HTTP I/O thread):
// TryCommandAsync called on this thread then uses connections of its own on
// `io`, one per client and node, so the read is written, answered and handed
// back on this thread. nullptr unbinds and closes them; call it on the same
// thread once `io` no longer runs. Every client used so must outlive the
// binding.
void BindThreadToIoContext(boost::asio::io_context* io);

// CRC16 (XMODEM) slot of a key, honouring {hash tags}: 0..16383.
uint16_t KeySlot(std::string_view key);

}  // namespace bulwark::redis
