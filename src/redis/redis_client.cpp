// The Redis client: topology (standalone / Sentinel / Cluster), routing,
// redirects and retries on the caller's thread; connections and I/O on the
// client's own io_context thread (connection.cpp). docs/redis.md.
#include "redis/redis_client.hpp"

#include <algorithm>
#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <climits>
#include <condition_variable>
#include <future>
#include <map>
#include <optional>
#include <thread>
#include <utility>

#include "core/thread_name.hpp"
#include "redis/commands.hpp"
#include "redis/connection.hpp"
#include "redis/resp.hpp"
#include "redis/script.hpp"

namespace bulwark::redis {

namespace {

using detail::BatchResult;
using detail::Clock;
using detail::ConnectionConfig;
using detail::EndpointName;
using detail::NodePool;
using detail::Request;
using Commands = std::vector<std::vector<std::string>>;
using PoolPtr = std::shared_ptr<NodePool>;
namespace asio = boost::asio;

constexpr int kSlots = 16384;
constexpr int kSlotRefreshEvery = 10;  // maintenance rounds between periodic slot refreshes
// Where Redis publishes tracking invalidations for RESP2 clients.
constexpr std::string_view kInvalidationChannel = "__redis__:invalidate";
// Where a sentinel announces a completed failover.
constexpr std::string_view kSwitchMasterChannel = "+switch-master";

// Backoff before retry number `attempt` (1-based) after a failure that needs
// the topology to change (connection loss, CLUSTERDOWN, TRYAGAIN, LOADING,
// READONLY): 200, 400, 800, 1000, 1000 ms ... so that five attempts span a
// typical failover (2-3 s).
std::chrono::milliseconds Backoff(int attempt) {
  int64_t ms = 200LL << std::min(attempt - 1, 10);
  return std::chrono::milliseconds(std::min<int64_t>(ms, 1000));
}

std::optional<Endpoint> ParseRedirectTarget(const std::string& error) {
  // "MOVED 3999 127.0.0.1:6381" / "ASK 3999 127.0.0.1:6381"
  size_t last_space = error.rfind(' ');
  if (last_space == std::string::npos) return std::nullopt;
  std::string address = error.substr(last_space + 1);
  size_t colon = address.rfind(':');
  if (colon == std::string::npos || colon == 0) return std::nullopt;
  Endpoint ep;
  ep.host = address.substr(0, colon);
  if (ep.host.size() > 2 && ep.host.front() == '[' && ep.host.back() == ']') {
    ep.host = ep.host.substr(1, ep.host.size() - 2);
  }
  try {
    int port = std::stoi(address.substr(colon + 1));
    if (port <= 0 || port > 65535) return std::nullopt;
    ep.port = static_cast<uint16_t>(port);
  } catch (...) {
    return std::nullopt;
  }
  return ep;
}

int RedirectSlot(const std::string& error) {
  size_t first = error.find(' ');
  if (first == std::string::npos) return -1;
  try {
    int slot = std::stoi(error.substr(first + 1));
    return slot >= 0 && slot < kSlots ? slot : -1;
  } catch (...) {
    return -1;
  }
}

// Connected replicas from a ROLE reply; nullopt when the node is not a master.
std::optional<int> MasterReplicas(const Reply& role) {
  if (role.type != Reply::Type::kArray || role.elements.empty() ||
      role.elements[0].str != "master") {
    return std::nullopt;
  }
  if (role.elements.size() < 3 || role.elements[2].type != Reply::Type::kArray) return 0;
  return static_cast<int>(role.elements[2].elements.size());
}

// Connections of the calling thread's own io_context (BindThreadToIoContext),
// per client and node: a read sent from such a thread is written, answered
// and handed back on that thread, with no hop to the client's I/O thread.
struct ThreadBinding {
  asio::io_context* io = nullptr;
  std::map<std::pair<uint64_t, std::string>, std::shared_ptr<detail::Connection>> connections;

  void CloseAll() {
    for (auto& [key, connection] : connections) connection->CloseNow("I/O thread stopped");
    connections.clear();
  }
  ~ThreadBinding() { CloseAll(); }
};
thread_local ThreadBinding tls_binding;

std::atomic<uint64_t> next_client_id{1};

class ClientImpl final : public Client {
 public:
  explicit ClientImpl(const ClientOptions& options)
      : options_(options), work_(asio::make_work_guard(io_)), breaker_(options.breaker) {
    if (options_.metrics != nullptr) {
      metrics_ = std::make_unique<resilience::DependencyMetrics>(*options_.metrics, "redis");
      metrics_->SetBreakerState(breaker_.state());
      if (options_.mode == Mode::kSentinel) {
        sentinel_subscriptions_ = &options_.metrics->GetGauge(
            "bulwark_redis_sentinel_subscriptions",
            "Sentinels this replica is subscribed to for +switch-master announcements; 0 means a "
            "failover is only noticed by the once-a-second ROLE poll");
        switch_master_followed_ = &options_.metrics->GetCounter(
            "bulwark_redis_switch_master_followed_total",
            "Times the Redis primary was switched to the address a sentinel announced with "
            "+switch-master");
      }
    }
    if (options_.tls) {
      tls_ = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_client);
      tls_->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                        asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                        asio::ssl::context::no_tlsv1_1);
    }
    io_thread_ = std::thread([this] {
      NameThisThread("redis-io");
      io_.run();
    });
  }

  ~ClientImpl() override {
    {
      std::lock_guard lock(maintenance_mutex_);
      stopping_ = true;
    }
    maintenance_cv_.notify_all();
    if (maintenance_thread_.joinable()) maintenance_thread_.join();
    {
      std::lock_guard lock(tracking_mutex_);
      tracking_listener_.reset();
      for (const auto& tracker : trackers_) tracker->connection->Close("Redis client shut down");
      trackers_.clear();
    }
    {
      std::lock_guard lock(watch_mutex_);
      for (const auto& watch : watches_) {
        if (watch) watch->connection->Close("Redis client shut down");
      }
      watches_.clear();
    }
    {
      std::lock_guard lock(pools_mutex_);
      for (auto& [name, pool] : pools_) pool->CloseAll("Redis client shut down");
      for (auto& [name, pool] : sentinel_pools_) pool->CloseAll("Redis client shut down");
    }
    // Every connection fails its waiters and closes; run() returns when the
    // last handler has finished.
    work_.reset();
    if (io_thread_.joinable()) io_thread_.join();
  }

  Status Init() {
    if (tls_) {
      boost::system::error_code ec;
      if (options_.tls_ca_file.empty()) {
        tls_->set_default_verify_paths(ec);
      } else {
        tls_->load_verify_file(options_.tls_ca_file, ec);
      }
      if (ec) {
        return Error::InvalidArgument("cannot load Redis TLS CA file \"" + options_.tls_ca_file +
                                      "\": " + ec.message());
      }
    }
    Status status = DoRefresh();
    ++topology_generation_;
    if (!status && !options_.connect_lazily) return status;
    if (status && options_.mode == Mode::kCluster) UpdateReplicaCounts();
    SyncSentinelWatches(/*ping=*/false);
    maintenance_thread_ = std::thread([this] {
      NameThisThread("redis-upkeep");
      MaintenanceLoop();
    });
    if (!status) RequestRefresh();
    return Status::Ok();
  }

  Result<Reply> Command(std::vector<std::string> args) override {
    if (args.empty()) return Error::InvalidArgument("empty Redis command");
    Commands commands;
    commands.push_back(std::move(args));
    auto result = Guarded(std::move(commands), false, {});
    if (!result) return result.error();
    return std::move(result->replies[0]);
  }

  Result<std::vector<Reply>> Pipeline(Commands commands) override {
    if (commands.empty()) return std::vector<Reply>{};
    auto result = Guarded(std::move(commands), false, {});
    if (!result) return result.error();
    return std::move(result->replies);
  }

  Result<WaitResult> PipelineAndWait(Commands commands,
                                     std::chrono::milliseconds wait_timeout) override {
    if (commands.empty()) return WaitResult{};
    return Guarded(std::move(commands), true, wait_timeout);
  }

  void TryCommandAsync(std::vector<std::string> args, AsyncReply done) override {
    if (!IsReadOnly(args)) return done(std::nullopt);
    PoolPtr pool = OneAttemptPool(args);
    if (!pool) return done(std::nullopt);
    std::shared_ptr<detail::Connection> connection = OneAttemptConnection(pool);
    auto request = std::make_shared<Request>();
    AppendCommand(request->encoded, args);
    request->expected = 1;
    request->timeout = options_.command_timeout;
    const Clock::time_point start = Clock::now();
    request->done = [this, start, done = std::move(done)](BatchResult r) {
      // Anything but a plain answer (errors, redirects, lost connections) goes
      // to the blocking path, which classifies, retries and records it.
      if (!r.ok || r.replies.empty() || r.replies[0].IsError()) return done(std::nullopt);
      breaker_.RecordSuccess();
      if (metrics_) metrics_->ObserveOk(Clock::now() - start);
      done(std::move(r.replies[0]));
    };
    connection->Submit(std::move(request));
  }

  void TryWriteAsync(std::vector<std::string> args, bool wait,
                     std::chrono::milliseconds wait_timeout, AsyncWaitReply done) override {
    if (args.empty()) {
      return done(Result<WaitResult>(Error::InvalidArgument("empty Redis command")));
    }
    PoolPtr pool = OneAttemptPool(args);
    if (!pool) return done(std::nullopt);
    std::shared_ptr<detail::Connection> connection = OneAttemptConnection(pool);
    auto request = std::make_shared<Request>();
    AppendCommand(request->encoded, args);
    request->expected = 1;
    request->timeout = options_.command_timeout;
    const bool send_wait = wait && pool->replicas.load() > 0;
    if (send_wait) {
      AppendCommand(request->encoded, {"WAIT", "1", std::to_string(wait_timeout.count())});
      request->expected = 2;
      request->timeout += wait_timeout;
    }
    const bool idempotent = IsIdempotent(args);
    const Clock::time_point start = Clock::now();
    request->done = [this, start, send_wait, idempotent, name = pool->name(),
                     done = std::move(done)](BatchResult r) {
      if (!r.ok) {
        if (!r.maybe_sent || idempotent) return done(std::nullopt);
        Record(false, start);
        return done(Result<WaitResult>(Error::Unavailable(
            "Redis " + name + ": " + r.error + " (not retried: the command may have run)")));
      }
      if (r.replies.size() != (send_wait ? 2U : 1U)) return done(std::nullopt);
      // Refused unrun, or an unknown script (the blocking path sends EVAL).
      if (RefusedWithoutRunning(ErrorKind(r.replies[0])) || IsNoScript(r.replies[0])) {
        return done(std::nullopt);
      }
      Record(true, start);
      WaitResult out;
      if (send_wait) {
        const Reply& w = r.replies[1];
        out.replicas_acked = w.type == Reply::Type::kInteger ? static_cast<int>(w.integer) : 0;
      }
      r.replies.resize(1);
      out.replies = std::move(r.replies);
      done(Result<WaitResult>(std::move(out)));
    };
    connection->Submit(std::move(request));
  }

  void TrackKeyPrefix(std::string prefix, std::weak_ptr<KeyChangeListener> listener) override {
    {
      std::lock_guard lock(tracking_mutex_);
      for (const auto& tracker : trackers_) tracker->connection->Close("tracking replaced");
      trackers_.clear();
      if (auto previous = tracking_listener_.lock(); previous && tracking_live_) {
        previous->OnTrackingChanged(false);
      }
      tracking_live_ = false;
      tracked_prefix_ = std::move(prefix);
      tracking_listener_ = std::move(listener);
      if (auto current = tracking_listener_.lock()) current->OnTrackingChanged(false);
    }
    SyncTrackers(/*ping=*/false);
  }

  Status Ping() override {
    if (!breaker_.Allow()) return Rejected();
    Clock::time_point start = Clock::now();
    std::vector<PoolPtr> primaries = Primaries();
    Status status = Status::Ok();
    if (primaries.empty()) status = Error::Unavailable("no known Redis primary");
    for (const PoolPtr& pool : primaries) {
      BatchResult r = Exec(pool, {{"PING"}}, options_.command_timeout);
      if (!r.ok) {
        status = Error::Unavailable("Redis " + pool->name() + ": " + r.error);
        break;
      }
      if (r.replies[0].IsError()) {
        status = Error::Unavailable("Redis " + pool->name() + ": " + r.replies[0].str);
        break;
      }
    }
    Record(status.ok() || status.error().code() != ErrorCode::kUnavailable, start);
    if (!status) RequestRefresh();
    return status;
  }

  resilience::BreakerState breaker_state() const override { return breaker_.state(); }

 private:
  // ---- breaker and metrics -------------------------------------------------

  // This thread's own connection to the pool's node, when the thread is bound
  // to an io_context; replaced when closed, like NodePool::Pick.
  std::shared_ptr<detail::Connection> ThreadConnection(const NodePool& pool) {
    if (tls_binding.io == nullptr) return nullptr;
    std::shared_ptr<detail::Connection>& slot =
        tls_binding.connections[{id_, EndpointName(pool.endpoint())}];
    if (!slot || slot->closed()) slot = detail::Connection::Create(*tls_binding.io, pool.config());
    return slot;
  }

  // Where a one-attempt call (TryCommandAsync, TryWriteAsync) goes; nullptr
  // leaves it to the blocking path: keys in two slots (which Command
  // explains), a breaker that is not closed (a half-open probe is left to the
  // blocking path, which records its outcome), or no node for the slot.
  PoolPtr OneAttemptPool(const std::vector<std::string>& args) {
    int slot = -1;
    if (options_.mode == Mode::kCluster) {
      for (std::string_view key : CommandKeys(args)) {
        int s = KeySlot(key);
        if (slot >= 0 && s != slot) return nullptr;
        slot = s;
      }
    }
    if (breaker_.state() != resilience::BreakerState::kClosed) return nullptr;
    return Route(slot);
  }

  // A bound thread's own connection, else one of the pool's.
  std::shared_ptr<detail::Connection> OneAttemptConnection(const PoolPtr& pool) {
    std::shared_ptr<detail::Connection> connection = ThreadConnection(*pool);
    return connection ? connection : pool->Pick();
  }

  Error Rejected() {
    if (metrics_) metrics_->ObserveRejected();
    return Error::Unavailable("Redis circuit breaker is open");
  }

  void Record(bool ok, Clock::time_point start) {
    if (ok) {
      breaker_.RecordSuccess();
    } else {
      breaker_.RecordFailure();
    }
    if (metrics_) {
      if (ok) {
        metrics_->ObserveOk(Clock::now() - start);
      } else {
        metrics_->ObserveError(Clock::now() - start);
      }
      metrics_->SetBreakerState(breaker_.state());
    }
  }

  Result<WaitResult> Guarded(Commands commands, bool wait, std::chrono::milliseconds wait_timeout) {
    int slot = -1;
    if (options_.mode == Mode::kCluster) {
      for (const auto& command : commands) {
        if (command.empty()) return Error::InvalidArgument("empty Redis command");
        for (std::string_view key : CommandKeys(command)) {
          int s = KeySlot(key);
          if (slot >= 0 && s != slot) {
            return Error::InvalidArgument(
                "Redis Cluster: the keys of one call must hash to one slot (use {hash tags})");
          }
          slot = s;
        }
      }
    } else {
      for (const auto& command : commands) {
        if (command.empty()) return Error::InvalidArgument("empty Redis command");
      }
    }
    if (!breaker_.Allow()) return Rejected();
    Clock::time_point start = Clock::now();
    Result<WaitResult> result = Run(std::move(commands), slot, wait, wait_timeout);
    Record(result.ok() || result.error().code() != ErrorCode::kUnavailable, start);
    return result;
  }

  // ---- execution -----------------------------------------------------------

  // Sends a batch on one connection of `pool` and waits for its replies.
  BatchResult Exec(const PoolPtr& pool, const Commands& commands,
                   std::chrono::milliseconds timeout) {
    auto request = std::make_shared<Request>();
    for (const auto& command : commands) AppendCommand(request->encoded, command);
    request->expected = commands.size();
    request->timeout = timeout;
    auto promise = std::make_shared<std::promise<BatchResult>>();
    std::future<BatchResult> future = promise->get_future();
    request->done = [promise](BatchResult result) { promise->set_value(std::move(result)); };
    pool->Pick()->Submit(std::move(request));
    // The I/O thread enforces the timeouts; this bound only guards against a bug.
    auto bound = options_.connect_timeout + timeout + std::chrono::seconds(2);
    if (future.wait_for(bound) != std::future_status::ready) {
      BatchResult lost;
      lost.maybe_sent = true;
      lost.error = "no answer from the Redis I/O thread";
      return lost;
    }
    return future.get();
  }

  struct Item {
    const std::vector<std::string>* command;
    Reply reply;
    bool done = false;
  };

  // Routing, redirects and retries (docs/redis.md, "Retries"): a command is
  // re-sent when it surely did not run (never sent; MOVED, ASK, TRYAGAIN,
  // CLUSTERDOWN, LOADING, READONLY, MASTERDOWN replies), or when it may have
  // run but is idempotent (IsIdempotent) — never otherwise.
  Result<WaitResult> Run(Commands commands, int slot, bool wait,
                         std::chrono::milliseconds wait_timeout) {
    std::vector<Item> items;
    items.reserve(commands.size());
    for (const auto& command : commands) items.push_back(Item{&command, {}, false});
    std::optional<Endpoint> ask_target;
    bool backoff = false;
    int backoffs = 0;
    int acked = INT_MAX;
    bool wait_sent = false;
    std::string last_error = "no attempt made";
    for (int attempt = 0; attempt < std::max(1, options_.max_attempts); ++attempt) {
      if (backoff) {
        std::this_thread::sleep_for(Backoff(++backoffs));
        backoff = false;
      }
      uint64_t generation = topology_generation_.load();
      PoolPtr pool = ask_target ? DataPool(*ask_target) : Route(slot);
      bool asking = ask_target.has_value();
      ask_target.reset();
      if (!pool) {
        last_error = slot >= 0 ? "no Redis node serves slot " + std::to_string(slot)
                               : "no known Redis primary";
        Refresh(generation);
        backoff = true;
        continue;
      }
      Commands batch;
      std::vector<size_t> todo;
      bool all_idempotent = true;
      for (size_t i = 0; i < items.size(); ++i) {
        if (items[i].done) continue;
        todo.push_back(i);
        if (asking) batch.push_back({"ASKING"});
        batch.push_back(*items[i].command);
        all_idempotent = all_idempotent && IsIdempotent(*items[i].command);
      }
      int replicas = pool->replicas.load();
      bool send_wait = wait && replicas > 0;
      std::chrono::milliseconds timeout = options_.command_timeout;
      if (send_wait) {
        batch.push_back({"WAIT", "1", std::to_string(wait_timeout.count())});
        timeout += wait_timeout;
      }
      BatchResult r = Exec(pool, batch, timeout);
      if (!r.ok) {
        last_error = r.error;
        if (r.maybe_sent && !all_idempotent) {
          return Error::Unavailable("Redis " + pool->name() + ": " + r.error +
                                    " (not retried: the command may have run)");
        }
        Refresh(generation);
        backoff = true;
        continue;
      }
      size_t index = 0;
      std::string redirect_error;
      bool refresh = false;
      for (size_t i : todo) {
        if (asking) ++index;  // ASKING's +OK
        Reply& reply = r.replies[index++];
        std::string_view kind = ErrorKind(reply);
        if (!RefusedWithoutRunning(kind)) {
          items[i].reply = std::move(reply);
          items[i].done = true;
          continue;
        }
        if (kind == "MOVED") {
          int moved_slot = RedirectSlot(reply.str);
          std::optional<Endpoint> target = ParseRedirectTarget(reply.str);
          if (moved_slot >= 0 && target) {
            SetSlotOwner(moved_slot, *target);
            SyncTrackers(/*ping=*/false);
          }
          RequestRefresh();
        } else if (kind == "ASK") {
          ask_target = ParseRedirectTarget(reply.str);
        } else if (kind == "TRYAGAIN" || kind == "LOADING" || kind == "MASTERDOWN") {
          backoff = true;
        } else {  // CLUSTERDOWN, READONLY
          backoff = true;
          refresh = true;
        }
        if (redirect_error.empty()) redirect_error = reply.str;
      }
      if (send_wait) {
        const Reply& w = r.replies[index];
        acked =
            std::min<int>(acked, w.type == Reply::Type::kInteger ? static_cast<int>(w.integer) : 0);
        wait_sent = true;
      }
      if (refresh) Refresh(generation);
      if (redirect_error.empty()) {
        WaitResult out;
        out.replies.reserve(items.size());
        for (Item& item : items) out.replies.push_back(std::move(item.reply));
        out.replicas_acked = wait_sent ? acked : -1;
        return out;
      }
      last_error = redirect_error;
    }
    return Error::Unavailable("Redis: gave up after " + std::to_string(options_.max_attempts) +
                              " attempts: " + last_error);
  }

  // ---- pools and routing ---------------------------------------------------

  ConnectionConfig BaseConfig(const Endpoint& ep) const {
    ConnectionConfig config;
    config.endpoint = ep;
    config.username = options_.username;
    config.password = options_.password;
    config.tls = tls_.get();
    config.tls_verify_peer = options_.tls_verify_peer;
    config.connect_timeout = options_.connect_timeout;
    return config;
  }

  PoolPtr DataPool(const Endpoint& ep) {
    std::string name = EndpointName(ep);
    std::lock_guard lock(pools_mutex_);
    PoolPtr& pool = pools_[name];
    if (!pool)
      pool = std::make_shared<NodePool>(io_, BaseConfig(ep), options_.connections_per_node);
    return pool;
  }

  // Sentinels get no AUTH (a sentinel's password is not the data password).
  PoolPtr SentinelPool(const Endpoint& ep) {
    std::string name = EndpointName(ep);
    std::lock_guard lock(pools_mutex_);
    PoolPtr& pool = sentinel_pools_[name];
    if (!pool) {
      ConnectionConfig config = BaseConfig(ep);
      config.username.clear();
      config.password.clear();
      pool = std::make_shared<NodePool>(io_, config, 1);
    }
    return pool;
  }

  PoolPtr Route(int slot) {
    std::lock_guard lock(topology_mutex_);
    if (options_.mode != Mode::kCluster) return primary_;
    if (slot >= 0) return slots_[static_cast<size_t>(slot)];
    return primaries_.empty() ? nullptr : primaries_[round_robin_++ % primaries_.size()];
  }

  std::vector<PoolPtr> Primaries() {
    std::lock_guard lock(topology_mutex_);
    if (options_.mode != Mode::kCluster) {
      return primary_ ? std::vector<PoolPtr>{primary_} : std::vector<PoolPtr>{};
    }
    return primaries_;
  }

  void SetSlotOwner(int slot, const Endpoint& ep) {
    PoolPtr pool = DataPool(ep);
    std::lock_guard lock(topology_mutex_);
    slots_[static_cast<size_t>(slot)] = pool;
    if (std::find(primaries_.begin(), primaries_.end(), pool) == primaries_.end()) {
      primaries_.push_back(pool);
    }
  }

  // ---- key tracking (TrackKeyPrefix) -----------------------------------------
  //
  // One subscriber connection per primary: CLIENT ID, then CLIENT TRACKING ON
  // REDIRECT <its own id> BCAST PREFIX <prefix>, then SUBSCRIBE
  // __redis__:invalidate. In RESP2 the invalidations then arrive as Pub/Sub
  // messages on that same connection. Tracking is live while every current
  // primary has a subscribed tracker; a tracker that closes, a new primary or
  // a primary not yet subscribed makes it not live (the listener forgets).

  struct Tracker {
    PoolPtr pool;
    std::shared_ptr<detail::Connection> connection;
    bool subscribed = false;  // GUARDED_BY(tracking_mutex_)
    bool refused = false;     // the server refused tracking: not retried on this node
  };
  using TrackerPtr = std::shared_ptr<Tracker>;

  // Brings the trackers in line with the primaries; with ping, also checks the
  // subscribed ones (a PING that times out closes the connection).
  void SyncTrackers(bool ping) {
    const std::vector<PoolPtr> primaries = Primaries();
    std::vector<TrackerPtr> to_close;
    std::vector<TrackerPtr> to_ping;
    {
      std::lock_guard lock(tracking_mutex_);
      if (tracking_listener_.expired()) {
        to_close = std::move(trackers_);
        trackers_.clear();
      } else {
        for (auto it = trackers_.begin(); it != trackers_.end();) {
          const bool primary =
              std::find(primaries.begin(), primaries.end(), (*it)->pool) != primaries.end();
          const bool lost = !(*it)->refused && (*it)->connection->closed();
          if (!primary || lost) {
            to_close.push_back(*it);
            it = trackers_.erase(it);
          } else {
            if ((*it)->subscribed) to_ping.push_back(*it);
            ++it;
          }
        }
        for (const PoolPtr& pool : primaries) {
          const bool tracked = std::any_of(trackers_.begin(), trackers_.end(),
                                           [&](const TrackerPtr& t) { return t->pool == pool; });
          if (!tracked) trackers_.push_back(StartTracker(pool, tracked_prefix_));
        }
      }
    }
    for (const TrackerPtr& tracker : to_close) tracker->connection->Close("no longer tracked");
    if (ping) {
      // No answer within the command timeout closes the connection (OnTrackerClosed).
      for (const TrackerPtr& tracker : to_ping)
        SendOn(tracker->connection, {"PING"}, [](const Reply&) {});
    }
    UpdateTrackingLive();
  }

  // Called with tracking_mutex_ held; the connection starts on the I/O thread.
  TrackerPtr StartTracker(const PoolPtr& pool, const std::string& prefix) {
    auto tracker = std::make_shared<Tracker>();
    tracker->pool = pool;
    std::weak_ptr<Tracker> weak = tracker;
    detail::PushHandlers push;
    push.on_message = [this, weak](const Reply& message) { OnTrackerMessage(weak, message); };
    push.on_close = [this, weak](const std::string&) { OnTrackerClosed(weak); };
    tracker->connection = detail::Connection::Create(io_, pool->config(), std::move(push));
    auto connection = tracker->connection;
    SendOn(connection, {"CLIENT", "ID"}, [this, weak, connection, prefix](const Reply& id) {
      if (id.type != Reply::Type::kInteger) return TrackerRefused(weak);
      SendOn(connection,
             {"CLIENT", "TRACKING", "ON", "REDIRECT", std::to_string(id.integer), "BCAST", "PREFIX",
              prefix},
             [this, weak, connection](const Reply& tracking) {
               if (tracking.IsError()) return TrackerRefused(weak);
               SendOn(connection, {"SUBSCRIBE", std::string(kInvalidationChannel)},
                      [this, weak](const Reply& subscribed) {
                        if (subscribed.type != Reply::Type::kArray) return TrackerRefused(weak);
                        if (TrackerPtr t = weak.lock()) {
                          {
                            std::lock_guard lock(tracking_mutex_);
                            t->subscribed = true;
                          }
                          UpdateTrackingLive();
                        }
                      });
             });
    });
    return tracker;
  }

  // One command on `connection`; `then` runs on the I/O thread with its reply,
  // not at all when the connection failed (OnTrackerClosed reports that).
  void SendOn(const std::shared_ptr<detail::Connection>& connection, std::vector<std::string> args,
              std::function<void(const Reply&)> then) {
    auto request = std::make_shared<Request>();
    AppendCommand(request->encoded, args);
    request->expected = 1;
    request->timeout = options_.command_timeout;
    request->done = [then = std::move(then)](BatchResult r) {
      if (r.ok && !r.replies.empty()) then(r.replies[0]);
    };
    connection->Submit(std::move(request));
  }

  void TrackerRefused(const std::weak_ptr<Tracker>& weak) {
    TrackerPtr tracker = weak.lock();
    if (!tracker) return;
    {
      std::lock_guard lock(tracking_mutex_);
      tracker->refused = true;
      tracker->subscribed = false;
    }
    tracker->connection->Close("Redis refused CLIENT TRACKING");
    UpdateTrackingLive();
  }

  void OnTrackerClosed(const std::weak_ptr<Tracker>& weak) {
    TrackerPtr tracker = weak.lock();
    if (!tracker) return;
    bool current = false;
    bool was_subscribed = false;
    {
      std::lock_guard lock(tracking_mutex_);
      was_subscribed = tracker->subscribed;
      tracker->subscribed = false;
      current = std::find(trackers_.begin(), trackers_.end(), tracker) != trackers_.end();
    }
    UpdateTrackingLive();
    // Replaced at the next maintenance round, which the loss of a working
    // subscription brings forward (the node may have failed over). One that
    // never got going waits for the regular round: no reconnect loop while
    // Redis is down.
    if (current && was_subscribed && !tracker->refused) RequestRefresh();
  }

  void OnTrackerMessage(const std::weak_ptr<Tracker>& weak, const Reply& message) {
    if (message.elements[1].str != kInvalidationChannel) return;
    TrackerPtr tracker = weak.lock();
    if (!tracker) return;
    std::lock_guard lock(tracking_mutex_);
    std::shared_ptr<KeyChangeListener> listener = tracking_listener_.lock();
    if (!listener || !tracker->subscribed) return;
    const Reply& payload = message.elements[2];
    if (payload.type != Reply::Type::kArray) return listener->OnKeysChanged(nullptr);
    std::vector<std::string> keys;
    keys.reserve(payload.elements.size());
    for (const Reply& key : payload.elements) keys.push_back(key.str);
    listener->OnKeysChanged(&keys);
  }

  void UpdateTrackingLive() {
    const std::vector<PoolPtr> primaries = Primaries();
    std::lock_guard lock(tracking_mutex_);
    std::shared_ptr<KeyChangeListener> listener = tracking_listener_.lock();
    bool live = listener != nullptr && !primaries.empty();
    for (const PoolPtr& pool : primaries) {
      if (!live) break;
      live = std::any_of(trackers_.begin(), trackers_.end(), [&](const TrackerPtr& t) {
        return t->pool == pool && t->subscribed && !t->connection->closed();
      });
    }
    if (live == tracking_live_) return;
    tracking_live_ = live;
    if (listener) listener->OnTrackingChanged(live);
  }

  // ---- topology ------------------------------------------------------------

  // Single flight: callers that saw the same generation share one refresh.
  void Refresh(uint64_t seen_generation) {
    {
      std::lock_guard lock(refresh_mutex_);
      if (topology_generation_.load() != seen_generation) return;
      (void)DoRefresh();
      ++topology_generation_;
    }
    // A new primary is not tracked yet: tracking stops being live at once.
    SyncTrackers(/*ping=*/false);
  }

  void RequestRefresh() {
    {
      std::lock_guard lock(maintenance_mutex_);
      refresh_requested_ = true;
    }
    maintenance_cv_.notify_all();
  }

  Status DoRefresh() {
    switch (options_.mode) {
      case Mode::kStandalone:
        return SelectStandalone();
      case Mode::kSentinel:
        return ResolveSentinelPrimary();
      case Mode::kCluster:
        return RefreshClusterSlots();
    }
    return Status::Ok();
  }

  // The first endpoint that answers ROLE as a master (or, failing that, the
  // first that answers at all).
  Status SelectStandalone() {
    std::string errors;
    if (options_.endpoints.size() == 1) {
      std::lock_guard lock(topology_mutex_);
      if (primary_) return Status::Ok();  // nothing to choose
    }
    for (const Endpoint& ep : options_.endpoints) {
      PoolPtr pool = DataPool(ep);
      BatchResult r = Exec(pool, {{"ROLE"}}, options_.command_timeout);
      if (!r.ok || r.replies[0].IsError()) {
        errors += (errors.empty() ? "" : "; ") + EndpointName(ep) + ": " +
                  (r.ok ? r.replies[0].str : r.error);
        continue;
      }
      pool->replicas = MasterReplicas(r.replies[0]).value_or(0);
      std::lock_guard lock(topology_mutex_);
      primary_ = pool;
      return Status::Ok();
    }
    return Error::Unavailable("no Redis server answered: " + errors);
  }

  // The address a sentinel announced last is tried first: it is the new
  // primary at once, while a sentinel asked in turn may not have heard of the
  // failover yet.
  Status ResolveSentinelPrimary() {
    std::string errors;
    auto note = [&](const std::string& what) { errors += (errors.empty() ? "" : "; ") + what; };
    std::optional<Endpoint> announced;
    {
      std::lock_guard lock(watch_mutex_);
      announced = std::exchange(announced_primary_, std::nullopt);
    }
    if (announced) {
      if (std::optional<bool> switched = AdoptPrimary(*announced, note)) {
        if (*switched && switch_master_followed_ != nullptr) switch_master_followed_->Inc();
        return Status::Ok();
      }
    }
    for (const Endpoint& sentinel : options_.endpoints) {
      BatchResult r = Exec(SentinelPool(sentinel),
                           {{"SENTINEL", "get-master-addr-by-name", options_.master_name}},
                           options_.command_timeout);
      if (!r.ok) {
        note("sentinel " + EndpointName(sentinel) + ": " + r.error);
        continue;
      }
      const Reply& addr = r.replies[0];
      if (addr.type != Reply::Type::kArray || addr.elements.size() != 2) {
        note("sentinel " + EndpointName(sentinel) + " does not know master \"" +
             options_.master_name + "\"");
        continue;
      }
      Endpoint ep;
      ep.host = addr.elements[0].str;
      try {
        ep.port = static_cast<uint16_t>(std::stoi(addr.elements[1].str));
      } catch (...) {
        note("sentinel " + EndpointName(sentinel) + ": bad port");
        continue;
      }
      if (AdoptPrimary(ep, note)) return Status::Ok();
    }
    return Error::Unavailable("no Redis primary for \"" + options_.master_name +
                              "\" via the sentinels: " + errors);
  }

  // Makes `ep` the primary when it answers ROLE as a master, and closes the
  // one it replaces: whether the primary changed; nullopt (and a note why)
  // when `ep` is not a master.
  template <typename Note>
  std::optional<bool> AdoptPrimary(const Endpoint& ep, Note& note) {
    PoolPtr pool = DataPool(ep);
    BatchResult role = Exec(pool, {{"ROLE"}}, options_.command_timeout);
    if (!role.ok || role.replies[0].IsError()) {
      note("primary " + EndpointName(ep) + ": " + (role.ok ? role.replies[0].str : role.error));
      return std::nullopt;
    }
    std::optional<int> replicas = MasterReplicas(role.replies[0]);
    if (!replicas) {
      note(EndpointName(ep) + " is not a master yet");
      return std::nullopt;
    }
    pool->replicas = *replicas;
    PoolPtr previous;
    {
      std::lock_guard lock(topology_mutex_);
      previous = std::exchange(primary_, pool);
    }
    if (previous && previous != pool) previous->CloseAll("no longer the Redis primary");
    return previous != pool;
  }

  // ---- Sentinel announcements ----------------------------------------------
  // A subscriber connection per sentinel on +switch-master: a failover is
  // followed as soon as any sentinel announces it, instead of when the
  // maintenance thread next finds the old primary gone (its ROLE poll). A
  // lost subscription is replaced at the next maintenance round.

  struct SentinelWatch {
    std::shared_ptr<detail::Connection> connection;
    bool subscribed = false;  // GUARDED_BY(watch_mutex_)
  };
  using WatchPtr = std::shared_ptr<SentinelWatch>;

  void SyncSentinelWatches(bool ping) {
    if (options_.mode != Mode::kSentinel) return;
    std::vector<WatchPtr> to_ping;
    {
      std::lock_guard lock(watch_mutex_);
      watches_.resize(options_.endpoints.size());
      for (std::size_t i = 0; i < watches_.size(); ++i) {
        WatchPtr& watch = watches_[i];
        if (!watch || watch->connection->closed()) {
          watch = StartWatch(options_.endpoints[i]);
        } else if (watch->subscribed) {
          to_ping.push_back(watch);
        }
      }
    }
    // No answer within the command timeout closes the connection.
    if (ping) {
      for (const WatchPtr& watch : to_ping)
        SendOn(watch->connection, {"PING"}, [](const Reply&) {});
    }
    CountSubscriptions();
  }

  // Called with watch_mutex_ held; the connection starts on the I/O thread.
  WatchPtr StartWatch(const Endpoint& sentinel) {
    auto watch = std::make_shared<SentinelWatch>();
    std::weak_ptr<SentinelWatch> weak = watch;
    detail::PushHandlers push;
    push.on_message = [this](const Reply& message) { OnSentinelMessage(message); };
    push.on_close = [this](const std::string&) { CountSubscriptions(); };
    watch->connection =
        detail::Connection::Create(io_, SentinelPool(sentinel)->config(), std::move(push));
    SendOn(watch->connection, {"SUBSCRIBE", std::string(kSwitchMasterChannel)},
           [this, weak](const Reply& subscribed) {
             WatchPtr w = weak.lock();
             if (!w) return;
             if (subscribed.type != Reply::Type::kArray) {
               w->connection->Close("sentinel refused SUBSCRIBE +switch-master");
               return;
             }
             {
               std::lock_guard lock(watch_mutex_);
               w->subscribed = true;
             }
             CountSubscriptions();
           });
    return watch;
  }

  void OnSentinelMessage(const Reply& message) {
    if (message.elements[1].str != kSwitchMasterChannel) return;
    std::optional<Endpoint> primary =
        ParseSwitchMaster(message.elements[2].str, options_.master_name);
    if (!primary) return;
    {
      std::lock_guard lock(watch_mutex_);
      announced_primary_ = std::move(primary);
    }
    RequestRefresh();
  }

  void CountSubscriptions() {
    if (sentinel_subscriptions_ == nullptr) return;
    std::lock_guard lock(watch_mutex_);
    const auto live = std::count_if(watches_.begin(), watches_.end(), [](const WatchPtr& w) {
      return w && w->subscribed && !w->connection->closed();
    });
    sentinel_subscriptions_->Set(static_cast<double>(live));
  }

  Status RefreshClusterSlots() {
    // Ask known primaries first, then the seeds, then known replicas.
    std::vector<Endpoint> candidates;
    auto add = [&](const Endpoint& ep) {
      for (const Endpoint& c : candidates) {
        if (c.host == ep.host && c.port == ep.port) return;
      }
      candidates.push_back(ep);
    };
    {
      std::lock_guard lock(topology_mutex_);
      for (const PoolPtr& p : primaries_) add(p->endpoint());
    }
    for (const Endpoint& ep : options_.endpoints) add(ep);
    {
      std::lock_guard lock(topology_mutex_);
      for (const Endpoint& ep : replicas_) add(ep);
    }
    std::string errors;
    for (const Endpoint& ep : candidates) {
      BatchResult r = Exec(DataPool(ep), {{"CLUSTER", "SLOTS"}}, options_.command_timeout);
      if (!r.ok || r.replies[0].type != Reply::Type::kArray || r.replies[0].elements.empty()) {
        errors += (errors.empty() ? "" : "; ") + EndpointName(ep) + ": " +
                  (r.ok ? Describe(r.replies[0]) : r.error);
        continue;
      }
      std::vector<PoolPtr> slots(kSlots);
      std::vector<PoolPtr> primaries;
      std::vector<Endpoint> replicas;
      std::map<PoolPtr, int> listed_replicas;
      auto node_endpoint = [&](const Reply& node) -> std::optional<Endpoint> {
        if (node.type != Reply::Type::kArray || node.elements.size() < 2 ||
            node.elements[1].type != Reply::Type::kInteger) {
          return std::nullopt;
        }
        Endpoint out;
        out.host = node.elements[0].str.empty() || node.elements[0].str == "?"
                       ? ep.host
                       : node.elements[0].str;
        out.port = static_cast<uint16_t>(node.elements[1].integer);
        return out;
      };
      for (const Reply& range : r.replies[0].elements) {
        if (range.type != Reply::Type::kArray || range.elements.size() < 3) continue;
        int64_t from = range.elements[0].integer;
        int64_t to = range.elements[1].integer;
        std::optional<Endpoint> owner = node_endpoint(range.elements[2]);
        if (!owner || from < 0 || to >= kSlots || from > to) continue;
        PoolPtr pool = DataPool(*owner);
        for (int64_t s = from; s <= to; ++s) slots[static_cast<size_t>(s)] = pool;
        if (std::find(primaries.begin(), primaries.end(), pool) == primaries.end()) {
          primaries.push_back(pool);
        }
        listed_replicas[pool] = static_cast<int>(range.elements.size() - 3);
        for (size_t i = 3; i < range.elements.size(); ++i) {
          if (auto replica = node_endpoint(range.elements[i])) replicas.push_back(*replica);
        }
      }
      for (auto& [pool, count] : listed_replicas) {
        int expected = -1;
        pool->replicas.compare_exchange_strong(expected, count);
      }
      std::lock_guard lock(topology_mutex_);
      slots_ = std::move(slots);
      primaries_ = std::move(primaries);
      replicas_ = std::move(replicas);
      return Status::Ok();
    }
    return Error::Unavailable("no Redis Cluster node answered CLUSTER SLOTS: " + errors);
  }

  // ROLE on every primary: connected replicas (for WAIT); a primary that is
  // no longer a master (or does not answer) triggers a topology refresh.
  // Returns false when a refresh is needed.
  bool UpdateReplicaCounts() {
    bool healthy = true;
    for (const PoolPtr& pool : Primaries()) {
      BatchResult r = Exec(pool, {{"ROLE"}}, options_.command_timeout);
      if (!r.ok || r.replies[0].IsError()) {
        healthy = false;
        continue;
      }
      std::optional<int> replicas = MasterReplicas(r.replies[0]);
      if (!replicas) {
        pool->replicas = 0;
        healthy = false;
        continue;
      }
      pool->replicas = *replicas;
    }
    return healthy;
  }

  void MaintenanceLoop() {
    int rounds = 0;
    while (true) {
      bool requested = false;
      {
        std::unique_lock lock(maintenance_mutex_);
        maintenance_cv_.wait_for(lock, options_.maintenance_interval,
                                 [this] { return stopping_ || refresh_requested_; });
        if (stopping_) return;
        requested = refresh_requested_;
        refresh_requested_ = false;
      }
      ++rounds;
      bool healthy = UpdateReplicaCounts();
      bool periodic = options_.mode == Mode::kCluster && rounds % kSlotRefreshEvery == 0;
      // Standalone with one known server is a no-op here; without one (a
      // lazy start while Redis was down) this is what finds it.
      if (requested || !healthy || periodic) Refresh(topology_generation_.load());
      SyncTrackers(/*ping=*/true);
      SyncSentinelWatches(/*ping=*/true);
    }
  }

  const uint64_t id_ = next_client_id.fetch_add(1);  // this client's thread connections
  ClientOptions options_;
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  std::unique_ptr<asio::ssl::context> tls_;
  std::thread io_thread_;

  resilience::CircuitBreaker breaker_;
  std::unique_ptr<resilience::DependencyMetrics> metrics_;

  std::mutex pools_mutex_;
  std::map<std::string, PoolPtr> pools_;
  std::map<std::string, PoolPtr> sentinel_pools_;

  std::mutex topology_mutex_;
  PoolPtr primary_;                                            // standalone / sentinel
  std::vector<PoolPtr> slots_ = std::vector<PoolPtr>(kSlots);  // cluster: slot -> primary
  std::vector<PoolPtr> primaries_;                             // cluster
  std::vector<Endpoint> replicas_;                             // cluster
  size_t round_robin_ = 0;

  std::mutex refresh_mutex_;
  std::atomic<uint64_t> topology_generation_{0};

  // Lock order: tracking_mutex_ may be taken before topology_mutex_, never after.
  std::mutex tracking_mutex_;
  std::string tracked_prefix_;                          // GUARDED_BY(tracking_mutex_)
  std::weak_ptr<KeyChangeListener> tracking_listener_;  // GUARDED_BY(tracking_mutex_)
  std::vector<TrackerPtr> trackers_;                    // GUARDED_BY(tracking_mutex_)
  bool tracking_live_ = false;                          // last reported to the listener

  std::mutex watch_mutex_;
  std::vector<WatchPtr> watches_;              // GUARDED_BY(watch_mutex_): one per sentinel
  std::optional<Endpoint> announced_primary_;  // GUARDED_BY(watch_mutex_)
  metrics::Gauge* sentinel_subscriptions_ = nullptr;
  metrics::Counter* switch_master_followed_ = nullptr;

  std::mutex maintenance_mutex_;
  std::condition_variable maintenance_cv_;
  bool stopping_ = false;
  bool refresh_requested_ = false;
  std::thread maintenance_thread_;
};

}  // namespace

Result<std::unique_ptr<Client>> Connect(const ClientOptions& options) {
  if (options.endpoints.empty()) return Error::InvalidArgument("no Redis endpoints");
  if (options.mode == Mode::kSentinel && options.master_name.empty()) {
    return Error::InvalidArgument("Sentinel mode needs a master name (REDIS_MASTER_NAME)");
  }
  if (options.connections_per_node < 1 || options.connections_per_node > 64) {
    return Error::InvalidArgument("connections_per_node must be 1..64");
  }
  if (options.max_attempts < 1 || options.max_attempts > 100) {
    return Error::InvalidArgument("max_attempts must be 1..100");
  }
  if (options.connect_timeout.count() <= 0 || options.command_timeout.count() <= 0) {
    return Error::InvalidArgument("Redis timeouts must be positive");
  }
  if (!options.username.empty() && options.password.empty()) {
    return Error::InvalidArgument("a Redis username needs a password");
  }
  auto client = std::make_unique<ClientImpl>(options);
  Status status = client->Init();
  if (!status) return status.error();
  return std::unique_ptr<Client>(std::move(client));
}

void BindThreadToIoContext(boost::asio::io_context* io) {
  if (io == tls_binding.io) return;
  tls_binding.CloseAll();
  tls_binding.io = io;
}

}  // namespace bulwark::redis
