// Sessions in Redis (standalone, Sentinel or Cluster), SPEC §2:
//   <prefix>session:<token_hash>       -> JSON session, EXPIREAT expires_at
//   <prefix>user-sessions:<user_id>    -> set of token hashes, EXPIREAT the latest expiry
//   <prefix>session-expiry:<0..f>      -> sorted set "<token_hash>:<user_id>" by expires_at,
//                                         16 buckets by the hash's first hex digit so the
//                                         purge index spreads over Cluster shards
//   <prefix>session-revoked:<token_hash> -> "1" for revocation_ttl (write-through mode)
// Every command touches one key (pipelines touch one key several times), so
// every operation is valid in Cluster mode without hash tags. Writes of the
// session key wait for a replica's acknowledgement (WAIT) when the primary
// has replicas.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "metrics/registry.hpp"
#include "redis/redis_client.hpp"
#include "storage/redis/session_cache.hpp"
#include "storage/session_store.hpp"
#include "storage/stores.hpp"

namespace bulwark {

struct RedisSessionStoreOptions {
  // Prepended to every key (tests isolate themselves with it). Must not
  // contain '{' or '}', which would pin every key to one Cluster slot.
  std::string key_prefix;
  // WAIT for one replica after session writes (when the primary has one).
  bool wait_for_replica = true;
  std::chrono::milliseconds wait_timeout{250};
  // Lifetime of a revocation mark: at least the longest a session can live.
  int64_t revocation_ttl_seconds = 3600;
  // Sessions kept in memory while Redis tracks their keys (SessionCache);
  // 0 turns the cache off.
  std::size_t cache_max_entries = 0;
  // Optional: bulwark_session_replica_ack_timeouts_total (WAIT answered 0),
  // bulwark_session_cache_*.
  metrics::Registry* metrics = nullptr;
};

class RedisSessionStore final : public SessionStore, public HealthProbe {
 public:
  RedisSessionStore(std::shared_ptr<redis::Client> client, RedisSessionStoreOptions options);

  Status CreateSession(const Session& session) override;
  Result<Session> GetSession(const std::string& token_hash, int64_t now) override;
  Status TouchSession(const std::string& token_hash, int64_t expires_at, int64_t now) override;
  Status DeleteSession(const std::string& token_hash) override;
  Result<std::vector<Session>> ListUserSessions(const std::string& user_id, int64_t now) override;
  Result<int> DeleteUserSessions(const std::string& user_id) override;
  Result<int> PurgeExpired(int64_t now) override;
  // One GET on the Redis client's I/O thread (redis::Client::TryCommandAsync).
  bool GetsSessionsWithoutBlocking() const override { return true; }
  void GetSessionAsync(const std::string& token_hash, int64_t now, AsyncSession done) override;
  std::shared_ptr<const Session> PeekSession(const std::string& token_hash, int64_t now) override;

  // HealthProbe: PING every primary.
  Status Ping() override;

  // Writes the session unconditionally (read-through repopulation after a
  // miss); does not WAIT.
  Status RestoreSession(const Session& session);

  // <prefix>session-revoked:<hash>, for DurableSessionStore (see there).
  Status MarkRevoked(const std::string& token_hash);
  Result<bool> IsRevoked(const std::string& token_hash);

  // Whether sessions read now may be kept (the cache is on and Redis tracks their keys).
  bool cache_live() const { return cache_ != nullptr && cache_->live(); }

  // Replica acknowledgements that timed out (the write is on the primary only).
  uint64_t unacknowledged_writes() const { return unacknowledged_writes_.load(); }

 private:
  std::string SessionKey(const std::string& token_hash) const;
  std::string UserKey(const std::string& user_id) const;
  std::string ExpiryKey(const std::string& token_hash) const;
  Status WriteSessionKey(const std::string& key, const std::string& value, int64_t expires_at,
                         bool only_if_absent, bool only_if_present, bool* written);
  Status IndexSession(const Session& session);
  Status UnindexSession(const std::string& token_hash, const std::string& user_id);
  Result<std::vector<std::string>> Members(const std::string& key);

  // This replica is about to change, or has just changed, the session's key.
  void Forget(const std::string& token_hash);

  std::shared_ptr<redis::Client> client_;
  RedisSessionStoreOptions options_;
  std::shared_ptr<SessionCache> cache_;  // null when off
  std::atomic<uint64_t> unacknowledged_writes_{0};
  metrics::Counter* ack_timeouts_metric_ = nullptr;
};

// Session <-> the JSON value stored under session:<hash> (token_hash is the key, not a field).
std::string EncodeSessionValue(const Session& session);
// kInternal when the value is not a session document.
Result<Session> DecodeSessionValue(const std::string& token_hash, const std::string& value);

}  // namespace bulwark
