#include "storage/durable_session_store.hpp"

#include <utility>

namespace bulwark {

DurableSessionStore::DurableSessionStore(std::shared_ptr<SessionStore> cache,
                                         std::shared_ptr<SessionStore> record, RestoreFn restore)
    : cache_(std::move(cache)), record_(std::move(record)), restore_(std::move(restore)) {}

Status DurableSessionStore::CreateSession(const Session& session) {
  Status st = record_->CreateSession(session);
  if (!st.ok()) return st;
  Status cached = cache_->CreateSession(session);
  if (!cached.ok()) cache_write_failures_.fetch_add(1);
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
    cache_outage_reads_.fetch_add(1);
  } else if (restore_ && restore_(*recorded).ok()) {
    cache_misses_recovered_.fetch_add(1);
  }
  return recorded;
}

Status DurableSessionStore::TouchSession(const std::string& token_hash, int64_t expires_at,
                                         int64_t now) {
  Status st = record_->TouchSession(token_hash, expires_at, now);
  if (!st.ok()) return st;
  Status cached = cache_->TouchSession(token_hash, expires_at, now);
  if (!cached.ok() && !cached.error().IsNotFound()) cache_write_failures_.fetch_add(1);
  return Status::Ok();
}

Status DurableSessionStore::DeleteSession(const std::string& token_hash) {
  Status st = cache_->DeleteSession(token_hash);
  if (!st.ok()) return st;
  return record_->DeleteSession(token_hash);
}

Result<std::vector<Session>> DurableSessionStore::ListUserSessions(const std::string& user_id,
                                                                   int64_t now) {
  return record_->ListUserSessions(user_id, now);
}

Result<int> DurableSessionStore::DeleteUserSessions(const std::string& user_id) {
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
