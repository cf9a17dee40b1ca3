#include "config/config.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <set>
#include <string>
#include <thread>

namespace bulwark {
namespace {

using Env = std::map<std::string, std::string>;
using Flags = std::map<std::string, std::string>;

EnvLookup FakeEnv(Env vars) {
  return [vars = std::move(vars)](const std::string& name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

Result<ServeConfig> Load(Env env, Flags flags = {}) {
  return LoadServeConfig(FakeEnv(std::move(env)), flags);
}

// The error message of loading `env`, or "" when it loaded.
std::string ErrorOf(Env env, Flags flags = {}) {
  Result<ServeConfig> r = Load(std::move(env), std::move(flags));
  if (r.ok()) return "";
  EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument);
  return r.error().message();
}

int Cores() { return std::max(1, static_cast<int>(std::thread::hardware_concurrency())); }

TEST(ConfigTest, Defaults) {
  Result<ServeConfig> r = Load({});
  ASSERT_TRUE(r.ok()) << r.error().message();
  const ServeConfig& c = *r;
  EXPECT_EQ(c.listen_host, "127.0.0.1");
  EXPECT_EQ(c.listen_port, 8080);
  EXPECT_EQ(ListenAddress(c), "127.0.0.1:8080");
  EXPECT_EQ(c.data_dir, "./bulwark-data");
  EXPECT_EQ(c.issuer, "http://127.0.0.1:8080");
  EXPECT_EQ(c.db_host, "");
  EXPECT_EQ(c.database_url, "");
  EXPECT_EQ(c.redis_hosts, "");
  EXPECT_FALSE(c.cluster_enabled);
  EXPECT_EQ(c.redis_sentinels, "");
  EXPECT_EQ(c.redis_master_name, "");
  EXPECT_EQ(c.redis_password, "");
  EXPECT_FALSE(c.redis_tls);
  EXPECT_EQ(c.session_durability, "redis+db");
  EXPECT_EQ(c.session_cache_size, 10000);
  EXPECT_EQ(c.session_ttl_seconds, 3600);
  EXPECT_FALSE(c.session_sliding);
  EXPECT_EQ(c.access_token_ttl_seconds, 300);
  EXPECT_EQ(c.drain_delay, std::chrono::milliseconds(5000));
  EXPECT_EQ(c.shutdown_timeout, std::chrono::milliseconds(25000));
  EXPECT_EQ(c.tls_cert, "");
  EXPECT_EQ(c.tls_key, "");
  EXPECT_EQ(c.tls_client_ca, "");
  EXPECT_EQ(c.tls_client_auth, TlsClientAuth::kNone);
  EXPECT_EQ(c.master_key, "");
  EXPECT_EQ(c.log_format, LogFormatSetting::kJson);
  EXPECT_EQ(c.argon2_iterations, 2u);
  EXPECT_EQ(c.argon2_memory_kib, 19u * 1024);
  EXPECT_EQ(c.io_threads, Cores());
  EXPECT_EQ(c.hash_threads, Cores());
  EXPECT_EQ(c.store_threads, 8);
  EXPECT_EQ(c.max_body_bytes, 1024u * 1024);
  EXPECT_EQ(c.max_header_bytes, 16u * 1024);
  EXPECT_EQ(c.read_timeout, std::chrono::milliseconds(10000));
  EXPECT_EQ(c.idle_timeout, std::chrono::milliseconds(60000));
  EXPECT_TRUE(c.cookie_secure);
  EXPECT_EQ(c.purge_interval_seconds, 60);

  char host[256] = {};
  ASSERT_EQ(gethostname(host, sizeof host - 1), 0);
  EXPECT_EQ(c.replica_id, std::string(host) + "-" + std::to_string(getpid()));
}

TEST(ConfigTest, ReadsEveryKindOfValue) {
  Result<ServeConfig> r = Load({
      {"BULWARK_LISTEN", "0.0.0.0:9000"},
      {"BULWARK_DATA_DIR", "/var/lib/bulwark"},
      {"DB_HOST", "postgres-primary"},
      {"DATABASE_URL", "postgres://u:p@db:5432/bulwark?sslmode=require"},
      {"REDIS_HOSTS", "redis-0.redis:6379,redis-1.redis:6379,[::1]:6380"},
      {"CLUSTER_ENABLED", "TRUE"},
      {"REDIS_PASSWORD", "s3cret"},
      {"REDIS_TLS", "yes"},
      {"BULWARK_SESSION_DURABILITY", "redis"},
      {"BULWARK_SESSION_TTL", "7200"},
      {"BULWARK_SESSION_SLIDING", "1"},
      {"BULWARK_ACCESS_TOKEN_TTL", "60"},
      {"BULWARK_DRAIN_DELAY", "0.5"},
      {"BULWARK_SHUTDOWN_TIMEOUT", "2.25"},
      {"BULWARK_TLS_CERT", "/tls/cert.pem"},
      {"BULWARK_TLS_KEY", "/tls/key.pem"},
      {"BULWARK_TLS_CLIENT_CA", "/tls/ca.pem"},
      {"BULWARK_TLS_CLIENT_AUTH", "Require"},
      {"BULWARK_MASTER_KEY", "k"},
      {"BULWARK_LOG_FORMAT", "text"},
      {"BULWARK_REPLICA_ID", "pod-a"},
      {"BULWARK_ARGON2_ITERATIONS", "3"},
      {"BULWARK_ARGON2_MEMORY_KIB", "65536"},
      {"BULWARK_IO_THREADS", "3"},
      {"BULWARK_HASH_THREADS", "5"},
      {"BULWARK_STORE_THREADS", "7"},
      {"BULWARK_MAX_BODY_BYTES", "2048"},
      {"BULWARK_MAX_HEADER_BYTES", "4096"},
      {"BULWARK_READ_TIMEOUT", "1.5"},
      {"BULWARK_IDLE_TIMEOUT", "30"},
      {"BULWARK_COOKIE_SECURE", "no"},
      {"BULWARK_PURGE_INTERVAL", "10"},
  });
  ASSERT_TRUE(r.ok()) << r.error().message();
  const ServeConfig& c = *r;
  EXPECT_EQ(c.listen_host, "0.0.0.0");
  EXPECT_EQ(c.listen_port, 9000);
  EXPECT_EQ(c.issuer, "http://0.0.0.0:9000");
  EXPECT_EQ(c.data_dir, "/var/lib/bulwark");
  EXPECT_EQ(c.db_host, "postgres-primary");
  EXPECT_EQ(c.database_url, "postgres://u:p@db:5432/bulwark?sslmode=require");
  EXPECT_EQ(c.redis_hosts, "redis-0.redis:6379,redis-1.redis:6379,[::1]:6380");
  EXPECT_TRUE(c.cluster_enabled);
  EXPECT_EQ(c.redis_password, "s3cret");
  EXPECT_TRUE(c.redis_tls);
  EXPECT_EQ(c.session_durability, "redis");
  EXPECT_EQ(c.session_ttl_seconds, 7200);
  EXPECT_TRUE(c.session_sliding);
  EXPECT_EQ(c.access_token_ttl_seconds, 60);
  EXPECT_EQ(c.drain_delay, std::chrono::milliseconds(500));
  EXPECT_EQ(c.shutdown_timeout, std::chrono::milliseconds(2250));
  EXPECT_EQ(c.tls_cert, "/tls/cert.pem");
  EXPECT_EQ(c.tls_key, "/tls/key.pem");
  EXPECT_EQ(c.tls_client_ca, "/tls/ca.pem");
  EXPECT_EQ(c.tls_client_auth, TlsClientAuth::kRequire);
  EXPECT_EQ(c.master_key, "k");
  EXPECT_EQ(c.log_format, LogFormatSetting::kText);
  EXPECT_EQ(c.replica_id, "pod-a");
  EXPECT_EQ(c.argon2_iterations, 3u);
  EXPECT_EQ(c.argon2_memory_kib, 65536u);
  EXPECT_EQ(c.io_threads, 3);
  EXPECT_EQ(c.hash_threads, 5);
  EXPECT_EQ(c.store_threads, 7);
  EXPECT_EQ(c.max_body_bytes, 2048u);
  EXPECT_EQ(c.max_header_bytes, 4096u);
  EXPECT_EQ(c.read_timeout, std::chrono::milliseconds(1500));
  EXPECT_EQ(c.idle_timeout, std::chrono::milliseconds(30000));
  EXPECT_FALSE(c.cookie_secure);
  EXPECT_EQ(c.purge_interval_seconds, 10);
}

TEST(ConfigTest, SentinelMode) {
  Result<ServeConfig> r =
      Load({{"REDIS_SENTINELS", "s1:26379,s2:26379,s3:26379"}, {"REDIS_MASTER_NAME", "bw"}});
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(r->redis_sentinels, "s1:26379,s2:26379,s3:26379");
  EXPECT_EQ(r->redis_master_name, "bw");
}

TEST(ConfigTest, Ipv6Listen) {
  Result<ServeConfig> r = Load({{"BULWARK_LISTEN", "[::1]:8443"}});
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(r->listen_host, "::1");
  EXPECT_EQ(r->listen_port, 8443);
  EXPECT_EQ(ListenAddress(*r), "[::1]:8443");
  EXPECT_EQ(r->issuer, "http://[::1]:8443");

  r = Load({{"BULWARK_LISTEN", "[::]:0"}});
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(r->listen_host, "::");
  EXPECT_EQ(r->listen_port, 0);
}

TEST(ConfigTest, ExplicitIssuerIsKept) {
  Result<ServeConfig> r = Load({{"BULWARK_ISSUER", "https://auth.example.com"}});
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(r->issuer, "https://auth.example.com");
}

TEST(ConfigTest, EmptyValuesMeanUnset) {
  Result<ServeConfig> r = Load({{"BULWARK_SESSION_TTL", ""}, {"DB_HOST", ""}});
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(r->session_ttl_seconds, 3600);
  EXPECT_EQ(r->db_host, "");
}

TEST(ConfigTest, FlagsOverrideEnvironment) {
  Result<ServeConfig> r = Load(
      {{"BULWARK_SESSION_TTL", "100"}, {"BULWARK_LISTEN", "127.0.0.1:1"}, {"REDIS_TLS", "true"}},
      {{"BULWARK_SESSION_TTL", "200"}, {"BULWARK_LOG_FORMAT", "text"}, {"REDIS_TLS", ""}});
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(r->session_ttl_seconds, 200);
  EXPECT_EQ(r->listen_port, 1);                       // environment where no flag
  EXPECT_EQ(r->log_format, LogFormatSetting::kText);  // flag where no environment
  EXPECT_FALSE(r->redis_tls);                         // an empty flag restores the default
  // A bad environment value hidden by a good flag does not matter.
  EXPECT_EQ(ErrorOf({{"BULWARK_SESSION_TTL", "x"}}, {{"BULWARK_SESSION_TTL", "5"}}), "");
  // A bad flag is reported under the variable's name.
  EXPECT_EQ(ErrorOf({}, {{"BULWARK_SESSION_TTL", "x"}}),
            "BULWARK_SESSION_TTL: expected a positive integer, got 'x'");
}

TEST(ConfigTest, UnknownFlagKeyIsAnError) {
  EXPECT_EQ(ErrorOf({}, {{"BULWARK_NOPE", "1"}}), "unknown setting 'BULWARK_NOPE'");
}

TEST(ConfigTest, BadIntegers) {
  const std::string kPositive = "BULWARK_SESSION_TTL: expected a positive integer, got '";
  EXPECT_EQ(ErrorOf({{"BULWARK_SESSION_TTL", "x"}}), kPositive + "x'");
  EXPECT_EQ(ErrorOf({{"BULWARK_SESSION_TTL", "10s"}}), kPositive + "10s'");
  EXPECT_EQ(ErrorOf({{"BULWARK_SESSION_TTL", " 10"}}), kPositive + " 10'");
  EXPECT_EQ(ErrorOf({{"BULWARK_SESSION_TTL", "-5"}}), kPositive + "-5'");
  EXPECT_EQ(ErrorOf({{"BULWARK_SESSION_TTL", "+5"}}), kPositive + "+5'");
  EXPECT_EQ(ErrorOf({{"BULWARK_SESSION_TTL", "1.5"}}), kPositive + "1.5'");
  EXPECT_EQ(ErrorOf({{"BULWARK_SESSION_TTL", "0"}}),
            "BULWARK_SESSION_TTL: must be between 1 and 315360000, got '0'");
  EXPECT_EQ(ErrorOf({{"BULWARK_SESSION_TTL", "99999999999999999999999"}}),
            "BULWARK_SESSION_TTL: must be at most 315360000, got '99999999999999999999999'");
  EXPECT_EQ(ErrorOf({{"BULWARK_ACCESS_TOKEN_TTL", "0"}}),
            "BULWARK_ACCESS_TOKEN_TTL: must be between 1 and 315360000, got '0'");
  EXPECT_EQ(ErrorOf({{"BULWARK_ARGON2_ITERATIONS", "4294967296"}}),
            "BULWARK_ARGON2_ITERATIONS: must be between 1 and 4294967295, got '4294967296'");
  EXPECT_EQ(ErrorOf({{"BULWARK_ARGON2_ITERATIONS", "0"}}),
            "BULWARK_ARGON2_ITERATIONS: must be between 1 and 4294967295, got '0'");
  EXPECT_EQ(ErrorOf({{"BULWARK_ARGON2_MEMORY_KIB", "7"}}),
            "BULWARK_ARGON2_MEMORY_KIB: must be between 8 and 4194304, got '7'");
  EXPECT_EQ(ErrorOf({{"BULWARK_IO_THREADS", "-1"}}),
            "BULWARK_IO_THREADS: expected a non-negative integer, got '-1'");
  EXPECT_EQ(ErrorOf({{"BULWARK_STORE_THREADS", "0"}}),
            "BULWARK_STORE_THREADS: must be between 1 and 1024, got '0'");
  EXPECT_EQ(ErrorOf({{"BULWARK_MAX_BODY_BYTES", "0"}}),
            "BULWARK_MAX_BODY_BYTES: must be between 1 and 1073741824, got '0'");
  EXPECT_EQ(ErrorOf({{"BULWARK_SIGNING_ALGORITHM", "HS256"}}),
            "BULWARK_SIGNING_ALGORITHM: expected one of es256, eddsa, got 'HS256'");
  EXPECT_EQ(ErrorOf({{"BULWARK_JWKS_MAX_AGE", "-1"}}),
            "BULWARK_JWKS_MAX_AGE: expected a non-negative integer, got '-1'");
  EXPECT_EQ(ErrorOf({{"BULWARK_KEY_ROTATION_DAYS", "3651"}}),
            "BULWARK_KEY_ROTATION_DAYS: must be between 0 and 3650, got '3651'");
  EXPECT_EQ(ErrorOf({{"BULWARK_KEY_REFRESH_INTERVAL", "0"}}),
            "BULWARK_KEY_REFRESH_INTERVAL: must be between 1 and 3600, got '0'");
  EXPECT_EQ(ErrorOf({{"BULWARK_PURGE_INTERVAL", "0"}}),
            "BULWARK_PURGE_INTERVAL: must be between 1 and 315360000, got '0'");
}

TEST(ConfigTest, Seconds) {
  Result<ServeConfig> r = Load({{"BULWARK_DRAIN_DELAY", "0"}, {"BULWARK_SHUTDOWN_TIMEOUT", ".25"}});
  ASSERT_TRUE(r.ok()) << r.error().message();
  EXPECT_EQ(r->drain_delay, std::chrono::milliseconds(0));
  EXPECT_EQ(r->shutdown_timeout, std::chrono::milliseconds(250));

  EXPECT_EQ(ErrorOf({{"BULWARK_DRAIN_DELAY", "-1"}}),
            "BULWARK_DRAIN_DELAY: expected a non-negative number of seconds, got '-1'");
  EXPECT_EQ(ErrorOf({{"BULWARK_DRAIN_DELAY", "5s"}}),
            "BULWARK_DRAIN_DELAY: expected a non-negative number of seconds, got '5s'");
  EXPECT_EQ(ErrorOf({{"BULWARK_DRAIN_DELAY", "1e3"}}),
            "BULWARK_DRAIN_DELAY: expected a non-negative number of seconds, got '1e3'");
  EXPECT_EQ(ErrorOf({{"BULWARK_DRAIN_DELAY", "nan"}}),
            "BULWARK_DRAIN_DELAY: expected a non-negative number of seconds, got 'nan'");
  EXPECT_EQ(ErrorOf({{"BULWARK_DRAIN_DELAY", "1.2.3"}}),
            "BULWARK_DRAIN_DELAY: expected a non-negative number of seconds, got '1.2.3'");
  EXPECT_EQ(ErrorOf({{"BULWARK_DRAIN_DELAY", "."}}),
            "BULWARK_DRAIN_DELAY: expected a non-negative number of seconds, got '.'");
  EXPECT_EQ(ErrorOf({{"BULWARK_DRAIN_DELAY", "100000"}}),
            "BULWARK_DRAIN_DELAY: must be at most 86400, got '100000'");
  EXPECT_EQ(ErrorOf({{"BULWARK_SHUTDOWN_TIMEOUT", "0"}}),
            "BULWARK_SHUTDOWN_TIMEOUT: expected a positive number of seconds, got '0'");
  EXPECT_EQ(ErrorOf({{"BULWARK_SHUTDOWN_TIMEOUT", "0.0001"}}),
            "BULWARK_SHUTDOWN_TIMEOUT: must be at least 0.001 seconds, got '0.0001'");
  EXPECT_EQ(ErrorOf({{"BULWARK_READ_TIMEOUT", "0"}}),
            "BULWARK_READ_TIMEOUT: expected a positive number of seconds, got '0'");
}

TEST(ConfigTest, BadBooleansAndChoices) {
  for (const char* good : {"true", "FALSE", "1", "0", "Yes", "no"}) {
    EXPECT_EQ(ErrorOf({{"BULWARK_COOKIE_SECURE", good}}), "") << good;
  }
  EXPECT_EQ(ErrorOf({{"BULWARK_COOKIE_SECURE", "maybe"}}),
            "BULWARK_COOKIE_SECURE: expected true or false, got 'maybe'");
  EXPECT_EQ(ErrorOf({{"REDIS_TLS", "2"}}), "REDIS_TLS: expected true or false, got '2'");
  EXPECT_EQ(ErrorOf({{"BULWARK_LOG_FORMAT", "xml"}}),
            "BULWARK_LOG_FORMAT: expected one of json, text, got 'xml'");
  EXPECT_EQ(
      ErrorOf({{"BULWARK_SESSION_CACHE_SIZE", "-1"}}).rfind("BULWARK_SESSION_CACHE_SIZE: ", 0), 0u);
  EXPECT_EQ(ErrorOf({{"BULWARK_SESSION_DURABILITY", "db"}}),
            "BULWARK_SESSION_DURABILITY: expected one of redis+db, redis, got 'db'");
  EXPECT_EQ(ErrorOf({{"BULWARK_TLS_CLIENT_AUTH", "always"}}),
            "BULWARK_TLS_CLIENT_AUTH: expected one of none, optional, require, got 'always'");
}

TEST(ConfigTest, BadAddresses) {
  const std::string kShape = "expected host:port (IPv6 in brackets, e.g. [::1]:8080)";
  EXPECT_EQ(ErrorOf({{"BULWARK_LISTEN", "8080"}}), "BULWARK_LISTEN: " + kShape + ", got '8080'");
  EXPECT_EQ(ErrorOf({{"BULWARK_LISTEN", ":8080"}}), "BULWARK_LISTEN: " + kShape + ", got ':8080'");
  EXPECT_EQ(ErrorOf({{"BULWARK_LISTEN", "::1:8080"}}),
            "BULWARK_LISTEN: " + kShape + ", got '::1:8080'");
  EXPECT_EQ(ErrorOf({{"BULWARK_LISTEN", "[::1]8080"}}),
            "BULWARK_LISTEN: " + kShape + ", got '[::1]8080'");
  EXPECT_EQ(ErrorOf({{"BULWARK_LISTEN", "[::1"}}), "BULWARK_LISTEN: " + kShape + ", got '[::1'");
  EXPECT_EQ(ErrorOf({{"BULWARK_LISTEN", "localhost:65536"}}),
            "BULWARK_LISTEN: expected a port from 0 to 65535, got 'localhost:65536'");
  EXPECT_EQ(ErrorOf({{"BULWARK_LISTEN", "localhost:http"}}),
            "BULWARK_LISTEN: expected a port from 0 to 65535, got 'localhost:http'");
  EXPECT_EQ(ErrorOf({{"REDIS_HOSTS", "a:1,,b:2"}}),
            "REDIS_HOSTS: expected a comma-separated list of host:port, got 'a:1,,b:2'");
  EXPECT_EQ(ErrorOf({{"REDIS_HOSTS", "redis"}}),
            "REDIS_HOSTS: expected a comma-separated list of host:port, got 'redis'");
  EXPECT_EQ(ErrorOf({{"REDIS_HOSTS", "redis:0"}}),
            "REDIS_HOSTS: expected a comma-separated list of host:port, got 'redis:0'");
  EXPECT_EQ(ErrorOf({{"REDIS_SENTINELS", "s1:26379,"}, {"REDIS_MASTER_NAME", "m"}}),
            "REDIS_SENTINELS: expected a comma-separated list of host:port, got 's1:26379,'");
  for (const char* good : {"db", "db:5432", "10.0.0.5", "[::1]:5432", "::1"}) {
    EXPECT_EQ(ErrorOf({{"DB_HOST", good}}), "") << good;
  }
  for (const char* bad : {"db:x", "db host", "postgres://db", "db:0"}) {
    EXPECT_EQ(ErrorOf({{"DB_HOST", bad}}),
              std::string("DB_HOST: expected a host name or host:port, got '") + bad + "'");
  }
  EXPECT_EQ(ErrorOf({{"BULWARK_ISSUER", "auth.example.com"}}),
            "BULWARK_ISSUER: expected an http:// or https:// URL without query or fragment, got "
            "'auth.example.com'");
  EXPECT_EQ(ErrorOf({{"BULWARK_REPLICA_ID", "pod a"}}),
            "BULWARK_REPLICA_ID: expected at most 128 printable ASCII characters without spaces "
            "or quotes, got 'pod a'");
}

TEST(ConfigTest, SecretsAreNeverEchoed) {
  const std::string url = "mysql://root:hunter2@db/x";
  const std::string message = ErrorOf({{"DATABASE_URL", url}});
  EXPECT_EQ(message, "DATABASE_URL: expected a postgres://user:pass@host:port/db URL");
  EXPECT_EQ(message.find("hunter2"), std::string::npos);
  for (const SettingSpec& spec : ServeSettings()) {
    if (spec.env == "REDIS_PASSWORD" || spec.env == "BULWARK_MASTER_KEY" ||
        spec.env == "DATABASE_URL") {
      EXPECT_TRUE(spec.secret) << spec.env;
    } else {
      EXPECT_FALSE(spec.secret) << spec.env;
    }
  }
}

TEST(ConfigTest, MessagesAreOneLine) {
  const std::string message = ErrorOf({{"BULWARK_SESSION_TTL", "1\n2\x1b[31m"}});
  EXPECT_EQ(message, "BULWARK_SESSION_TTL: expected a positive integer, got '1\\x0a2\\x1b[31m'");
  const std::string long_value(1000, 'x');
  const std::string long_message = ErrorOf({{"BULWARK_SESSION_TTL", long_value}});
  EXPECT_LT(long_message.size(), 300u);
  EXPECT_TRUE(long_message.ends_with("...'")) << long_message;
}

TEST(ConfigTest, CrossChecks) {
  EXPECT_EQ(ErrorOf({{"BULWARK_TLS_CERT", "c.pem"}}),
            "BULWARK_TLS_KEY: required when BULWARK_TLS_CERT is set");
  EXPECT_EQ(ErrorOf({{"BULWARK_TLS_KEY", "k.pem"}}),
            "BULWARK_TLS_CERT: required when BULWARK_TLS_KEY is set");
  EXPECT_EQ(ErrorOf({{"BULWARK_TLS_CERT", "c.pem"},
                     {"BULWARK_TLS_KEY", "k.pem"},
                     {"BULWARK_TLS_CLIENT_AUTH", "optional"}}),
            "BULWARK_TLS_CLIENT_CA: required when BULWARK_TLS_CLIENT_AUTH is optional");
  EXPECT_EQ(ErrorOf({{"BULWARK_TLS_CLIENT_AUTH", "require"}, {"BULWARK_TLS_CLIENT_CA", "ca.pem"}}),
            "BULWARK_TLS_CLIENT_AUTH: needs TLS (BULWARK_TLS_CERT and BULWARK_TLS_KEY), got "
            "'require'");
  EXPECT_EQ(ErrorOf({{"BULWARK_TLS_CLIENT_AUTH", "none"}}), "");
  EXPECT_EQ(ErrorOf({{"REDIS_SENTINELS", "s:26379"}}),
            "REDIS_MASTER_NAME: required when REDIS_SENTINELS is set");
  EXPECT_EQ(ErrorOf({{"CLUSTER_ENABLED", "true"}}),
            "CLUSTER_ENABLED: needs REDIS_HOSTS (the cluster seeds), got 'true'");
  EXPECT_EQ(ErrorOf({{"CLUSTER_ENABLED", "false"}}), "");
  EXPECT_EQ(ErrorOf({{"CLUSTER_ENABLED", "true"},
                     {"REDIS_HOSTS", "r:6379"},
                     {"REDIS_SENTINELS", "s:26379"},
                     {"REDIS_MASTER_NAME", "m"}}),
            "CLUSTER_ENABLED: cannot be combined with REDIS_SENTINELS, got 'true'");
  EXPECT_EQ(
      ErrorOf({{"BULWARK_REFRESH_IDLE_TTL", "7200"}, {"BULWARK_REFRESH_ABSOLUTE_TTL", "3600"}}),
      "BULWARK_REFRESH_IDLE_TTL: must not exceed BULWARK_REFRESH_ABSOLUTE_TTL (3600), got "
      "'7200'");
  EXPECT_EQ(
      ErrorOf({{"BULWARK_REFRESH_IDLE_TTL", "3600"}, {"BULWARK_REFRESH_ABSOLUTE_TTL", "3600"}}),
      "");
}

TEST(ConfigTest, HashPriority) {
  auto defaults = LoadServeConfig([](const std::string&) { return std::nullopt; }, {});
  ASSERT_TRUE(defaults.ok());
  EXPECT_EQ(defaults->hash_priority, HashPriority::kIdle);
  auto low = LoadServeConfig([](const std::string&) { return std::nullopt; },
                             {{"BULWARK_HASH_PRIORITY", "LOW"}});
  ASSERT_TRUE(low.ok());
  EXPECT_EQ(low->hash_priority, HashPriority::kLow);
  EXPECT_EQ(ErrorOf({{"BULWARK_HASH_PRIORITY", "realtime"}}).rfind("BULWARK_HASH_PRIORITY: ", 0),
            0u);
}

TEST(ConfigTest, RefreshAndRevocationSettings) {
  auto defaults = LoadServeConfig([](const std::string&) { return std::nullopt; }, {});
  ASSERT_TRUE(defaults.ok());
  EXPECT_EQ(defaults->refresh_idle_ttl_seconds, 86400);
  EXPECT_EQ(defaults->refresh_absolute_ttl_seconds, 30 * 86400);
  EXPECT_EQ(defaults->refresh_grace_seconds, 10);
  EXPECT_EQ(defaults->revocation_recheck, std::chrono::milliseconds(1000));
  EXPECT_EQ(ErrorOf({{"BULWARK_REFRESH_GRACE", "301"}}),
            "BULWARK_REFRESH_GRACE: must be between 0 and 300, got '301'");
  EXPECT_EQ(ErrorOf({{"BULWARK_REFRESH_IDLE_TTL", "0"}}).rfind("BULWARK_REFRESH_IDLE_TTL: ", 0),
            0u);
  EXPECT_EQ(
      ErrorOf({{"BULWARK_REVOCATION_RECHECK", "-1"}}).rfind("BULWARK_REVOCATION_RECHECK: ", 0), 0u);
}

TEST(ConfigTest, EverySettingHasAUniqueVariableFlagAndHelp) {
  const std::vector<SettingSpec>& settings = ServeSettings();
  // One per ServeConfig field (listen_host and listen_port share BULWARK_LISTEN).
  const std::set<std::string> expected = {
      "BULWARK_LISTEN",
      "BULWARK_DATA_DIR",
      "BULWARK_ISSUER",
      "DB_HOST",
      "DATABASE_URL",
      "REDIS_HOSTS",
      "CLUSTER_ENABLED",
      "REDIS_SENTINELS",
      "REDIS_MASTER_NAME",
      "REDIS_PASSWORD",
      "REDIS_TLS",
      "REDIS_USERNAME",
      "BULWARK_REDIS_TLS_CA",
      "BULWARK_SESSION_CACHE_SIZE",
      "BULWARK_SESSION_DURABILITY",
      "BULWARK_SESSION_TTL",
      "BULWARK_SESSION_SLIDING",
      "BULWARK_ACCESS_TOKEN_TTL",
      "BULWARK_ACCESS_TOKEN_AUDIENCE",
      "BULWARK_REFRESH_IDLE_TTL",
      "BULWARK_REFRESH_ABSOLUTE_TTL",
      "BULWARK_REFRESH_GRACE",
      "BULWARK_REVOCATION_RECHECK",
      "BULWARK_SIGNING_ALGORITHM",
      "BULWARK_JWKS_MAX_AGE",
      "BULWARK_KEY_ROTATION_DAYS",
      "BULWARK_KEY_REFRESH_INTERVAL",
      "BULWARK_DRAIN_DELAY",
      "BULWARK_SHUTDOWN_TIMEOUT",
      "BULWARK_TLS_CERT",
      "BULWARK_TLS_KEY",
      "BULWARK_TLS_CLIENT_CA",
      "BULWARK_TLS_CLIENT_AUTH",
      "BULWARK_MASTER_KEY",
      "BULWARK_LOG_FORMAT",
      "BULWARK_REPLICA_ID",
      "BULWARK_ARGON2_ITERATIONS",
      "BULWARK_ARGON2_MEMORY_KIB",
      "BULWARK_IO_THREADS",
      "BULWARK_HASH_THREADS",
      "BULWARK_HASH_PRIORITY",
      "BULWARK_STORE_THREADS",
      "BULWARK_MAX_BODY_BYTES",
      "BULWARK_MAX_HEADER_BYTES",
      "BULWARK_READ_TIMEOUT",
      "BULWARK_IDLE_TIMEOUT",
      "BULWARK_COOKIE_SECURE",
      "BULWARK_PURGE_INTERVAL",
  };
  std::set<std::string> envs;
  std::set<std::string> flags;
  for (const SettingSpec& s : settings) {
    EXPECT_TRUE(envs.insert(s.env).second) << "duplicate " << s.env;
    EXPECT_TRUE(flags.insert(s.flag).second) << "duplicate " << s.flag;
    EXPECT_TRUE(s.flag.starts_with("--")) << s.flag;
    EXPECT_EQ(s.flag.find('_'), std::string::npos) << s.flag;
    EXPECT_NE(s.help.find("default"), std::string::npos) << s.env << ": " << s.help;
    EXPECT_EQ(s.help.find('\n'), std::string::npos) << s.env;
  }
  EXPECT_EQ(envs, expected);
  EXPECT_EQ(settings.size(), expected.size());
}

TEST(ConfigTest, FlagNamesFollowTheVariables) {
  std::map<std::string, std::string> flag_of;
  for (const SettingSpec& s : ServeSettings()) flag_of[s.env] = s.flag;
  EXPECT_EQ(flag_of["BULWARK_LISTEN"], "--listen");
  EXPECT_EQ(flag_of["BULWARK_DATA_DIR"], "--data-dir");
  EXPECT_EQ(flag_of["BULWARK_SESSION_TTL"], "--session-ttl");
  EXPECT_EQ(flag_of["DB_HOST"], "--db-host");
  EXPECT_EQ(flag_of["DATABASE_URL"], "--database-url");
  EXPECT_EQ(flag_of["REDIS_HOSTS"], "--redis-hosts");
  EXPECT_EQ(flag_of["CLUSTER_ENABLED"], "--cluster-enabled");
  EXPECT_EQ(flag_of["BULWARK_ARGON2_MEMORY_KIB"], "--argon2-memory-kib");
}

// Defaulted operator==: every field, so a new setting cannot escape the comparison.
bool SameConfig(const ServeConfig& x, const ServeConfig& y) { return x == y; }

// Every setting takes effect: starting from a complete valid environment, giving one
// variable another valid value changes the configuration. Nothing in the table is ignored.
TEST(ConfigTest, EverySettingTakesEffect) {
  // Two valid values per variable; all the first values are valid together.
  const std::map<std::string, std::pair<std::string, std::string>> samples = {
      {"BULWARK_LISTEN", {"127.0.0.1:9", "[::1]:9"}},
      {"BULWARK_DATA_DIR", {"/d", "/e"}},
      {"BULWARK_ISSUER", {"https://i", "https://j"}},
      {"DB_HOST", {"db", "db2"}},
      {"DATABASE_URL", {"postgresql://db/x", "postgres://db/y"}},
      {"REDIS_HOSTS", {"r:1", "r:2"}},
      {"CLUSTER_ENABLED", {"false", "true"}},
      {"REDIS_SENTINELS", {"s:1", "s:2"}},
      {"REDIS_MASTER_NAME", {"m", "n"}},
      {"REDIS_PASSWORD", {"p", "q"}},
      {"REDIS_TLS", {"false", "true"}},
      {"REDIS_USERNAME", {"a", "b"}},
      {"BULWARK_REDIS_TLS_CA", {"/a.pem", "/b.pem"}},
      {"BULWARK_SESSION_CACHE_SIZE", {"0", "5"}},
      {"BULWARK_SESSION_DURABILITY", {"redis+db", "redis"}},
      {"BULWARK_SESSION_TTL", {"1", "2"}},
      {"BULWARK_SESSION_SLIDING", {"false", "true"}},
      {"BULWARK_ACCESS_TOKEN_TTL", {"1", "2"}},
      {"BULWARK_ACCESS_TOKEN_AUDIENCE", {"api", "api2"}},
      {"BULWARK_REFRESH_IDLE_TTL", {"1", "2"}},
      {"BULWARK_REFRESH_ABSOLUTE_TTL", {"10", "20"}},
      {"BULWARK_REFRESH_GRACE", {"0", "5"}},
      {"BULWARK_REVOCATION_RECHECK", {"0", "0.25"}},
      {"BULWARK_SIGNING_ALGORITHM", {"ES256", "eddsa"}},
      {"BULWARK_JWKS_MAX_AGE", {"0", "1"}},
      {"BULWARK_KEY_ROTATION_DAYS", {"0", "30"}},
      {"BULWARK_KEY_REFRESH_INTERVAL", {"1", "2"}},
      {"BULWARK_DRAIN_DELAY", {"1", "2"}},
      {"BULWARK_SHUTDOWN_TIMEOUT", {"1", "2"}},
      {"BULWARK_TLS_CERT", {"c", "c2"}},
      {"BULWARK_TLS_KEY", {"k", "k2"}},
      {"BULWARK_TLS_CLIENT_CA", {"ca", "ca2"}},
      {"BULWARK_TLS_CLIENT_AUTH", {"optional", "require"}},
      {"BULWARK_MASTER_KEY", {"mk", "mk2"}},
      {"BULWARK_LOG_FORMAT", {"json", "text"}},
      {"BULWARK_REPLICA_ID", {"r", "s"}},
      {"BULWARK_ARGON2_ITERATIONS", {"1", "2"}},
      {"BULWARK_ARGON2_MEMORY_KIB", {"8", "9"}},
      {"BULWARK_IO_THREADS", {"1000", "1001"}},
      {"BULWARK_HASH_THREADS", {"1000", "1001"}},
      {"BULWARK_HASH_PRIORITY", {"idle", "normal"}},
      {"BULWARK_STORE_THREADS", {"1", "2"}},
      {"BULWARK_MAX_BODY_BYTES", {"1", "2"}},
      {"BULWARK_MAX_HEADER_BYTES", {"1", "2"}},
      {"BULWARK_READ_TIMEOUT", {"1", "2"}},
      {"BULWARK_IDLE_TIMEOUT", {"1", "2"}},
      {"BULWARK_COOKIE_SECURE", {"true", "false"}},
      {"BULWARK_PURGE_INTERVAL", {"1", "2"}},
  };
  ASSERT_EQ(samples.size(), ServeSettings().size());
  Env base;
  for (const auto& [env, values] : samples) base[env] = values.first;
  for (const SettingSpec& spec : ServeSettings()) {
    ASSERT_TRUE(samples.count(spec.env)) << spec.env;
    Env a = base;
    if (spec.env == "CLUSTER_ENABLED") a.erase("REDIS_SENTINELS");  // cluster excludes sentinels
    Env b = a;
    b[spec.env] = samples.at(spec.env).second;
    Result<ServeConfig> x = Load(a);
    Result<ServeConfig> y = Load(b);
    ASSERT_TRUE(x.ok()) << spec.env << ": " << x.error().message();
    ASSERT_TRUE(y.ok()) << spec.env << ": " << y.error().message();
    EXPECT_FALSE(SameConfig(*x, *y)) << spec.env << " had no effect";
  }
}

TEST(ConfigTest, ProcessEnvironmentReadsTheRealEnvironment) {
  const EnvLookup env = ProcessEnvironment();
  ASSERT_EQ(setenv("BULWARK_CONFIG_TEST_VAR", "value", 1), 0);
  EXPECT_EQ(env("BULWARK_CONFIG_TEST_VAR"), std::optional<std::string>("value"));
  ASSERT_EQ(unsetenv("BULWARK_CONFIG_TEST_VAR"), 0);
  EXPECT_EQ(env("BULWARK_CONFIG_TEST_VAR"), std::nullopt);
}

}  // namespace
}  // namespace bulwark

namespace bulwark {
namespace {

TEST(ConfigKeysTest, AccessTokenAndKeySettings) {
  auto defaults = LoadServeConfig([](const std::string&) { return std::nullopt; }, {});
  ASSERT_TRUE(defaults.ok());
  EXPECT_EQ(defaults->access_token_audience, defaults->issuer);
  EXPECT_EQ(defaults->signing_algorithm, "ES256");
  EXPECT_EQ(defaults->jwks_max_age_seconds, 300);
  EXPECT_EQ(defaults->key_rotation_days, 0);
  EXPECT_EQ(defaults->key_refresh_interval_seconds, 5);

  std::map<std::string, std::string> env = {{"BULWARK_ISSUER", "https://auth.example"},
                                            {"BULWARK_SIGNING_ALGORITHM", "EdDSA"},
                                            {"BULWARK_JWKS_MAX_AGE", "60"},
                                            {"BULWARK_KEY_ROTATION_DAYS", "30"},
                                            {"BULWARK_KEY_REFRESH_INTERVAL", "2"}};
  auto c = LoadServeConfig(
      [&env](const std::string& name) -> std::optional<std::string> {
        auto it = env.find(name);
        if (it == env.end()) return std::nullopt;
        return it->second;
      },
      {{"BULWARK_ACCESS_TOKEN_AUDIENCE", "orders-api"}});
  ASSERT_TRUE(c.ok()) << c.error().message();
  EXPECT_EQ(c->access_token_audience, "orders-api");
  EXPECT_EQ(c->signing_algorithm, "EdDSA");
  EXPECT_EQ(c->jwks_max_age_seconds, 60);
  EXPECT_EQ(c->key_rotation_days, 30);
  EXPECT_EQ(c->key_refresh_interval_seconds, 2);
}

}  // namespace
}  // namespace bulwark
