#include "storage/refresh_rotation.hpp"

#include <algorithm>

#include "crypto/tokens.hpp"

namespace bulwark {

namespace {

// Hashes are fixed-length hex; an empty one (no previous token yet) never matches.
bool SameHash(const std::string& a, const std::string& b) {
  return !a.empty() && ConstantTimeEquals(a, b);
}

}  // namespace

bool RefreshFamilyLive(const RefreshFamily& f, int64_t now) {
  return !f.revoked && now < f.idle_expires_at && now < f.absolute_expires_at;
}

RotateOutcome ApplyRotation(RefreshFamily& f, const RotateRequest& r) {
  if (f.client_id != r.client_id) return RotateOutcome::kWrongClient;
  const bool current = SameHash(r.presented_hash, f.current_hash);
  const bool previous = !current && SameHash(r.presented_hash, f.previous_hash) &&
                        r.now - f.rotated_at <= r.grace_seconds;
  if (!current && !previous) {
    f.revoked = true;
    return RotateOutcome::kReuseDetected;
  }
  if (current) f.previous_hash = f.current_hash;
  f.current_hash = r.next_hash;
  f.generation += 1;
  if (current) f.rotated_at = r.now;
  f.idle_expires_at = std::min(r.now + r.idle_ttl_seconds, f.absolute_expires_at);
  return current ? RotateOutcome::kRotated : RotateOutcome::kGraceReissued;
}

}  // namespace bulwark
