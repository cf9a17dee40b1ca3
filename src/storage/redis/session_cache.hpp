// Sessions read from Redis, kept in memory while Redis reports every change
// to their keys (server-assisted client-side caching, redis::Client::
// TrackKeyPrefix): a verify of a session seen moments ago is answered without
// a round trip, and a logout, revocation, renewal or expiry anywhere reaches
// the cache as an invalidation. docs/redis.md, "Session cache".
//
// Races are settled by an epoch: a reader takes a Ticket() before it sends
// its GET and Keep()s the answer only if nothing was invalidated in between
// and tracking stayed live, so an answer overtaken by a change is dropped.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "domain/model.hpp"
#include "metrics/registry.hpp"
#include "redis/redis_client.hpp"

namespace bulwark {

struct SessionCacheOptions {
  // Full Redis key prefix of a session ("<prefix>session:"): invalidated keys
  // are mapped back to token hashes with it.
  std::string key_prefix;
  std::size_t max_entries = 10000;
  // A kept session is read again from Redis after this long even without an
  // invalidation: a bound on staleness should Redis ever fail to report one
  // (a split brain between a demoted primary and its successor).
  std::chrono::seconds max_age{60};
  metrics::Registry* metrics = nullptr;  // optional: bulwark_session_cache_*
};

class SessionCache final : public redis::KeyChangeListener {
 public:
  using Clock = std::chrono::steady_clock;

  explicit SessionCache(SessionCacheOptions options);

  // Taken before reading a session from Redis; 0 when nothing read now may be kept.
  uint64_t Ticket() const;
  // Keeps what a read that began with `ticket` returned, unless tracking
  // stopped or anything was invalidated since.
  void Keep(const Session& session, uint64_t ticket);
  // A kept session that has not expired by `now` (Unix seconds), or null.
  // Shared, not copied: a hit is the verify hot path.
  std::shared_ptr<const Session> Find(const std::string& token_hash, int64_t now);
  // This replica changes the session's key: forget it now, before Redis
  // reports it (read-your-writes on this replica).
  void Forget(const std::string& token_hash);
  void ForgetAll();

  bool live() const { return live_.load(std::memory_order_acquire); }
  std::size_t size() const;

  // redis::KeyChangeListener
  void OnKeysChanged(const std::vector<std::string>* keys) override;
  void OnTrackingChanged(bool live) override;

 private:
  struct Entry {
    std::shared_ptr<const Session> session;
    Clock::time_point kept_at;
  };
  struct Shard {
    mutable std::mutex mutex;
    std::unordered_map<std::string, Entry> entries;  // GUARDED_BY(mutex)
  };
  static constexpr std::size_t kShards = 16;

  Shard& ShardOf(const std::string& token_hash);

  const SessionCacheOptions options_;
  const std::size_t max_per_shard_;
  std::array<Shard, kShards> shards_;
  // Moves on every invalidation and tracking change; 0 is never a valid ticket.
  std::atomic<uint64_t> epoch_{1};
  std::atomic<bool> live_{false};
  metrics::Counter* hits_ = nullptr;
  metrics::Counter* misses_ = nullptr;
  metrics::Counter* invalidations_ = nullptr;
  metrics::Gauge* live_gauge_ = nullptr;
};

}  // namespace bulwark
