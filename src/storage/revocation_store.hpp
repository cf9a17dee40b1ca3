// RevocationStore: revoked access-token ids (`revoked-jti:<jti>`, SPEC §2).
// A JWT is valid until it expires; revoking its jti makes every replica
// refuse it for the rest of its life.
#pragma once

#include <cstdint>
#include <string>

#include "core/result.hpp"

namespace bulwark {

// Thread-safe, blocking; see UserStore for the kUnavailable rule. A revocation
// that returns OK is durable and seen by every replica.
class RevocationStore {
 public:
  virtual ~RevocationStore() = default;
  RevocationStore() = default;
  RevocationStore(const RevocationStore&) = delete;
  RevocationStore& operator=(const RevocationStore&) = delete;

  // Marks `jti` revoked until `expires_at` (the token's exp); idempotent, and
  // a later expiry wins over an earlier one.
  virtual Status RevokeJti(const std::string& jti, int64_t expires_at) = 0;
  // true while revoked at `now` (expires_at > now).
  virtual Result<bool> IsJtiRevoked(const std::string& jti, int64_t now) = 0;
  // Removes revocations that expired at `now`; returns how many (a back-end
  // whose entries expire by themselves may return 0).
  virtual Result<int> PurgeExpiredRevocations(int64_t now) = 0;
};

}  // namespace bulwark
