#include "storage/durable_session_store.hpp"

#include <cstdint>
#include <utility>

namespace bulwark {

DurableSessionStore::DurableSessionStore(std::shared_ptr<SessionStore> cache,
                                         std::shared_ptr<SessionStore> record, CacheHooks hooks,
                                         metrics::Registry* metrics)
    : cache_(std::move(cache)), record_(std::move(record)), hooks_(std::move(hooks)) {
  if (metrics != nullptr) {
    const char* help = "Write-through session store events (Redis + relational record)";
    const char* name = "bulwark_session_write_through_total";
    write_failed_metric_ = &metrics->GetCounter(name, help, {{"event", "cache_write_failed"}});
    restored_metric_ = &metrics->GetCounter(name, help, {{"event", "restored"}});
    outage_read_metric_ = &metrics->GetCounter(name, help, {{"event", "outage_read"}});
  }
}

namespace {
void Count(std::atomic<uint64_t>& counter, metrics::Counter* metric) {
  counter.fetch_add(1);
  if (metric != nullptr) metric->Inc();
}
}  // namespace

Status DurableSessionStore::CreateSession(const Session& session) {
  Status st = record_->CreateSession(session);
  if (!st.ok()) return st;
  Status cached = cache_->CreateSession(session);
  if (!cached.ok()) Count(cache_write_failures_, write_failed_metric_);
  return Status::Ok();
}

Result<Session> DurableSessionStore::GetSession(const std::string& token_hash, int64_t now) {
  Result<Session> cached = cache_->GetSession(token_hash, now);
  if (cached.ok()) return cached;
  const bool cache_down = !cached.error().IsNotFound();
  Result<Session> recorded = record_->GetSession(token_hash, now);
  // The record holds every session, so its "absent" is final even while the
  // cache is down; its outage is an outage, never a bad credential.
  if (!recorded.ok()) return recorded;
  if (cache_down) {
    Count(cache_outage_reads_, outage_read_metric_);
    return recorded;
  }
  // A miss with a record: lost by Redis (failover, flush) - or revoked while
  // the record could not be reached; the mark tells which.
  if (hooks_.is_revoked) {
    Result<bool> revoked = hooks_.is_revoked(token_hash);
    if (!revoked.ok()) return revoked.error();
    if (*revoked) return Error::NotFound("session revoked");
  }
  if (hooks_.restore && hooks_.restore(*recorded).ok()) {
    Count(cache_misses_recovered_, restored_metric_);
  }
  return recorded;
}

void DurableSessionStore::GetSessionAsync(const std::string& token_hash, int64_t now,
                                          AsyncSession done) {
  cache_->GetSessionAsync(token_hash, now,
                          [done = std::move(done)](std::optional<Result<Session>> cached) {
                            if (cached && cached->ok()) return done(std::move(cached));
                            done(std::nullopt);
                          });
}

Status DurableSessionStore::TouchSession(const std::string& token_hash, int64_t expires_at,
                                         int64_t now) {
  Status st = record_->TouchSession(token_hash, expires_at, now);
  if (!st.ok()) return st;
  Status cached = cache_->TouchSession(token_hash, expires_at, now);
  if (!cached.ok() && !cached.error().IsNotFound()) {
    Count(cache_write_failures_, write_failed_metric_);
  }
  return Status::Ok();
}

Status DurableSessionStore::DeleteSession(const std::string& token_hash) {
  if (hooks_.mark_revoked) {
    Status marked = hooks_.mark_revoked(token_hash);
    if (!marked.ok()) return marked;
  }
  Status st = cache_->DeleteSession(token_hash);
  if (!st.ok()) return st;
  return record_->DeleteSession(token_hash);
}

Result<std::vector<Session>> DurableSessionStore::ListUserSessions(const std::string& user_id,
                                                                   int64_t now) {
  return record_->ListUserSessions(user_id, now);
}

Result<int> DurableSessionStore::DeleteUserSessions(const std::string& user_id) {
  if (hooks_.mark_revoked) {
    // Every recorded session, expired or not (now = INT64_MIN).
    Result<std::vector<Session>> recorded = record_->ListUserSessions(user_id, INT64_MIN);
    if (!recorded.ok()) return recorded.error();
    for (const Session& s : *recorded) {
      Status marked = hooks_.mark_revoked(s.token_hash);
      if (!marked.ok()) return marked.error();
    }
  }
  Result<int> cached = cache_->DeleteUserSessions(user_id);
  if (!cached.ok()) return cached.error();
  return record_->DeleteUserSessions(user_id);
}

Result<int> DurableSessionStore::PurgeExpired(int64_t now) {
  Result<int> cached = cache_->PurgeExpired(now);
  Result<int> recorded = record_->PurgeExpired(now);
  if (!recorded.ok()) return recorded;
  if (!cached.ok()) return cached.error();
  return recorded;
}

DurableSessionStore::Counters DurableSessionStore::counters() const {
  return {cache_write_failures_.load(), cache_misses_recovered_.load(), cache_outage_reads_.load()};
}

}  // namespace bulwark
