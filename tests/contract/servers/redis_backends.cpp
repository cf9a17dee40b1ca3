// Registers PostgreSQL + Redis back-ends with the store contract suite: users,
// roles and configuration in PostgreSQL, sessions in Redis (standalone,
// Sentinel, Cluster; and Cluster written through to PostgreSQL). Servers are
// started lazily, once per process, on the first CreateFresh() of a back-end,
// and stopped at exit; every test gets a fresh schema and a fresh key prefix.
#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>

#include "redis/redis_client.hpp"
#include "storage/durable_session_store.hpp"
#include "storage/postgres/postgres_store.hpp"
#include "storage/redis/redis_refresh_token_store.hpp"
#include "storage/redis/redis_revocation_store.hpp"
#include "storage/redis/redis_session_store.hpp"
#include "tests/contract/store_contract.hpp"
#include "tests/support/postgres_server.hpp"
#include "tests/support/redis_servers.hpp"

namespace bulwark::testing {
namespace {

PostgresServer& SharedPostgres() {
  static PostgresServer server;
  return server;
}

enum class Topology { kStandalone, kSentinel, kCluster };

redis::ClientOptions ClientOptionsFor(Topology topology) {
  redis::ClientOptions options;
  switch (topology) {
    case Topology::kStandalone: {
      static RedisServer server;
      options.mode = redis::Mode::kStandalone;
      options.endpoints = *redis::ParseEndpoints(server.endpoint());
      break;
    }
    case Topology::kSentinel: {
      static RedisSentinelGroup group("bulwark");
      options.mode = redis::Mode::kSentinel;
      options.endpoints = *redis::ParseEndpoints(group.sentinels());
      options.master_name = group.master_name();
      break;
    }
    case Topology::kCluster: {
      static RedisCluster cluster;
      options.mode = redis::Mode::kCluster;
      options.endpoints = *redis::ParseEndpoints(cluster.seeds());
      break;
    }
  }
  return options;
}

class PostgresRedisBackend final : public StoreBackend {
 public:
  PostgresRedisBackend(std::string name, Topology topology, bool write_through)
      : name_(std::move(name)), topology_(topology), write_through_(write_through) {}

  std::string Name() const override { return name_; }

  Stores CreateFresh() override {
    if (!client_) {
      auto client = redis::Connect(ClientOptionsFor(topology_));
      if (!client.ok()) throw std::runtime_error("redis::Connect: " + client.error().message());
      client_ = std::move(*client);
    }
    PostgresOptions pg;
    pg.conninfo = SharedPostgres().CreateFreshSchema();
    Result<Stores> opened = OpenPostgresStores(pg);
    if (!opened.ok()) throw std::runtime_error("OpenPostgresStores: " + opened.error().message());
    Stores stores = std::move(*opened);

    RedisSessionStoreOptions options;
    options.key_prefix = "t" + std::to_string(++tests_) + ":";
    // The suite runs with the session cache live, as `bulwark serve` does:
    // the contract must hold with sessions answered from memory too.
    options.cache_max_entries = 1000;
    auto cache = std::make_shared<RedisSessionStore>(client_, options);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!cache->cache_live()) {
      if (std::chrono::steady_clock::now() > deadline) {
        throw std::runtime_error("the session cache never became live (CLIENT TRACKING)");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    RedisRefreshTokenStoreOptions refresh_options;
    refresh_options.key_prefix = options.key_prefix;
    stores.refresh_tokens = std::make_shared<RedisRefreshTokenStore>(client_, refresh_options);
    stores.session_backend = cache;
    stores.session_kind = "redis";
    stores.revocations = std::make_shared<RedisRevocationStore>(client_, options.key_prefix);
    if (write_through_) {
      DurableSessionStore::CacheHooks hooks{
          [cache](const Session& s) { return cache->RestoreSession(s); },
          [cache](const std::string& hash) { return cache->MarkRevoked(hash); },
          [cache](const std::string& hash) { return cache->IsRevoked(hash); }};
      stores.sessions = std::make_shared<DurableSessionStore>(cache, stores.sessions, hooks);
    } else {
      stores.sessions = cache;
    }
    stores.logins = std::make_shared<SequentialLoginStore>(stores.sessions, stores.refresh_tokens);
    return stores;
  }

 private:
  std::string name_;
  Topology topology_;
  bool write_through_;
  std::shared_ptr<redis::Client> client_;
  int tests_ = 0;
};

[[maybe_unused]] const bool kRegistered =
    RegisterStoreBackend(
        std::make_shared<PostgresRedisBackend>("PostgresRedis", Topology::kStandalone, false)) &&
    RegisterStoreBackend(std::make_shared<PostgresRedisBackend>("PostgresRedisSentinel",
                                                                Topology::kSentinel, false)) &&
    RegisterStoreBackend(std::make_shared<PostgresRedisBackend>("PostgresRedisCluster",
                                                                Topology::kCluster, false)) &&
    RegisterStoreBackend(std::make_shared<PostgresRedisBackend>("PostgresRedisClusterDurable",
                                                                Topology::kCluster, true));

}  // namespace
}  // namespace bulwark::testing
