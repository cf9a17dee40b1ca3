// Local validation of Bulwark's JWT access tokens from a cached JWKS
// (GET /.well-known/jwks.json), so that validation keeps working while every
// Bulwark replica is down (SPEC §3, docs/client.md).
//
// The key set is fetched through a Client (retries, breakers, failover), kept
// for the JWKS's Cache-Control max-age (clamped), refetched when a token names
// an unknown kid (at most once per min_refetch_interval) and, when a refetch
// fails, the cached keys go on being used. Thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "bulwark/client/client.hpp"

namespace bulwark::client {

struct TokenValidatorOptions {
  std::string issuer;                         // required "iss"
  std::string audience;                       // required member of "aud" (empty: not checked)
  std::chrono::seconds leeway{5};             // for exp / nbf / iat
  std::chrono::seconds default_max_age{300};  // when the JWKS has no max-age
  std::chrono::seconds min_max_age{10};       // floor for a tiny or "no-store" max-age
  std::chrono::seconds max_max_age{86400};    // ceiling
  std::chrono::milliseconds min_refetch_interval{5000};  // between fetches for unknown kids
                                                         // and after a failed fetch
  // Test hook: the clock for exp and for the cache (default std::chrono::system_clock).
  std::function<std::chrono::system_clock::time_point()> now;
};

struct TokenClaims {
  std::string iss, sub, jti, client_id, scope, username;
  std::vector<std::string> aud, roles;
  int64_t exp = 0, iat = 0;
};

struct LocalValidation {
  Outcome outcome = Outcome::kUnavailable;  // kUnavailable: no usable keys (never "invalid")
  TokenClaims claims;
  std::string error;
};

struct JwksCacheStats {
  uint64_t fetches = 0;         // successful JWKS fetches
  uint64_t fetch_failures = 0;  // fetches that found Bulwark unavailable
  uint64_t unknown_kid_refetches = 0;
  uint64_t refetches_suppressed = 0;  // unknown kid, but a fetch happened too recently
  std::size_t keys = 0;
  bool have_keys = false;
};

class TokenValidator {
 public:
  TokenValidator(Client& client, TokenValidatorOptions options);
  ~TokenValidator();
  TokenValidator(const TokenValidator&) = delete;
  TokenValidator& operator=(const TokenValidator&) = delete;

  LocalValidation Validate(const std::string& token);
  // Fetches the JWKS now (e.g. at start-up, to survive an outage that comes
  // before the first token). True on success.
  bool Prefetch();
  JwksCacheStats Stats() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

// True when `token` has the shape of a compact JWS (three base64url parts);
// Bulwark's session tokens do not.
bool LooksLikeJwt(const std::string& token);

// Parses "max-age=N" out of a Cache-Control value; -1 when absent.
int64_t CacheControlMaxAge(const std::string& cache_control);

}  // namespace bulwark::client
