// libbulwark-client: talk to Bulwark from an application (docs/client.md).
//
// A Client holds a list of Bulwark base URLs (replicas or load balancers) and
// sends each call with connect/read timeouts, retries with exponential backoff
// and full jitter (idempotent calls only), a circuit breaker per base URL and
// failover to the next URL whose breaker lets calls through. Every answer is
// one of three outcomes: valid, invalid credential (never retried) or
// unavailable (Bulwark could not answer; never reported as invalid).
//
// Thread-safe: one Client is meant to be shared by all of an application's threads.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

namespace bulwark::client {

enum class Outcome {
  kValid,        // 2xx: the credential or call is good
  kInvalid,      // 401 (and other 4xx client errors): bad credential; never retried
  kUnavailable,  // connection failures, timeouts, 5xx, 429, open breakers; retried first
};
const char* OutcomeName(Outcome outcome);

// Exponential backoff with full jitter (the AWS architecture blog's "Full
// Jitter"): the delay before retry n (n >= 1) is uniform in
// [0, min(max_delay, base_delay * 2^(n-1))].
struct RetryPolicy {
  int max_attempts = 6;  // attempts per call, over every base URL, first one included
  std::chrono::milliseconds base_delay{25};
  std::chrono::milliseconds max_delay{1000};
  std::chrono::milliseconds call_deadline{10000};  // no new attempt starts after this
};

// The upper bound of the full-jitter window before retry `retry` (>= 1).
std::chrono::milliseconds BackoffCeiling(const RetryPolicy& policy, int retry);
// A full-jitter delay: uniform in [0, BackoffCeiling(policy, retry)].
std::chrono::milliseconds BackoffDelay(const RetryPolicy& policy, int retry, std::mt19937_64& rng);

struct BreakerPolicy {
  int failure_threshold = 3;                      // consecutive failures that open it
  std::chrono::milliseconds open_duration{1000};  // cool-down before one half-open probe
};

enum class FailoverOrder {
  kOrdered,     // every call starts at the first base URL whose breaker is closed
  kRoundRobin,  // calls start at successive base URLs
};

struct ClientOptions {
  // "http://host:port" or "https://host:port", optionally with a path prefix.
  std::vector<std::string> base_urls;
  std::chrono::milliseconds connect_timeout{500};
  std::chrono::milliseconds read_timeout{3000};  // per attempt: write + read of one exchange
  RetryPolicy retry;
  BreakerPolicy breaker;
  FailoverOrder failover = FailoverOrder::kRoundRobin;
  std::string ca_file;  // PEM bundle for https:// URLs (empty: the system's default paths)
  std::size_t max_idle_connections = 8;  // kept-alive connections per base URL
  std::size_t max_response_bytes = 1024 * 1024;
  uint64_t seed = 0;  // jitter seed (0: random)
};

enum class BreakerState { kClosed, kHalfOpen, kOpen };
const char* BreakerStateName(BreakerState state);

// Counters of one base URL since the Client was made.
struct EndpointStats {
  std::string base_url;
  BreakerState state = BreakerState::kClosed;
  uint64_t attempts = 0;      // requests sent (or tried) to it
  uint64_t failures = 0;      // attempts that failed as "unavailable"
  uint64_t rejected = 0;      // skipped because its breaker was open
  uint64_t times_opened = 0;  // closed/half-open -> open
  uint64_t times_half_opened = 0;
  uint64_t times_closed = 0;  // half-open -> closed
  std::string last_failure;   // why its most recent failed attempt failed; empty if none
};

struct ClientStats {
  uint64_t calls = 0;
  uint64_t attempts = 0;
  uint64_t retries = 0;      // attempts after a call's first
  uint64_t failovers = 0;    // retries that went to another base URL than the previous attempt
  uint64_t unavailable = 0;  // calls that ended as kUnavailable
  std::vector<EndpointStats> endpoints;
};

// One HTTP exchange as the caller sees it.
struct Response {
  Outcome outcome = Outcome::kUnavailable;
  int status = 0;  // 0: no HTTP answer (connection failure, timeout, open breakers)
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::string error;     // why, when not kValid
  std::string base_url;  // the base URL that gave the final answer (empty: none)
  int attempts = 0;

  std::optional<std::string> Header(std::string_view name) const;  // case-insensitive
};

// Who a credential belongs to, from /v1/auth/verify's headers.
struct Identity {
  std::string user;                // X-Auth-User
  std::string user_id;             // X-Auth-User-Id
  std::vector<std::string> roles;  // X-Auth-Roles (comma-separated)
};

struct VerifyResult {
  Outcome outcome = Outcome::kUnavailable;
  Identity identity;
  std::string error;
};

struct LoginResult {
  Outcome outcome = Outcome::kUnavailable;
  std::string session_token;
  std::string access_token;   // present when the server issues JWTs
  std::string refresh_token;  // likewise
  int64_t expires_in = 0;
  std::string error;
};

// RFC 7662 answer.
struct IntrospectionResult {
  Outcome outcome = Outcome::kUnavailable;  // kValid: the server answered (see active)
  bool active = false;
  std::string sub, client_id, scope, username;
  int64_t exp = 0;
  std::string error;
};

// Whether a request may be sent again after a failure.
enum class Idempotency {
  kIdempotent,     // retried on any "unavailable" failure
  kNonIdempotent,  // retried only when the connection could not be established
};

struct Request {
  std::string method = "GET";
  std::string target;  // path and query, appended to the base URL's path prefix
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  Idempotency idempotency = Idempotency::kIdempotent;
};

class Client {
 public:
  explicit Client(ClientOptions options);  // throws std::invalid_argument on a bad base URL
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // GET /v1/auth/verify with "Authorization: Bearer <token>" (a session token or a JWT).
  VerifyResult VerifySession(const std::string& token);
  // POST /v1/auth/login: retried only when no connection could be made.
  LoginResult Login(const std::string& username, const std::string& password);
  // POST /v1/auth/logout: idempotent on the server (an ended session answers 204 again),
  // so it is retried like a GET. kValid on 204.
  Outcome Logout(const std::string& token, std::string* error = nullptr);
  // POST /oauth2/introspect (RFC 7662) with client_secret_basic: a read, retried.
  IntrospectionResult Introspect(const std::string& token, const std::string& client_id,
                                 const std::string& client_secret);

  // Any call, with the retry, breaker and failover rules above.
  Response Call(const Request& request);

  ClientStats Stats() const;
  const ClientOptions& options() const;

  // Test hook: replaces the sleep between retries (default std::this_thread::sleep_for).
  void SetSleepForTesting(std::function<void(std::chrono::milliseconds)> sleep);

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

// Percent-encoding for application/x-www-form-urlencoded (RFC 6749 appendix B).
std::string FormEncode(std::string_view value);
std::string Base64Encode(std::string_view bytes);

}  // namespace bulwark::client
