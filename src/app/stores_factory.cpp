#include "app/stores_factory.hpp"

#include <filesystem>
#include <memory>
#include <system_error>

#include "redis/redis_client.hpp"
#include "storage/durable_session_store.hpp"
#include "storage/postgres/postgres_store.hpp"
#include "storage/redis/redis_refresh_token_store.hpp"
#include "storage/redis/redis_revocation_store.hpp"
#include "storage/redis/redis_session_store.hpp"
#include "storage/sqlite/sqlite_store.hpp"

namespace bulwark {

namespace {

bool UsesPostgres(const ServeConfig& c) { return !c.db_host.empty() || !c.database_url.empty(); }
bool UsesRedis(const ServeConfig& c) {
  return !c.redis_hosts.empty() || !c.redis_sentinels.empty();
}

Result<SqliteOptions> EmbeddedOptions(const ServeConfig& config) {
  std::error_code ec;
  std::filesystem::create_directories(config.data_dir, ec);
  if (ec) {
    return Error::Unavailable("BULWARK_DATA_DIR: cannot create '" + config.data_dir +
                              "': " + ec.message());
  }
  SqliteOptions options;
  options.path = EmbeddedDatabasePath(config);
  // One connection per store worker and hashing worker, plus one for maintenance.
  options.pool_size = config.store_threads + config.hash_threads + 1;
  return options;
}

Result<PostgresOptions> PgOptions(const ServeConfig& config, metrics::Registry* metrics) {
  auto conninfo = PostgresConninfo(config.db_host, config.database_url);
  if (!conninfo.ok()) return conninfo.error();
  PostgresOptions options;
  options.conninfo = *conninfo;
  options.pool_size = config.store_threads + config.hash_threads + 1;
  options.metrics = metrics;
  return options;
}

Result<Stores> OpenRelational(const ServeConfig& config, metrics::Registry* metrics) {
  if (UsesPostgres(config)) {
    auto options = PgOptions(config, metrics);
    if (!options.ok()) return options.error();
    return OpenPostgresStores(*options);
  }
  auto options = EmbeddedOptions(config);
  if (!options.ok()) return options.error();
  return OpenSqliteStores(*options);
}

Result<std::shared_ptr<redis::Client>> ConnectRedis(const ServeConfig& config,
                                                    metrics::Registry* metrics) {
  redis::ClientOptions options;
  const bool sentinel = !config.redis_sentinels.empty();
  const std::string& list = sentinel ? config.redis_sentinels : config.redis_hosts;
  auto endpoints = redis::ParseEndpoints(list);
  if (!endpoints.ok()) {
    return Error::InvalidArgument(std::string(sentinel ? "REDIS_SENTINELS" : "REDIS_HOSTS") + ": " +
                                  endpoints.error().message());
  }
  options.endpoints = std::move(*endpoints);
  options.mode = sentinel                 ? redis::Mode::kSentinel
                 : config.cluster_enabled ? redis::Mode::kCluster
                                          : redis::Mode::kStandalone;
  options.master_name = config.redis_master_name;
  options.username = config.redis_username;
  options.password = config.redis_password;
  options.tls = config.redis_tls;
  options.tls_ca_file = config.redis_tls_ca;
  options.metrics = metrics;
  // With write-through the relational store answers alone: start without Redis.
  options.connect_lazily = config.session_durability != "redis";
  auto client = redis::Connect(options);
  if (!client.ok()) return client.error();
  return std::shared_ptr<redis::Client>(std::move(*client));
}

}  // namespace

std::string EmbeddedDatabasePath(const ServeConfig& config) {
  return (std::filesystem::path(config.data_dir) / "bulwark.db").string();
}

Result<Stores> OpenStores(const ServeConfig& config, metrics::Registry* metrics) {
  auto relational = OpenRelational(config, metrics);
  if (!relational.ok()) return relational.error();
  Stores stores = std::move(*relational);
  stores.session_durability = stores.session_kind;
  if (!UsesRedis(config)) return stores;

  auto client = ConnectRedis(config, metrics);
  if (!client.ok()) return client.error();
  RedisSessionStoreOptions redis_options;
  redis_options.revocation_ttl_seconds = config.session_ttl_seconds;
  redis_options.metrics = metrics;
  redis_options.cache_max_entries = static_cast<std::size_t>(config.session_cache_size);
  auto cache = std::make_shared<RedisSessionStore>(*client, redis_options);
  stores.session_backend = cache;
  stores.session_kind = "redis";
  // Revoked access-token ids live in Redis with a TTL (SPEC §2).
  stores.revocations = std::make_shared<RedisRevocationStore>(*client);
  if (config.session_durability == "redis") {
    stores.sessions = cache;
    stores.session_durability = "redis";
    // Refresh families follow the sessions. With write-through they stay in
    // the relational record, whose rotation is atomic and durable.
    stores.refresh_tokens =
        std::make_shared<RedisRefreshTokenStore>(*client, RedisRefreshTokenStoreOptions{});
  } else {
    DurableSessionStore::CacheHooks hooks{
        [cache](const Session& s) { return cache->RestoreSession(s); },
        [cache](const std::string& hash) { return cache->MarkRevoked(hash); },
        [cache](const std::string& hash) { return cache->IsRevoked(hash); }};
    stores.sessions =
        std::make_shared<DurableSessionStore>(cache, stores.sessions, std::move(hooks), metrics);
    stores.session_durability = "redis+" + stores.database_kind;
  }
  // Sessions and families now live apart (or in Redis): no shared transaction.
  stores.logins = std::make_shared<SequentialLoginStore>(stores.sessions, stores.refresh_tokens);
  return stores;
}

Result<int> MigrateStores(const ServeConfig& config) {
  if (UsesPostgres(config)) {
    auto options = PgOptions(config, nullptr);
    if (!options.ok()) return options.error();
    return MigratePostgres(*options);
  }
  auto options = EmbeddedOptions(config);
  if (!options.ok()) return options.error();
  return MigrateSqlite(*options);
}

}  // namespace bulwark
