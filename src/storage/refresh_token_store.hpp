// RefreshTokenStore: refresh-token families (SPEC §2, §3). A refresh token is
// "<family_id>.<secret>"; only SHA-256 hashes of whole tokens are stored. A
// family holds its current token and the one it replaced; presenting the
// current one rotates it, presenting the replaced one within the grace window
// re-issues (the client lost the response), presenting anything else revokes
// the whole family (a stolen, already rotated token was replayed).
// Implementations: Redis (one hash per family, rotated by a Lua script, so
// valid in Cluster mode), SQLite and PostgreSQL (a transaction), the memory
// fake. Every one passes tests/contract.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "core/result.hpp"

namespace bulwark {

struct RefreshFamily {
  std::string family_id;
  std::string user_id;
  std::string client_id;
  std::string session_hash;  // the session it is bound to (may be empty)
  std::string scope;
  std::string current_hash;   // hash of the token that rotates now
  std::string previous_hash;  // hash of the token it replaced ("" for generation 0)
  int64_t generation = 0;
  int64_t created_at = 0;
  int64_t rotated_at = 0;
  int64_t idle_expires_at = 0;      // unused this long: gone
  int64_t absolute_expires_at = 0;  // never valid past this, however used
  bool revoked = false;
};

enum class RotateOutcome {
  kRotated,        // presented the current token: `next` is now current
  kGraceReissued,  // presented the previous token within the grace window
  kReuseDetected,  // presented a rotated token: the family is now revoked
  kWrongClient,    // the family belongs to another client: refused, nothing changed
};

struct RotateRequest {
  std::string family_id;
  // The client presenting the token ("" for first-party login families): a
  // family rotates only for the client it was issued to (RFC 6749 §6), checked
  // before anything else so another client's attempt revokes nothing.
  std::string client_id;
  std::string presented_hash;
  std::string next_hash;
  int64_t now = 0;
  int64_t idle_ttl_seconds = 0;  // the new idle expiry is min(now + this, absolute)
  int64_t grace_seconds = 0;
};

struct RotateResult {
  RotateOutcome outcome = RotateOutcome::kRotated;
  RefreshFamily family;  // after the operation
};

// Thread-safe, blocking; see UserStore for the kUnavailable rule.
class RefreshTokenStore {
 public:
  virtual ~RefreshTokenStore() = default;
  RefreshTokenStore() = default;
  RefreshTokenStore(const RefreshTokenStore&) = delete;
  RefreshTokenStore& operator=(const RefreshTokenStore&) = delete;

  // A new family (generation 0, previous_hash ""). kAlreadyExists on a family id collision.
  virtual Status CreateFamily(const RefreshFamily& family) = 0;
  // kNotFound when absent, revoked or expired at `now` (idle or absolute).
  virtual Result<RefreshFamily> GetFamily(const std::string& family_id, int64_t now) = 0;
  // Atomic. kNotFound when the family is absent, revoked or expired at `now`.
  virtual Result<RotateResult> Rotate(const RotateRequest& request) = 0;

  // Rotate, completing through `done` instead of blocking, for back-ends that
  // batch rotations into one commit (SQLite's group commit): a caller that
  // does not hold a thread while waiting lets batches grow with concurrency
  // instead of with the thread count. `done` runs exactly once, on a thread of
  // the store's, and must not block. The default runs Rotate on the calling
  // thread (it blocks: see RotatesWithoutBlocking).
  using RotateCallback = std::function<void(Result<RotateResult>)>;
  virtual void RotateAsync(RotateRequest request, RotateCallback done) { done(Rotate(request)); }
  // True when RotateAsync never blocks the caller (may run on an I/O thread).
  virtual bool RotatesWithoutBlocking() const { return false; }
  // For stores whose RotateAsync would block: one attempt that does not
  // block the caller (Redis: the script on the calling I/O thread's own
  // connection). `done` runs once, must not block, and gets nullopt when the
  // rotation surely did not happen and Rotate should be called from a worker
  // thread (which retries); a result otherwise. The default defers.
  using TryRotateCallback = std::function<void(std::optional<Result<RotateResult>>)>;
  virtual void TryRotateAsync(RotateRequest request, TryRotateCallback done) {
    (void)request;
    done(std::nullopt);
  }
  // Idempotent: OK when absent.
  virtual Status RevokeFamily(const std::string& family_id) = 0;
};

}  // namespace bulwark
