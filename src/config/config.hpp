// Configuration of `bulwark serve`: environment first (12-factor), each
// variable with a matching command-line flag that overrides it (SPEC §4).
// Validation produces one-line errors that name the variable.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/result.hpp"

namespace bulwark {

enum class LogFormatSetting { kJson, kText };
enum class TlsClientAuth { kNone, kOptional, kRequire };
// How the password-hashing threads yield to the I/O and store threads (docs/architecture.md).
enum class HashPriority { kIdle, kLow, kNormal };

struct ServeConfig {
  std::string listen_host = "127.0.0.1";
  uint16_t listen_port = 8080;
  std::string data_dir = "./bulwark-data";
  std::string issuer;  // default "http://<listen>"
  // Production back-ends (issue 3); unset means the embedded SQLite default.
  std::string db_host;
  std::string database_url;
  std::string redis_hosts;
  bool cluster_enabled = false;
  std::string redis_sentinels;
  std::string redis_master_name;
  std::string redis_password;  // secret: never logged
  bool redis_tls = false;
  std::string redis_username;
  std::string redis_tls_ca;  // PEM file; empty: system trust store
  std::string session_durability = "redis+db";
  // Sessions kept in memory while Redis tracks their keys (docs/redis.md); 0 = off.
  int64_t session_cache_size = 10000;
  int64_t session_ttl_seconds = 3600;
  bool session_sliding = false;
  int64_t access_token_ttl_seconds = 300;
  // Refresh tokens (docs/sessions.md).
  int64_t refresh_idle_ttl_seconds = 24 * 3600;
  int64_t refresh_absolute_ttl_seconds = 30 * 24 * 3600;
  int64_t refresh_grace_seconds = 10;
  // How long a verified access token's "not revoked" answer is trusted.
  std::chrono::milliseconds revocation_recheck{1000};
  // JWT access tokens and their keys (docs/keys.md).
  std::string access_token_audience;         // default: the issuer
  std::string signing_algorithm = "ES256";   // of new keys: "ES256" or "EdDSA"
  int64_t jwks_max_age_seconds = 300;        // JWKS Cache-Control max-age
  int64_t key_rotation_days = 0;             // automatic rotation; 0: manual only
  int64_t key_refresh_interval_seconds = 5;  // how often each replica reloads the keys
  std::chrono::milliseconds drain_delay{5000};
  std::chrono::milliseconds shutdown_timeout{25000};
  std::string tls_cert;
  std::string tls_key;
  std::string tls_client_ca;
  TlsClientAuth tls_client_auth = TlsClientAuth::kNone;
  std::string master_key;  // secret: never logged
  LogFormatSetting log_format = LogFormatSetting::kJson;
  std::string replica_id;  // default "<hostname>-<pid>"
  // Password hashing (OWASP defaults).
  uint32_t argon2_iterations = 2;
  uint32_t argon2_memory_kib = 19 * 1024;
  // Threads: 0 means "one per core".
  int io_threads = 0;
  int hash_threads = 0;
  HashPriority hash_priority = HashPriority::kIdle;
  int store_threads = 8;
  // HTTP limits.
  std::size_t max_body_bytes = 1024 * 1024;
  std::size_t max_header_bytes = 16 * 1024;
  std::chrono::milliseconds read_timeout{10'000};
  std::chrono::milliseconds idle_timeout{60'000};
  // Cookie "Secure" attribute (turn off only for plain-http development).
  bool cookie_secure = true;
  // Seconds between purges of expired sessions.
  int64_t purge_interval_seconds = 60;

  bool operator==(const ServeConfig&) const = default;
};

// One configurable setting: its environment variable, its flag, its help.
struct SettingSpec {
  std::string env;   // "BULWARK_SESSION_TTL"
  std::string flag;  // "--session-ttl"
  std::string help;  // one line, with the default
  bool secret = false;
};

// Every setting of `bulwark serve`, in --help order.
const std::vector<SettingSpec>& ServeSettings();

// Looks up an environment variable; nullopt when unset.
using EnvLookup = std::function<std::optional<std::string>(const std::string&)>;
EnvLookup ProcessEnvironment();

// Builds the configuration from the environment and flag values (keyed by
// SettingSpec::env; flags win). kInvalidArgument with a one-line message that
// names the variable, e.g. "BULWARK_SESSION_TTL: expected a positive integer, got 'x'".
Result<ServeConfig> LoadServeConfig(const EnvLookup& env,
                                    const std::map<std::string, std::string>& flag_values);

// "<host>:<port>" of the listener.
std::string ListenAddress(const ServeConfig& config);

}  // namespace bulwark
