// Sessions in Redis, written through to PostgreSQL (BULWARK_SESSION_DURABILITY
// = redis+db, SPEC §2). Redis answers the hot path; PostgreSQL is the record:
//   create   the record first, then Redis (a Redis failure is logged, not fatal:
//            the record answers until Redis is back)
//   get      Redis; on a miss or a Redis outage the record, and a hit there is
//            copied back into Redis (recovery after a failover or a flush)
//   delete   a revocation mark in Redis, then Redis, then the record. If Redis
//            cannot be reached nothing is deleted (kUnavailable), so a revoked
//            session can never come back from a Redis node that was only
//            unreachable; if the record cannot, the mark keeps read-through
//            from restoring the session until the caller retries
//   list     the record (it has every session, Redis may have lost some)
// Both parts are SessionStore contracts; this class only composes them.
#pragma once

#include <atomic>
#include <functional>
#include <memory>

#include "metrics/registry.hpp"
#include "storage/session_store.hpp"

namespace bulwark {

class DurableSessionStore final : public SessionStore {
 public:
  // What the composition needs from the cache beyond SessionStore.
  struct CacheHooks {
    // Copies a session found only in the record back into the cache
    // (unconditional write, e.g. RedisSessionStore::RestoreSession).
    std::function<Status(const Session&)> restore;
    // Records that a token hash was revoked (outlives any session it could be).
    std::function<Status(const std::string&)> mark_revoked;
    // True when marked revoked.
    std::function<Result<bool>(const std::string&)> is_revoked;
  };

  // `metrics` (optional, must outlive the store) gets
  // bulwark_session_write_through_total{event="cache_write_failed|restored|outage_read"}.
  DurableSessionStore(std::shared_ptr<SessionStore> cache, std::shared_ptr<SessionStore> record,
                      CacheHooks hooks, metrics::Registry* metrics = nullptr);

  Status CreateSession(const Session& session) override;
  Result<Session> GetSession(const std::string& token_hash, int64_t now) override;
  Status TouchSession(const std::string& token_hash, int64_t expires_at, int64_t now) override;
  Status DeleteSession(const std::string& token_hash) override;
  Result<std::vector<Session>> ListUserSessions(const std::string& user_id, int64_t now) override;
  Result<int> DeleteUserSessions(const std::string& user_id) override;
  Result<int> PurgeExpired(int64_t now) override;
  // A hit in the cache; anything else (a miss to check in the record, a cache
  // outage) is left to GetSession (nullopt).
  bool GetsSessionsWithoutBlocking() const override {
    return cache_->GetsSessionsWithoutBlocking();
  }
  void GetSessionAsync(const std::string& token_hash, int64_t now, AsyncSession done) override;
  // What the cache keeps in memory (a hit, like GetSessionAsync's).
  std::shared_ptr<const Session> PeekSession(const std::string& token_hash, int64_t now) override {
    return cache_->PeekSession(token_hash, now);
  }

  struct Counters {
    uint64_t cache_write_failures = 0;    // created/touched in the record only
    uint64_t cache_misses_recovered = 0;  // found in the record, copied back
    uint64_t cache_outage_reads = 0;      // answered by the record while Redis was down
  };
  Counters counters() const;

 private:
  std::shared_ptr<SessionStore> cache_;
  std::shared_ptr<SessionStore> record_;
  CacheHooks hooks_;
  std::atomic<uint64_t> cache_write_failures_{0};
  std::atomic<uint64_t> cache_misses_recovered_{0};
  std::atomic<uint64_t> cache_outage_reads_{0};
  metrics::Counter* write_failed_metric_ = nullptr;
  metrics::Counter* restored_metric_ = nullptr;
  metrics::Counter* outage_read_metric_ = nullptr;
};

}  // namespace bulwark
