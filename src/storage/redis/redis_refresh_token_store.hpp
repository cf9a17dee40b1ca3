// Refresh-token families in Redis: one hash per family,
//   <prefix>refresh-family:{<family_id>}  -> fields of RefreshFamily, EXPIREAT idle expiry
// rotated by a Lua script on that one key (atomic, valid in Cluster mode; the
// {hash tag} keeps any future per-family keys in the same slot). Rotations
// wait for a replica's acknowledgement like session writes.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "redis/redis_client.hpp"
#include "redis/script.hpp"
#include "storage/refresh_token_store.hpp"

namespace bulwark {

struct RedisRefreshTokenStoreOptions {
  std::string key_prefix;  // no '{' or '}'
  bool wait_for_replica = true;
  std::chrono::milliseconds wait_timeout{250};
};

class RedisRefreshTokenStore final : public RefreshTokenStore {
 public:
  RedisRefreshTokenStore(std::shared_ptr<redis::Client> client,
                         RedisRefreshTokenStoreOptions options);

  Status CreateFamily(const RefreshFamily& family) override;
  Result<RefreshFamily> GetFamily(const std::string& family_id, int64_t now) override;
  Result<RotateResult> Rotate(const RotateRequest& request) override;
  void TryRotateAsync(RotateRequest request, TryRotateCallback done) override;
  Status RevokeFamily(const std::string& family_id) override;

 private:
  std::string Key(const std::string& family_id) const;
  Result<redis::Reply> Write(std::vector<std::string> command);
  // EVALSHA, then EVAL when the node answers NOSCRIPT.
  Result<redis::Reply> Eval(const redis::Script& script, const std::vector<std::string>& keys,
                            const std::vector<std::string>& args);

  std::shared_ptr<redis::Client> client_;
  RedisRefreshTokenStoreOptions options_;
};

}  // namespace bulwark
