#include "app/stores_factory.hpp"

#include <filesystem>
#include <system_error>

#include "storage/sqlite/sqlite_store.hpp"

namespace bulwark {

std::string EmbeddedDatabasePath(const ServeConfig& config) {
  return (std::filesystem::path(config.data_dir) / "bulwark.db").string();
}

Result<Stores> OpenStores(const ServeConfig& config) {
  if (!config.db_host.empty() || !config.database_url.empty()) {
    return Error::InvalidArgument(
        "DB_HOST/DATABASE_URL: the PostgreSQL back-end is not supported yet; unset it to use "
        "the embedded SQLite store");
  }
  if (!config.redis_hosts.empty() || !config.redis_sentinels.empty()) {
    return Error::InvalidArgument(
        "REDIS_HOSTS/REDIS_SENTINELS: the Redis back-end is not supported yet; unset it to use "
        "the embedded SQLite store");
  }
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
  return OpenSqliteStores(options);
}

}  // namespace bulwark
