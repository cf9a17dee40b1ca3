// SessionStore: server-side sessions keyed by the hash of their token, with a
// TTL and a per-user index. Implementations: SQLite (embedded), Redis and
// PostgreSQL (production, next issue). Every implementation passes tests/contract.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/result.hpp"
#include "domain/model.hpp"

namespace bulwark {

// Thread-safe, blocking; see UserStore for the kUnavailable rule. A write
// that returns OK is durable: it survives SIGKILL of the process that made it.
class SessionStore {
 public:
  virtual ~SessionStore() = default;
  SessionStore() = default;
  SessionStore(const SessionStore&) = delete;
  SessionStore& operator=(const SessionStore&) = delete;

  // Stores the session and indexes it under its user. kAlreadyExists on a hash collision.
  virtual Status CreateSession(const Session& session) = 0;
  // kNotFound when absent or expired at `now` (expires_at <= now).
  virtual Result<Session> GetSession(const std::string& token_hash, int64_t now) = 0;
  // Moves expires_at (sliding renewal). kNotFound when absent or expired.
  virtual Status TouchSession(const std::string& token_hash, int64_t expires_at, int64_t now) = 0;
  // Idempotent: OK when absent.
  virtual Status DeleteSession(const std::string& token_hash) = 0;
  // The user's live sessions at `now`, ordered by created_at.
  virtual Result<std::vector<Session>> ListUserSessions(const std::string& user_id,
                                                        int64_t now) = 0;
  // Deletes every session of the user; returns how many were live or expired.
  virtual Result<int> DeleteUserSessions(const std::string& user_id) = 0;
  // Removes sessions expired at `now`; returns how many.
  virtual Result<int> PurgeExpired(int64_t now) = 0;

  // GetSession without blocking the caller, for stores that can (Redis): an
  // HTTP I/O thread then verifies a session with no hop to the store pool.
  // `done` runs exactly once, on a thread of the store's (it must not block),
  // with GetSession's answer, or with nullopt when this store could not tell
  // without blocking (a miss to check elsewhere, a redirect, an outage): then
  // call GetSession from the store pool. The default always says nullopt.
  using AsyncSession = std::function<void(std::optional<Result<Session>>)>;
  virtual bool GetsSessionsWithoutBlocking() const { return false; }
  virtual void GetSessionAsync(const std::string& token_hash, int64_t now, AsyncSession done) {
    (void)token_hash;
    (void)now;
    done(std::nullopt);
  }

  // A session this store keeps in memory and knows to be current (Redis
  // with tracking), answered at once on the calling thread and shared, not
  // copied; null means "ask GetSession or GetSessionAsync", never "no such session".
  virtual std::shared_ptr<const Session> PeekSession(const std::string& token_hash, int64_t now) {
    (void)token_hash;
    (void)now;
    return nullptr;
  }
};

}  // namespace bulwark
