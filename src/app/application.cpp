#include "app/application.hpp"

#include <signal.h>

#include <algorithm>
#include <boost/asio/thread_pool.hpp>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "api/api.hpp"
#include "app/request_observer.hpp"
#include "app/stores_factory.hpp"
#include "app/thread_priority.hpp"
#include "core/clock.hpp"
#include "core/thread_name.hpp"
#include "crypto/password_hasher.hpp"
#include "crypto/tokens.hpp"
#include "http/server.hpp"
#include "log/logger.hpp"
#include "metrics/registry.hpp"
#include "redis/redis_client.hpp"
#include "service/admin_service.hpp"
#include "service/auth_service.hpp"
#include "service/health_monitor.hpp"
#include "service/key_service.hpp"
#include "version.hpp"

namespace bulwark {
namespace {

using std::chrono::milliseconds;

// Hashing yields the CPU to request handling: nice 19 weighs 15 against nice
// 0's 1024, so a login flood uses only what verification leaves idle (measured:
// verify p99 under a flood 57 ms at nice 0-10, about 5 ms at 19; docs/benchmarks.md).
constexpr int kHashNiceness = 19;
using std::chrono::steady_clock;

double MillisSince(steady_clock::time_point t) {
  return std::chrono::duration<double, std::milli>(steady_clock::now() - t).count();
}

// Runs `tick` every `period` on its own thread (never an I/O thread) until
// destroyed. Each kind of upkeep gets its own, so a slow store cannot hold
// up the log flush or the health probe.
class PeriodicThread {
 public:
  PeriodicThread(std::string name, std::chrono::seconds period, std::function<void()> tick)
      : name_(std::move(name)),
        period_(period),
        tick_(std::move(tick)),
        thread_([this] { Loop(); }) {}

  ~PeriodicThread() {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  PeriodicThread(const PeriodicThread&) = delete;
  PeriodicThread& operator=(const PeriodicThread&) = delete;

 private:
  void Loop() {
    NameThisThread(name_);
    std::unique_lock lock(mutex_);
    while (!cv_.wait_for(lock, period_, [this] { return stop_; })) {
      lock.unlock();
      tick_();
      lock.lock();
    }
  }

  std::string name_;
  std::chrono::seconds period_;
  std::function<void()> tick_;
  std::mutex mutex_;
  std::condition_variable cv_;
  bool stop_ = false;   // GUARDED_BY(mutex_)
  std::thread thread_;  // last: starts once the rest is initialised
};

// Calls `fn` when at least `interval` seconds have passed since the last call
// (or since construction); for work slower than its thread's tick.
class Every {
 public:
  Every(const Clock& clock, int64_t interval_seconds)
      : clock_(clock), interval_(interval_seconds), next_(clock.NowUnix() + interval_seconds) {}
  template <typename Fn>
  void operator()(Fn&& fn) {
    if (clock_.NowUnix() < next_) return;
    next_ = clock_.NowUnix() + interval_;
    fn();
  }

 private:
  const Clock& clock_;
  int64_t interval_;
  int64_t next_;
};

sigset_t ShutdownSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  return set;
}

// Waits up to `timeout` for a shutdown signal; true when one arrived.
bool WaitForSignal(const sigset_t& set, std::optional<milliseconds> timeout) {
  while (true) {
    int rc;
    if (timeout) {
      auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(*timeout).count();
      timespec ts{static_cast<time_t>(ns / 1'000'000'000), static_cast<long>(ns % 1'000'000'000)};
      auto begin = steady_clock::now();
      rc = sigtimedwait(&set, nullptr, &ts);
      if (rc < 0 && errno == EINTR) {
        *timeout -= std::chrono::duration_cast<milliseconds>(steady_clock::now() - begin);
        if (timeout->count() <= 0) return false;
        continue;
      }
    } else {
      rc = sigwaitinfo(&set, nullptr);
      if (rc < 0 && errno == EINTR) continue;
    }
    return rc > 0;
  }
}

}  // namespace

// bulwark_signing_key_created_timestamp_seconds{state}: when the newest key
// in each state was created, 0 when there is none (the signing-key age alert
// of deploy/kubernetes reads the active one).
void ExportKeyAges(metrics::Registry& metrics, const KeyRing& ring) {
  for (KeyState state : {KeyState::kActive, KeyState::kNext}) {
    int64_t newest = 0;
    for (const SigningKeyRecord& record : ring.records) {
      if (record.state == state) newest = std::max(newest, record.created_at);
    }
    metrics
        .GetGauge("bulwark_signing_key_created_timestamp_seconds",
                  "Creation time of the newest signing key in each state (Unix seconds).",
                  {{"state", KeyStateName(state)}})
        .Set(static_cast<double>(newest));
  }
}

KeyServiceOptions KeyOptionsFrom(const ServeConfig& config) {
  KeyServiceOptions o;
  o.algorithm = jwt::ParseAlgorithm(config.signing_algorithm).value_or(jwt::Algorithm::kES256);
  o.jwks_max_age_seconds = config.jwks_max_age_seconds;
  o.access_token_ttl_seconds = config.access_token_ttl_seconds;
  o.refresh_interval_seconds = config.key_refresh_interval_seconds;
  o.rotation_interval_seconds = config.key_rotation_days * 86400;
  return o;
}

Result<std::shared_ptr<const KeySealer>> KeySealerFrom(const ServeConfig& config) {
  if (config.master_key.empty()) return std::shared_ptr<const KeySealer>();
  auto key = MasterKey::Parse(config.master_key);
  if (!key.ok()) {
    return Error::InvalidArgument("BULWARK_MASTER_KEY: " + key.error().message());
  }
  return MasterKeySealer(*key);
}

Application::Application(ServeConfig config) : config_(std::move(config)) {}

int Application::Run() {
  const auto start = steady_clock::now();
  // Every thread created from here on inherits the mask; this thread takes
  // the signals with sigwait, so no async-signal-safety puzzles.
  sigset_t signals = ShutdownSignals();
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  InitCrypto();
  SystemClock clock;
  metrics::Registry metrics;
  metrics.GetGauge("bulwark_build_info", "Build information.", {{"version", kVersion}}).Set(1);
  auto& ready_gauge = metrics.GetGauge("bulwark_ready", "1 while this replica accepts traffic.");
  auto& draining_gauge =
      metrics.GetGauge("bulwark_draining", "1 after SIGTERM while the replica drains.");

  auto stores = OpenStores(config_, &metrics);
  if (!stores.ok()) {
    log::Error("cannot open stores", {{"error", stores.error().message()}});
    return stores.error().code() == ErrorCode::kInvalidArgument ? 2 : 1;
  }

  PasswordHasher hasher(Argon2Params{config_.argon2_iterations, config_.argon2_memory_kib});
  AuthService auth(*stores->users, *stores->roles, *stores->sessions, hasher, clock, metrics,
                   AuthOptions{config_.session_ttl_seconds, config_.session_sliding});
  auto sealer = KeySealerFrom(config_);
  if (!sealer.ok()) {
    log::Error("invalid configuration", {{"error", sealer.error().message()}});
    return 2;
  }
  KeyService keys(*stores->signing_keys, clock, KeyOptionsFrom(config_), *sealer);
  // Load (or bootstrap) the signing keys before listening: a replica that
  // cannot sign or validate access tokens is not ready.
  if (Status st = keys.Refresh(); !st.ok() || !keys.Current()->signer) {
    log::Error("cannot load the signing keys",
               {{"error", st.ok() ? std::string("no usable active key") : st.error().message()}});
    return 1;
  }
  ExportKeyAges(metrics, *keys.Current());
  AccessTokenVerifierOptions verifier_options;
  verifier_options.issuer = config_.issuer;
  verifier_options.leeway_seconds = keys.options().leeway_seconds;
  verifier_options.revocation_recheck = config_.revocation_recheck;
  AccessTokenVerifier verifier(keys, *stores->revocations, clock, metrics, verifier_options);
  auth.EnableAccessTokens(keys, verifier,
                          AccessTokenOptions{config_.issuer, config_.access_token_audience,
                                             config_.access_token_ttl_seconds});
  const RefreshTokenLifetimes refresh_lifetimes{config_.refresh_idle_ttl_seconds,
                                                config_.refresh_absolute_ttl_seconds,
                                                config_.refresh_grace_seconds};
  auth.EnableRefreshTokens(*stores->logins, refresh_lifetimes);
  AdminService admin(*stores->users, *stores->roles, *stores->config, *stores->sessions, hasher,
                     clock);
  // With Redis written through to a relational store, either part alone can
  // still verify sessions, so neither is required on its own (the monitor
  // still wants one of them up); without write-through Redis is required.
  const bool redis_sessions = stores->session_kind == "redis";
  const bool write_through = redis_sessions && stores->session_durability != "redis";
  HealthMonitor health({{"database", stores->database_kind, stores->database, !redis_sessions},
                        {"redis", redis_sessions ? "redis" : "embedded",
                         redis_sessions ? stores->session_backend : nullptr, !write_through}},
                       clock, config_.replica_id);
  health.Refresh();

  api::ApiContext context{auth,
                          admin,
                          health,
                          metrics,
                          api::CookieOptions{"bulwark_session", config_.cookie_secure},
                          &keys,
                          api::DiscoveryOptions{config_.issuer, config_.jwks_max_age_seconds,
                                                config_.signing_algorithm}};
  OAuthOptions oauth_options;
  oauth_options.issuer = config_.issuer;
  oauth_options.audience = config_.access_token_audience;
  oauth_options.access_token_ttl_seconds = config_.access_token_ttl_seconds;
  oauth_options.refresh = refresh_lifetimes;
  // One staleness bound for what a replica remembers about other replicas' changes.
  oauth_options.client_cache_ttl = config_.revocation_recheck;
  OAuthService oauth(*stores->clients, *stores->refresh_tokens, *stores->sessions, keys, verifier,
                     clock, metrics, oauth_options);
  context.oauth = &oauth;
  http::Router router;
  api::RegisterRoutes(router, context);

  boost::asio::thread_pool store_pool(static_cast<std::size_t>(config_.store_threads));
  boost::asio::thread_pool hash_pool(static_cast<std::size_t>(config_.hash_threads));
  if (config_.hash_priority != HashPriority::kNormal &&
      !SetPoolNiceness(hash_pool, static_cast<std::size_t>(config_.hash_threads), kHashNiceness,
                       /*idle_policy=*/config_.hash_priority == HashPriority::kIdle)) {
    log::Warn("cannot lower the hashing threads' priority; a login flood may slow verification");
  }
  NamePoolThreads(store_pool, static_cast<std::size_t>(config_.store_threads), "bulwark-store");
  NamePoolThreads(hash_pool, static_cast<std::size_t>(config_.hash_threads), "bulwark-hash");
  AccessObserver observer(metrics);
  http::ServerOptions options;
  options.host = config_.listen_host;
  options.port = config_.listen_port;
  options.io_threads = config_.io_threads;
  options.header_limit = config_.max_header_bytes;
  options.body_limit = config_.max_body_bytes;
  options.read_timeout = config_.read_timeout;
  options.idle_timeout = config_.idle_timeout;
  // Session reads from Redis go on each I/O thread's own connections.
  options.on_io_thread = [](boost::asio::io_context* io) { redis::BindThreadToIoContext(io); };
  http::HttpServer server(options, router, {&store_pool, &hash_pool}, &observer);
  try {
    server.Start();
  } catch (const std::exception& e) {
    log::Error("cannot listen", {{"listen", ListenAddress(config_)}, {"error", e.what()}});
    return 1;
  }

  // Every second: batched access-log lines out, health probed; every purge
  // interval, expired sessions purged.
  Every session_purge(clock, config_.purge_interval_seconds);
  PeriodicThread upkeep("bulwark-upkeep", std::chrono::seconds(1), [&] {
    log::Flush();  // access-log lines wait at most about a second
    health.Refresh();
    session_purge([&] {
      auto purged = stores->sessions->PurgeExpired(clock.NowUnix());
      if (purged.ok() && *purged > 0) {
        log::Info("purged expired sessions", {{"count", int64_t{*purged}}});
      } else if (!purged.ok()) {
        log::Warn("session purge failed", {{"error", purged.error().message()}});
      }
    });
  });
  // Signing keys reloaded every refresh interval, so a rotation made anywhere
  // reaches this replica (and a due next key is promoted); expired
  // revocations purged every purge interval.
  Every revocation_purge(clock, config_.purge_interval_seconds);
  PeriodicThread key_upkeep(
      "bulwark-keys", std::chrono::seconds(config_.key_refresh_interval_seconds), [&] {
        if (Status st = keys.Refresh(); !st.ok()) {
          log::Warn("signing keys: refresh failed; keeping the loaded keys",
                    {{"error", st.error().message()}});
        }
        ExportKeyAges(metrics, *keys.Current());
        revocation_purge([&] {
          auto purged = stores->revocations->PurgeExpiredRevocations(clock.NowUnix());
          if (!purged.ok()) {
            log::Warn("revocation purge failed", {{"error", purged.error().message()}});
          }
        });
      });
  health.MarkStarted();
  ready_gauge.Set(1);
  log::Info("ready", {{"listen", config_.listen_host + ":" + std::to_string(server.port())},
                      {"version", kVersion},
                      {"store", stores->database_kind},
                      {"sessions", stores->session_durability},
                      {"signing_key", keys.Current()->signer->kid()},
                      {"startup_ms", MillisSince(start)}});

  WaitForSignal(signals, std::nullopt);
  // Phase 1: fail readiness at once so load balancers take us out, keep serving.
  health.MarkDraining();
  ready_gauge.Set(0);
  draining_gauge.Set(1);
  log::Info("draining", {{"drain_delay_ms", int64_t{config_.drain_delay.count()}}});
  if (WaitForSignal(signals, config_.drain_delay)) {
    log::Info("second signal: skipping the drain delay");
  }
  // Phase 2: stop accepting, finish in-flight requests, close keep-alives.
  const auto stop_begin = steady_clock::now();
  server.StopAccepting();
  server.BeginDrain();
  std::size_t forced = server.WaitForConnections(stop_begin + config_.shutdown_timeout);
  server.Stop();
  store_pool.join();
  hash_pool.join();
  log::Info("stopped", {{"forced_connections", static_cast<int64_t>(forced)},
                        {"shutdown_ms", MillisSince(stop_begin)}});
  log::Flush();
  return 0;
}

}  // namespace bulwark
