// Revoked access-token ids in Redis (SPEC §2): <prefix>revoked-jti:<jti> ->
// the token's exp (Unix seconds), expiring by itself at that time (EXPIREAT).
// One key per command, so valid in Cluster mode.
#pragma once

#include <memory>
#include <string>

#include "redis/redis_client.hpp"
#include "storage/revocation_store.hpp"

namespace bulwark {

class RedisRevocationStore final : public RevocationStore {
 public:
  // `key_prefix` must not contain '{' or '}' (see RedisSessionStoreOptions).
  RedisRevocationStore(std::shared_ptr<redis::Client> client, std::string key_prefix = "");

  Status RevokeJti(const std::string& jti, int64_t expires_at) override;
  // Honours `now`: a key whose stored expiry is <= now is not a revocation,
  // even before Redis removed it.
  Result<bool> IsJtiRevoked(const std::string& jti, int64_t now) override;
  // Redis expires the keys itself: always 0.
  Result<int> PurgeExpiredRevocations(int64_t now) override;

 private:
  std::string Key(const std::string& jti) const;

  std::shared_ptr<redis::Client> client_;
  std::string key_prefix_;
};

}  // namespace bulwark
