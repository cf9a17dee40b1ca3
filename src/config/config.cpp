#include "config/config.hpp"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <limits>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <variant>
#include <vector>

namespace bulwark {
namespace {

// Upper bounds that keep later arithmetic (seconds -> milliseconds, TTL + now) far from
// overflow while being far beyond any sensible value.
constexpr uint64_t kMaxTtlSeconds = 10ULL * 365 * 24 * 3600;  // ten years
constexpr double kMaxDurationSeconds = 24 * 3600;             // one day
constexpr uint64_t kMaxThreads = 1024;
constexpr uint64_t kMaxBytes = 1ULL << 30;            // 1 GiB
constexpr uint64_t kMaxArgon2MemoryKib = 4ULL << 20;  // 4 GiB, as the hasher allows
constexpr std::size_t kMaxEchoedValue = 200;

// What is wrong with a value (no variable name, no value), or nothing.
using Problem = std::optional<std::string>;
using Apply = std::function<Problem(const std::string& value, ServeConfig& config)>;

struct Setting {
  SettingSpec spec;
  Apply apply;
};

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// "BULWARK_SESSION_TTL" -> "--session-ttl", "DB_HOST" -> "--db-host".
std::string FlagFor(std::string_view env) {
  constexpr std::string_view kPrefix = "BULWARK_";
  if (env.starts_with(kPrefix)) env.remove_prefix(kPrefix.size());
  std::string flag = "--" + Lower(env);
  std::replace(flag.begin(), flag.end(), '_', '-');
  return flag;
}

// The value as it may appear inside '...' on one line: control characters escaped,
// long values cut.
std::string Echo(std::string_view value) {
  std::string out;
  for (char c : value.substr(0, kMaxEchoedValue)) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", u);
      out += buf;
    } else {
      out += c;
    }
  }
  if (value.size() > kMaxEchoedValue) out += "...";
  return out;
}

Error Invalid(const SettingSpec& spec, const std::string& value, const std::string& problem) {
  if (spec.secret) return Error::InvalidArgument(spec.env + ": " + problem);
  return Error::InvalidArgument(spec.env + ": " + problem + ", got '" + Echo(value) + "'");
}

bool AllDigits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// Decimal digits only: no sign, no spaces, no trailing characters.
std::optional<uint64_t> ParseUnsigned(std::string_view s, bool* overflow) {
  *overflow = false;
  if (!AllDigits(s)) return std::nullopt;
  uint64_t v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec == std::errc::result_out_of_range) {
    *overflow = true;
    return std::nullopt;
  }
  if (ec != std::errc() || ptr != s.data() + s.size()) return std::nullopt;
  return v;
}

Problem CheckRange(uint64_t v, uint64_t min, uint64_t max) {
  if (v < min || v > max) {
    return "must be between " + std::to_string(min) + " and " + std::to_string(max);
  }
  return std::nullopt;
}

template <typename T>
Apply Integer(T ServeConfig::*field, uint64_t min, uint64_t max) {
  return [field, min, max](const std::string& value, ServeConfig& config) -> Problem {
    bool overflow = false;
    const std::optional<uint64_t> v = ParseUnsigned(value, &overflow);
    if (!v) {
      if (overflow) return "must be at most " + std::to_string(max);
      return min == 0 ? "expected a non-negative integer" : "expected a positive integer";
    }
    if (Problem p = CheckRange(*v, min, max)) return p;
    config.*field = static_cast<T>(*v);
    return std::nullopt;
  };
}

// Seconds as "5", "0.5" or ".25": digits with at most one decimal point, nothing else.
Apply Seconds(std::chrono::milliseconds ServeConfig::*field, bool allow_zero) {
  return [field, allow_zero](const std::string& value, ServeConfig& config) -> Problem {
    const std::string what = allow_zero ? "expected a non-negative number of seconds"
                                        : "expected a positive number of seconds";
    const std::size_t dot = value.find('.');
    const bool shape_ok = dot == std::string::npos
                              ? AllDigits(value)
                              : value.find('.', dot + 1) == std::string::npos && value.size() > 1 &&
                                    std::all_of(value.begin(), value.end(), [](char c) {
                                      return c == '.' || (c >= '0' && c <= '9');
                                    });
    if (!shape_ok) return what;
    double seconds = 0;
    auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), seconds);
    if (ec == std::errc::result_out_of_range ||
        (ec == std::errc() && seconds > kMaxDurationSeconds)) {
      return "must be at most " + std::to_string(static_cast<int64_t>(kMaxDurationSeconds));
    }
    if (ec != std::errc() || ptr != value.data() + value.size()) return what;
    const auto ms = static_cast<int64_t>(std::llround(seconds * 1000));
    if (!allow_zero && ms == 0) {
      return seconds == 0 ? what : std::string("must be at least 0.001 seconds");
    }
    config.*field = std::chrono::milliseconds(ms);
    return std::nullopt;
  };
}

std::optional<bool> ParseBool(std::string_view s) {
  const std::string v = Lower(s);
  if (v == "true" || v == "1" || v == "yes") return true;
  if (v == "false" || v == "0" || v == "no") return false;
  return std::nullopt;
}

Apply Bool(bool ServeConfig::*field) {
  return [field](const std::string& value, ServeConfig& config) -> Problem {
    const std::optional<bool> v = ParseBool(value);
    if (!v) return "expected true or false";
    config.*field = *v;
    return std::nullopt;
  };
}

Apply String(std::string ServeConfig::*field) {
  return [field](const std::string& value, ServeConfig& config) -> Problem {
    config.*field = value;
    return std::nullopt;
  };
}

// One of a fixed set of words (case-insensitive).
template <typename T>
Apply OneOf(T ServeConfig::*field, std::vector<std::pair<std::string, T>> choices) {
  return [field, choices = std::move(choices)](const std::string& value,
                                               ServeConfig& config) -> Problem {
    const std::string v = Lower(value);
    std::string names;
    for (const auto& [name, setting] : choices) {
      if (v == name) {
        config.*field = setting;
        return std::nullopt;
      }
      names += (names.empty() ? "" : ", ") + name;
    }
    return "expected one of " + names;
  };
}

bool HasSpaceOrControl(std::string_view s) {
  return std::any_of(s.begin(), s.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u <= 0x20 || u == 0x7f;
  });
}

struct HostPort {
  std::string host;
  uint16_t port = 0;
};

// "host:port", "1.2.3.4:port" or "[v6]:port"; otherwise what is wrong.
std::variant<HostPort, std::string> ParseHostPort(std::string_view s, uint16_t min_port) {
  const std::string shape = "expected host:port (IPv6 in brackets, e.g. [::1]:8080)";
  std::string_view host;
  std::string_view port;
  if (s.starts_with('[')) {
    const std::size_t close = s.find(']');
    if (close == std::string_view::npos || close + 1 >= s.size() || s[close + 1] != ':') {
      return shape;
    }
    host = s.substr(1, close - 1);
    port = s.substr(close + 2);
    if (host.empty() || host.find(':') == std::string_view::npos) return shape;
  } else {
    const std::size_t colon = s.rfind(':');
    if (colon == std::string_view::npos) return shape;
    host = s.substr(0, colon);
    port = s.substr(colon + 1);
    if (host.empty() || host.find(':') != std::string_view::npos) return shape;
  }
  if (HasSpaceOrControl(host) || host.find_first_of("/[]@,") != std::string_view::npos) {
    return shape;
  }
  bool overflow = false;
  const std::optional<uint64_t> p = ParseUnsigned(port, &overflow);
  if (!p || *p < min_port || *p > 65535) {
    return "expected a port from " + std::to_string(min_port) + " to 65535";
  }
  return HostPort{std::string(host), static_cast<uint16_t>(*p)};
}

Problem ListenApply(const std::string& value, ServeConfig& config) {
  auto parsed = ParseHostPort(value, /*min_port=*/0);  // 0: any free port (tests)
  if (auto* problem = std::get_if<std::string>(&parsed)) return *problem;
  config.listen_host = std::get<HostPort>(parsed).host;
  config.listen_port = std::get<HostPort>(parsed).port;
  return std::nullopt;
}

// "host:port,host:port,..."
Apply HostList(std::string ServeConfig::*field) {
  return [field](const std::string& value, ServeConfig& config) -> Problem {
    std::size_t start = 0;
    while (true) {
      const std::size_t comma = value.find(',', start);
      const std::string_view item = std::string_view(value).substr(
          start, comma == std::string::npos ? std::string::npos : comma - start);
      auto parsed = ParseHostPort(item, /*min_port=*/1);
      if (std::holds_alternative<std::string>(parsed)) {
        return "expected a comma-separated list of host:port";
      }
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
    config.*field = value;
    return std::nullopt;
  };
}

// PostgreSQL host, optionally with a port: "db", "db:5432", "[::1]:5432" or "::1".
Problem DbHostApply(const std::string& value, ServeConfig& config) {
  const bool ok = !HasSpaceOrControl(value) && value.find_first_of("/@,?") == std::string::npos &&
                  (value.find(':') == std::string::npos ||
                   std::holds_alternative<HostPort>(ParseHostPort(value, /*min_port=*/1)) ||
                   (!value.starts_with('[') && std::count(value.begin(), value.end(), ':') >= 2));
  if (!ok) return "expected a host name or host:port";
  config.db_host = value;
  return std::nullopt;
}

Problem DatabaseUrlApply(const std::string& value, ServeConfig& config) {
  const std::string v = Lower(value);
  const bool scheme_ok = (v.starts_with("postgres://") && v.size() > 11) ||
                         (v.starts_with("postgresql://") && v.size() > 13);
  if (!scheme_ok || HasSpaceOrControl(value)) {
    return "expected a postgres://user:pass@host:port/db URL";
  }
  config.database_url = value;
  return std::nullopt;
}

Problem IssuerApply(const std::string& value, ServeConfig& config) {
  const std::string v = Lower(value);
  const std::size_t scheme = v.starts_with("https://") ? 8 : v.starts_with("http://") ? 7 : 0;
  if (scheme == 0 || v.size() == scheme || HasSpaceOrControl(value) ||
      value.find_first_of("?#") != std::string::npos) {
    return "expected an http:// or https:// URL without query or fragment";
  }
  config.issuer = value;
  return std::nullopt;
}

Problem ReplicaIdApply(const std::string& value, ServeConfig& config) {
  // It lands in log lines, metric labels and event records.
  if (value.size() > 128 || HasSpaceOrControl(value) ||
      std::any_of(value.begin(), value.end(),
                  [](char c) { return static_cast<unsigned char>(c) >= 0x80 || c == '"'; })) {
    return "expected at most 128 printable ASCII characters without spaces or quotes";
  }
  config.replica_id = value;
  return std::nullopt;
}

Setting Make(std::string env, std::string help, Apply apply, bool secret = false) {
  std::string flag = FlagFor(env);
  return Setting{SettingSpec{std::move(env), std::move(flag), std::move(help), secret},
                 std::move(apply)};
}

const std::vector<Setting>& Settings() {
  static const std::vector<Setting> settings = [] {
    using C = ServeConfig;
    std::vector<Setting> s;
    // Listener and identity.
    s.push_back(Make("BULWARK_LISTEN",
                     "Address:port to listen on; [::1]:8080 for IPv6 (default 127.0.0.1:8080)",
                     ListenApply));
    s.push_back(Make("BULWARK_DATA_DIR",
                     "Directory of the embedded SQLite database (default ./bulwark-data)",
                     [](const std::string& v, ServeConfig& c) -> Problem {
                       c.data_dir = v;
                       return std::nullopt;
                     }));
    s.push_back(Make("BULWARK_ISSUER",
                     "Token issuer and OIDC discovery base URL (default http://<listen address>)",
                     IssuerApply));
    s.push_back(Make("BULWARK_REPLICA_ID",
                     "This replica's name in logs, metrics and events (default <hostname>-<pid>)",
                     ReplicaIdApply));
    // Production back-ends.
    s.push_back(
        Make("DB_HOST", "PostgreSQL host[:port] (default unset: embedded SQLite)", DbHostApply));
    s.push_back(Make("DATABASE_URL",
                     "PostgreSQL URL postgres://user:pass@host:port/db?sslmode=... (default unset)",
                     DatabaseUrlApply, /*secret=*/true));  // it usually embeds a password
    s.push_back(Make("REDIS_HOSTS",
                     "Redis host:port,host:port,... (default unset: embedded SQLite)",
                     HostList(&C::redis_hosts)));
    s.push_back(Make("CLUSTER_ENABLED",
                     "Treat REDIS_HOSTS as Redis Cluster seeds: true|false (default false)",
                     Bool(&C::cluster_enabled)));
    s.push_back(Make("REDIS_SENTINELS", "Redis Sentinel host:port,host:port,... (default unset)",
                     HostList(&C::redis_sentinels)));
    s.push_back(Make("REDIS_MASTER_NAME",
                     "Sentinel master name; required with REDIS_SENTINELS (default unset)",
                     String(&C::redis_master_name)));
    s.push_back(Make("REDIS_PASSWORD", "Redis password (default unset)", String(&C::redis_password),
                     /*secret=*/true));
    s.push_back(Make("REDIS_TLS", "Connect to Redis over TLS: true|false (default false)",
                     Bool(&C::redis_tls)));
    s.push_back(Make("REDIS_USERNAME", "Redis ACL user for AUTH (default unset: password only)",
                     String(&C::redis_username)));
    s.push_back(Make("BULWARK_REDIS_TLS_CA",
                     "CA bundle (PEM) that signs the Redis servers' certificates (default: the "
                     "system trust store)",
                     String(&C::redis_tls_ca)));
    // Sessions and tokens.
    s.push_back(Make("BULWARK_SESSION_DURABILITY",
                     "redis+db (write sessions through to the database) or redis (default "
                     "redis+db)",
                     OneOf<std::string>(&C::session_durability,
                                        {{"redis+db", "redis+db"}, {"redis", "redis"}})));
    s.push_back(Make("BULWARK_SESSION_CACHE_SIZE",
                     "Sessions read from Redis kept in memory while Redis reports every change "
                     "to them (CLIENT TRACKING); 0 = off (default 10000)",
                     Integer(&C::session_cache_size, 0, 10000000)));
    s.push_back(Make("BULWARK_SESSION_TTL", "Session lifetime in seconds (default 3600)",
                     Integer(&C::session_ttl_seconds, 1, kMaxTtlSeconds)));
    s.push_back(Make("BULWARK_SESSION_SLIDING",
                     "Renew a session's lifetime on each use: true|false (default false)",
                     Bool(&C::session_sliding)));
    s.push_back(Make("BULWARK_ACCESS_TOKEN_TTL", "Access token lifetime in seconds (default 300)",
                     Integer(&C::access_token_ttl_seconds, 1, kMaxTtlSeconds)));
    s.push_back(Make("BULWARK_REFRESH_IDLE_TTL",
                     "Seconds a refresh token may go unused before it lapses (default 86400)",
                     Integer(&C::refresh_idle_ttl_seconds, 1, kMaxTtlSeconds)));
    s.push_back(Make("BULWARK_REFRESH_ABSOLUTE_TTL",
                     "Most seconds a refresh-token family lives, however often it is used "
                     "(default 2592000)",
                     Integer(&C::refresh_absolute_ttl_seconds, 1, kMaxTtlSeconds)));
    s.push_back(Make("BULWARK_REFRESH_GRACE",
                     "Seconds the refresh token just replaced still re-issues, for a client "
                     "that lost the response; 0 = never (default 10)",
                     Integer(&C::refresh_grace_seconds, 0, 300)));
    s.push_back(Make("BULWARK_REVOCATION_RECHECK",
                     "Seconds a replica trusts what it read about an access token's revocation "
                     "or an OAuth client; a revocation or a client deleted through another "
                     "replica takes up to this long here, 0 = ask the store every time "
                     "(default 1)",
                     Seconds(&C::revocation_recheck, /*allow_zero=*/true)));
    s.push_back(Make("BULWARK_ACCESS_TOKEN_AUDIENCE",
                     "The aud claim of access tokens (default: the issuer)",
                     String(&C::access_token_audience)));
    s.push_back(Make(
        "BULWARK_SIGNING_ALGORITHM", "Algorithm of new signing keys: ES256|EdDSA (default ES256)",
        OneOf<std::string>(&C::signing_algorithm, {{"es256", "ES256"}, {"eddsa", "EdDSA"}})));
    s.push_back(Make("BULWARK_JWKS_MAX_AGE",
                     "Seconds clients may cache the JWKS; a new key is published this long "
                     "before it signs (default 300)",
                     Integer(&C::jwks_max_age_seconds, 0, 7 * 24 * 3600)));
    s.push_back(Make("BULWARK_KEY_ROTATION_DAYS",
                     "Rotate the signing key automatically every N days, 0 = only on demand "
                     "(default 0)",
                     Integer(&C::key_rotation_days, 0, 3650)));
    s.push_back(Make("BULWARK_KEY_REFRESH_INTERVAL",
                     "Seconds between reloads of the signing keys from the store (default 5)",
                     Integer(&C::key_refresh_interval_seconds, 1, 3600)));
    s.push_back(Make("BULWARK_PURGE_INTERVAL",
                     "Seconds between purges of expired sessions (default 60)",
                     Integer(&C::purge_interval_seconds, 1, kMaxTtlSeconds)));
    s.push_back(Make("BULWARK_COOKIE_SECURE",
                     "Mark the session cookie Secure; false only for plain-http development: "
                     "true|false (default true)",
                     Bool(&C::cookie_secure)));
    // Lifecycle.
    s.push_back(Make("BULWARK_DRAIN_DELAY",
                     "Seconds between SIGTERM and closing the listener, fractions allowed "
                     "(default 5)",
                     Seconds(&C::drain_delay, /*allow_zero=*/true)));
    s.push_back(Make("BULWARK_SHUTDOWN_TIMEOUT",
                     "Most seconds to finish in-flight work after draining (default 25)",
                     Seconds(&C::shutdown_timeout, /*allow_zero=*/false)));
    // TLS.
    s.push_back(Make("BULWARK_TLS_CERT", "PEM certificate chain; enables TLS (default unset)",
                     String(&C::tls_cert)));
    s.push_back(Make("BULWARK_TLS_KEY", "PEM private key of BULWARK_TLS_CERT (default unset)",
                     String(&C::tls_key)));
    s.push_back(Make("BULWARK_TLS_CLIENT_CA",
                     "PEM CA bundle that client certificates must chain to (default unset)",
                     String(&C::tls_client_ca)));
    s.push_back(
        Make("BULWARK_TLS_CLIENT_AUTH", "Client certificates: none|optional|require (default none)",
             OneOf<TlsClientAuth>(&C::tls_client_auth, {{"none", TlsClientAuth::kNone},
                                                        {"optional", TlsClientAuth::kOptional},
                                                        {"require", TlsClientAuth::kRequire}})));
    s.push_back(Make("BULWARK_MASTER_KEY", "Encrypts signing keys at rest (default unset)",
                     String(&C::master_key), /*secret=*/true));
    // Logging.
    s.push_back(Make("BULWARK_LOG_FORMAT", "Log format: json|text (default json)",
                     OneOf<LogFormatSetting>(&C::log_format, {{"json", LogFormatSetting::kJson},
                                                              {"text", LogFormatSetting::kText}})));
    // Password hashing.
    s.push_back(Make("BULWARK_ARGON2_ITERATIONS", "Argon2id iterations (default 2)",
                     Integer(&C::argon2_iterations, 1, std::numeric_limits<uint32_t>::max())));
    s.push_back(Make("BULWARK_ARGON2_MEMORY_KIB", "Argon2id memory in KiB (default 19456)",
                     Integer(&C::argon2_memory_kib, 8, kMaxArgon2MemoryKib)));
    // Threads.
    s.push_back(Make("BULWARK_IO_THREADS", "Network I/O threads, 0 = one per core (default 0)",
                     Integer(&C::io_threads, 0, kMaxThreads)));
    s.push_back(Make("BULWARK_HASH_THREADS",
                     "Password hashing threads, 0 = one per core (default 0)",
                     Integer(&C::hash_threads, 0, kMaxThreads)));
    s.push_back(Make("BULWARK_HASH_PRIORITY",
                     "Scheduling of the hashing threads: idle (SCHED_IDLE: run only when no "
                     "other thread of the same cgroup wants the CPU), low (nice 19) or normal "
                     "(default idle)",
                     OneOf<HashPriority>(&C::hash_priority, {{"idle", HashPriority::kIdle},
                                                             {"low", HashPriority::kLow},
                                                             {"normal", HashPriority::kNormal}})));
    s.push_back(Make("BULWARK_STORE_THREADS", "Blocking store call threads (default 8)",
                     Integer(&C::store_threads, 1, kMaxThreads)));
    // HTTP limits.
    s.push_back(Make("BULWARK_MAX_BODY_BYTES", "Largest request body in bytes (default 1048576)",
                     Integer(&C::max_body_bytes, 1, kMaxBytes)));
    s.push_back(Make("BULWARK_MAX_HEADER_BYTES",
                     "Largest request header block in bytes (default 16384)",
                     Integer(&C::max_header_bytes, 1, kMaxBytes)));
    s.push_back(Make("BULWARK_READ_TIMEOUT",
                     "Seconds to receive a whole request, fractions allowed (default 10)",
                     Seconds(&C::read_timeout, /*allow_zero=*/false)));
    s.push_back(Make("BULWARK_IDLE_TIMEOUT",
                     "Seconds a keep-alive connection may stay idle, fractions allowed (default "
                     "60)",
                     Seconds(&C::idle_timeout, /*allow_zero=*/false)));
    return s;
  }();
  return settings;
}

std::string DefaultReplicaId() {
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) != 0 || host[0] == '\0') {
    std::snprintf(host, sizeof host, "localhost");
  }
  return std::string(host) + "-" + std::to_string(getpid());
}

int ResolveThreads(int configured) {
  if (configured > 0) return configured;
  return std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
}

}  // namespace

const std::vector<SettingSpec>& ServeSettings() {
  static const std::vector<SettingSpec> specs = [] {
    std::vector<SettingSpec> out;
    for (const Setting& s : Settings()) out.push_back(s.spec);
    return out;
  }();
  return specs;
}

EnvLookup ProcessEnvironment() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* v = std::getenv(name.c_str());
    if (v == nullptr) return std::nullopt;
    return std::string(v);
  };
}

Result<ServeConfig> LoadServeConfig(const EnvLookup& env,
                                    const std::map<std::string, std::string>& flag_values) {
  for (const auto& [key, value] : flag_values) {
    const auto& s = Settings();
    if (std::none_of(s.begin(), s.end(), [&](const Setting& x) { return x.spec.env == key; })) {
      return Error::InvalidArgument("unknown setting '" + Echo(key) + "'");
    }
  }

  ServeConfig config;
  // The raw text of every setting that was given (flag or environment), for the
  // cross-checks below. An empty value counts as unset.
  std::map<std::string, std::string> given;
  for (const Setting& setting : Settings()) {
    std::optional<std::string> raw;
    if (auto flag = flag_values.find(setting.spec.env); flag != flag_values.end()) {
      raw = flag->second;  // the flag wins, even over a set variable
    } else {
      raw = env(setting.spec.env);
    }
    if (!raw || raw->empty()) continue;
    if (Problem problem = setting.apply(*raw, config)) {
      return Invalid(setting.spec, *raw, *problem);
    }
    given[setting.spec.env] = *raw;
  }

  auto is_given = [&](const std::string& env_name) { return given.count(env_name) > 0; };
  auto missing = [](const std::string& env_name, const std::string& reason) {
    return Error::InvalidArgument(env_name + ": " + reason);
  };
  if (is_given("BULWARK_TLS_CERT") && !is_given("BULWARK_TLS_KEY")) {
    return missing("BULWARK_TLS_KEY", "required when BULWARK_TLS_CERT is set");
  }
  if (is_given("BULWARK_TLS_KEY") && !is_given("BULWARK_TLS_CERT")) {
    return missing("BULWARK_TLS_CERT", "required when BULWARK_TLS_KEY is set");
  }
  if (config.tls_client_auth != TlsClientAuth::kNone) {
    const std::string& auth = given["BULWARK_TLS_CLIENT_AUTH"];
    if (!is_given("BULWARK_TLS_CERT")) {
      return Error::InvalidArgument(
          "BULWARK_TLS_CLIENT_AUTH: needs TLS (BULWARK_TLS_CERT and BULWARK_TLS_KEY), got '" +
          Echo(auth) + "'");
    }
    if (!is_given("BULWARK_TLS_CLIENT_CA")) {
      return missing("BULWARK_TLS_CLIENT_CA",
                     "required when BULWARK_TLS_CLIENT_AUTH is " + Lower(auth));
    }
  }
  if (is_given("REDIS_SENTINELS") && !is_given("REDIS_MASTER_NAME")) {
    return missing("REDIS_MASTER_NAME", "required when REDIS_SENTINELS is set");
  }
  if (config.cluster_enabled) {
    if (!is_given("REDIS_HOSTS")) {
      return Error::InvalidArgument(
          "CLUSTER_ENABLED: needs REDIS_HOSTS (the cluster seeds), got '" +
          Echo(given["CLUSTER_ENABLED"]) + "'");
    }
    if (is_given("REDIS_SENTINELS")) {
      return Error::InvalidArgument(
          "CLUSTER_ENABLED: cannot be combined with REDIS_SENTINELS, got '" +
          Echo(given["CLUSTER_ENABLED"]) + "'");
    }
  }

  if (config.refresh_idle_ttl_seconds > config.refresh_absolute_ttl_seconds) {
    return Error::InvalidArgument(
        "BULWARK_REFRESH_IDLE_TTL: must not exceed BULWARK_REFRESH_ABSOLUTE_TTL (" +
        std::to_string(config.refresh_absolute_ttl_seconds) + "), got '" +
        std::to_string(config.refresh_idle_ttl_seconds) + "'");
  }

  if (config.issuer.empty()) config.issuer = "http://" + ListenAddress(config);
  if (config.access_token_audience.empty()) config.access_token_audience = config.issuer;
  if (config.replica_id.empty()) config.replica_id = DefaultReplicaId();
  config.io_threads = ResolveThreads(config.io_threads);
  config.hash_threads = ResolveThreads(config.hash_threads);
  return config;
}

std::string ListenAddress(const ServeConfig& config) {
  const bool ipv6 = config.listen_host.find(':') != std::string::npos;
  return (ipv6 ? "[" + config.listen_host + "]" : config.listen_host) + ":" +
         std::to_string(config.listen_port);
}

}  // namespace bulwark
