#include "service/access_token_verifier.hpp"

#include <algorithm>
#include <utility>

#include "crypto/tokens.hpp"

namespace bulwark {

AccessTokenVerifier::AccessTokenVerifier(KeyService& keys, RevocationStore& revocations,
                                         const Clock& clock, metrics::Registry& metrics,
                                         AccessTokenVerifierOptions options)
    : keys_(keys),
      revocations_(revocations),
      clock_(clock),
      options_(std::move(options)),
      cache_hits_(metrics.GetCounter("bulwark_access_token_cache_total",
                                     "Access-token verifications by whether the claims were "
                                     "already cached.",
                                     {{"result", "hit"}})),
      cache_misses_(metrics.GetCounter("bulwark_access_token_cache_total",
                                       "Access-token verifications by whether the claims were "
                                       "already cached.",
                                       {{"result", "miss"}})) {}

AccessTokenVerifier::Lookup AccessTokenVerifier::Find(const std::string& key, int64_t now,
                                                      Entry& out) {
  std::lock_guard lock(mutex_);
  auto it = cache_.find(key);
  if (it == cache_.end()) return Lookup::kMiss;
  if (it->second.claims->exp <= now) {  // expired (or within the leeway): validate again
    cache_.erase(it);
    return Lookup::kMiss;
  }
  out = it->second;
  return clock_.Monotonic() - out.revocation_checked_at < options_.revocation_recheck
             ? Lookup::kFresh
             : Lookup::kStale;
}

void AccessTokenVerifier::Remember(const std::string& key, Entry entry, int64_t now) {
  if (options_.cache_entries == 0 || entry.claims->exp <= now) return;
  std::lock_guard lock(mutex_);
  if (cache_.size() >= options_.cache_entries && cache_.find(key) == cache_.end()) {
    std::erase_if(cache_, [now](const auto& kv) { return kv.second.claims->exp <= now; });
    if (cache_.size() >= options_.cache_entries) cache_.clear();  // bounded, never LRU-precise
  }
  cache_[key] = std::move(entry);
}

void AccessTokenVerifier::Forget(const std::string& key) {
  std::lock_guard lock(mutex_);
  cache_.erase(key);
}

Result<VerifiedClaims> AccessTokenVerifier::CheckAudience(VerifiedClaims claims,
                                                          std::string_view audience) const {
  if (!audience.empty() &&
      std::find(claims->aud.begin(), claims->aud.end(), audience) == claims->aud.end()) {
    return Error::Unauthorized("invalid access token: wrong audience");
  }
  return claims;
}

std::optional<Result<VerifiedClaims>> AccessTokenVerifier::VerifyCached(std::string_view token,
                                                                        std::string_view audience) {
  Entry entry;
  if (Find(Sha256Hex(token), clock_.NowUnix(), entry) != Lookup::kFresh) return std::nullopt;
  cache_hits_.Inc();
  return CheckAudience(std::move(entry.claims), audience);
}

Result<VerifiedClaims> AccessTokenVerifier::Verify(std::string_view token,
                                                   std::string_view audience) {
  const int64_t now = clock_.NowUnix();
  const std::string key = Sha256Hex(token);
  Entry entry;
  Lookup found = Find(key, now, entry);
  if (found == Lookup::kFresh) {
    cache_hits_.Inc();
    return CheckAudience(std::move(entry.claims), audience);
  }
  if (found == Lookup::kMiss) {
    cache_misses_.Inc();
    std::shared_ptr<const KeyRing> ring = keys_.Current();
    auto kid = jwt::PeekKid(token);
    if (!kid.ok()) return Error::Unauthorized("invalid access token: malformed");
    if (!ring->keys.Contains(*kid)) {
      // A key another replica published moments ago: reload (at most once a second).
      keys_.RefreshSoon();
      ring = keys_.Current();
    }
    jwt::ValidationOptions v;
    v.issuer = options_.issuer;
    v.now = now;
    v.leeway_seconds = options_.leeway_seconds;
    auto claims = jwt::Validate(token, ring->keys, v);
    if (!claims.ok()) {
      return Error::Unauthorized("invalid access token: " + claims.error().message());
    }
    if (claims->jti.empty() || claims->sub.empty()) {
      return Error::Unauthorized("invalid access token: no jti or sub");
    }
    entry.claims = std::make_shared<const jwt::Claims>(std::move(*claims));
  } else {
    cache_hits_.Inc();
  }
  const uint64_t revocations_before = local_revocations_.load();
  auto revoked = revocations_.IsJtiRevoked(entry.claims->jti, now);
  if (!revoked.ok()) {
    return Error::Unavailable("revocation store unavailable: " + revoked.error().message());
  }
  if (*revoked) {
    Forget(key);
    return Error::Unauthorized("revoked access token");
  }
  entry.revocation_checked_at = clock_.Monotonic();
  // A revocation through this replica while the store was asked: do not cache
  // an answer that may predate it.
  if (local_revocations_.load() == revocations_before) Remember(key, entry, now);
  return CheckAudience(std::move(entry.claims), audience);
}

Status AccessTokenVerifier::Revoke(std::string_view token, const jwt::Claims& claims) {
  Status st = revocations_.RevokeJti(claims.jti, claims.exp + options_.leeway_seconds);
  if (!st.ok()) return Error::Unavailable("revocation store unavailable: " + st.error().message());
  ++local_revocations_;
  Forget(Sha256Hex(token));
  return Status::Ok();
}

}  // namespace bulwark
