// Validates Bulwark's own JWT access tokens for /v1/auth/verify, logout,
// introspection and revocation: signature, issuer and times against the
// signing keys every replica shares, then the revoked-jti list.
//
// A token presented again is answered from memory: its claims are cached by
// the SHA-256 of the whole token until its exp, and a "not revoked" answer
// from the revocation store is trusted for `revocation_recheck`. A revocation
// made through this replica is seen at once; one made through another replica
// within that interval (SPEC §3 leaves it to the implementation; a JWT
// verified by an application offline never sees revocations at all).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "core/clock.hpp"
#include "core/result.hpp"
#include "jwt/jwt.hpp"
#include "metrics/registry.hpp"
#include "service/key_service.hpp"
#include "storage/revocation_store.hpp"

namespace bulwark {

struct AccessTokenVerifierOptions {
  std::string issuer;
  int64_t leeway_seconds = 30;  // clock skew allowed for exp / nbf / iat
  std::size_t cache_entries = 10000;
  std::chrono::milliseconds revocation_recheck{1000};
};

using VerifiedClaims = std::shared_ptr<const jwt::Claims>;

// Thread-safe.
class AccessTokenVerifier {
 public:
  AccessTokenVerifier(KeyService& keys, RevocationStore& revocations, const Clock& clock,
                      metrics::Registry& metrics, AccessTokenVerifierOptions options);

  // The claims of a valid, unrevoked token; `audience` non-empty: "aud" must
  // contain it. kUnauthorized ("invalid access token: <reason>", "revoked
  // access token"); kUnavailable when the revocation store cannot answer.
  // May block on the revocation store.
  Result<VerifiedClaims> Verify(std::string_view token, std::string_view audience);

  // Verify without blocking: the answer when the token is cached and its
  // revocation check is recent, nullopt when Verify has to do more work.
  std::optional<Result<VerifiedClaims>> VerifyCached(std::string_view token,
                                                     std::string_view audience);

  // Revokes a verified token until it would have expired anyway (plus the
  // leeway) and forgets it here at once. kUnavailable on store failure.
  Status Revoke(std::string_view token, const jwt::Claims& claims);

  const AccessTokenVerifierOptions& options() const { return options_; }

 private:
  struct Entry {
    VerifiedClaims claims;
    std::chrono::steady_clock::time_point revocation_checked_at;
  };
  enum class Lookup { kMiss, kStale, kFresh };
  Lookup Find(const std::string& key, int64_t now, Entry& out);
  void Remember(const std::string& key, Entry entry, int64_t now);
  void Forget(const std::string& key);
  Result<VerifiedClaims> CheckAudience(VerifiedClaims claims, std::string_view audience) const;

  KeyService& keys_;
  RevocationStore& revocations_;
  const Clock& clock_;
  AccessTokenVerifierOptions options_;
  metrics::Counter& cache_hits_;
  metrics::Counter& cache_misses_;
  std::atomic<uint64_t> local_revocations_{0};
  std::mutex mutex_;
  std::unordered_map<std::string, Entry> cache_;  // GUARDED_BY(mutex_), by SHA-256 of the token
};

}  // namespace bulwark
