#include "storage/redis/session_cache.hpp"

#include <algorithm>
#include <functional>
#include <memory>
#include <utility>

namespace bulwark {

SessionCache::SessionCache(SessionCacheOptions options)
    : options_(std::move(options)),
      max_per_shard_(std::max<std::size_t>(1, options_.max_entries / kShards)) {
  if (options_.metrics != nullptr) {
    metrics::Registry& m = *options_.metrics;
    hits_ = &m.GetCounter("bulwark_session_cache_hits_total",
                          "Session verifications answered from the tracked in-memory cache.");
    misses_ = &m.GetCounter("bulwark_session_cache_misses_total",
                            "Session verifications that read Redis (not kept, or not live).");
    invalidations_ = &m.GetCounter(
        "bulwark_session_cache_invalidations_total",
        "Session keys reported changed by Redis (CLIENT TRACKING) or by this replica.");
    live_gauge_ = &m.GetGauge(
        "bulwark_session_cache_live",
        "1 while every Redis primary reports session changes, so sessions may be kept.");
  }
}

SessionCache::Shard& SessionCache::ShardOf(const std::string& token_hash) {
  return shards_[std::hash<std::string>{}(token_hash) % kShards];
}

uint64_t SessionCache::Ticket() const {
  if (!live_.load(std::memory_order_acquire)) return 0;
  return epoch_.load(std::memory_order_acquire);
}

void SessionCache::Keep(const Session& session, uint64_t ticket) {
  if (ticket == 0 || options_.max_entries == 0) return;
  Shard& shard = ShardOf(session.token_hash);
  std::lock_guard lock(shard.mutex);
  // Checked under the shard lock that Forget and OnTrackingChanged also take:
  // an invalidation or a loss of tracking either happened before (the epoch
  // moved) or comes after and erases.
  if (epoch_.load(std::memory_order_acquire) != ticket) return;
  if (shard.entries.size() >= max_per_shard_ && !shard.entries.contains(session.token_hash)) {
    shard.entries.clear();  // crude but bounded; a full cache is a rare, transient state
  }
  shard.entries.insert_or_assign(session.token_hash,
                                 Entry{std::make_shared<const Session>(session), Clock::now()});
}

std::shared_ptr<const Session> SessionCache::Find(const std::string& token_hash, int64_t now) {
  Shard& shard = ShardOf(token_hash);
  {
    std::lock_guard lock(shard.mutex);
    auto it = shard.entries.find(token_hash);
    if (it != shard.entries.end()) {
      if (it->second.session->expires_at > now &&
          Clock::now() - it->second.kept_at < options_.max_age) {
        if (hits_ != nullptr) hits_->Inc();
        return it->second.session;
      }
      shard.entries.erase(it);
    }
  }
  if (misses_ != nullptr) misses_->Inc();
  return nullptr;
}

void SessionCache::Forget(const std::string& token_hash) {
  Shard& shard = ShardOf(token_hash);
  std::lock_guard lock(shard.mutex);
  epoch_.fetch_add(1, std::memory_order_acq_rel);
  shard.entries.erase(token_hash);
  if (invalidations_ != nullptr) invalidations_->Inc();
}

void SessionCache::ForgetAll() {
  for (Shard& shard : shards_) {
    std::lock_guard lock(shard.mutex);
    epoch_.fetch_add(1, std::memory_order_acq_rel);
    shard.entries.clear();
  }
}

std::size_t SessionCache::size() const {
  std::size_t total = 0;
  for (const Shard& shard : shards_) {
    std::lock_guard lock(shard.mutex);
    total += shard.entries.size();
  }
  return total;
}

void SessionCache::OnKeysChanged(const std::vector<std::string>* keys) {
  if (keys == nullptr) return ForgetAll();
  for (const std::string& key : *keys) {
    // Keys outside the prefix cannot be reported (BCAST PREFIX); be strict anyway.
    if (key.size() <= options_.key_prefix.size() ||
        key.compare(0, options_.key_prefix.size(), options_.key_prefix) != 0) {
      continue;
    }
    Forget(key.substr(options_.key_prefix.size()));
  }
}

void SessionCache::OnTrackingChanged(bool live) {
  // Not live: nothing kept can be trusted any more. Live: start from empty,
  // with an epoch no ticket taken before can match.
  for (Shard& shard : shards_) shard.mutex.lock();
  live_.store(live, std::memory_order_release);
  epoch_.fetch_add(1, std::memory_order_acq_rel);
  for (Shard& shard : shards_) {
    shard.entries.clear();
    shard.mutex.unlock();
  }
  if (live_gauge_ != nullptr) live_gauge_->Set(live ? 1 : 0);
}

}  // namespace bulwark
