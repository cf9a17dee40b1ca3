#include "storage/redis/redis_revocation_store.hpp"

#include <algorithm>
#include <charconv>
#include <optional>
#include <utility>

namespace bulwark {
namespace {

using redis::Reply;

Error RedisError(const std::string& what, const Reply& reply) {
  return Error::Internal("redis: " + what + ": " + reply.str);
}

std::optional<int64_t> ParseInt(const std::string& s) {
  int64_t v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || ptr != s.data() + s.size()) return std::nullopt;
  return v;
}

}  // namespace

RedisRevocationStore::RedisRevocationStore(std::shared_ptr<redis::Client> client,
                                           std::string key_prefix)
    : client_(std::move(client)), key_prefix_(std::move(key_prefix)) {}

std::string RedisRevocationStore::Key(const std::string& jti) const {
  return key_prefix_ + "revoked-jti:" + jti;
}

Status RedisRevocationStore::RevokeJti(const std::string& jti, int64_t expires_at) {
  const std::string key = Key(jti);
  const std::string value = std::to_string(expires_at);
  // EXAT in the past deletes the key at once; keep at least a second.
  const std::string at = std::to_string(std::max<int64_t>(expires_at, 1));
  // Set only if absent or holding an earlier expiry (a later expiry wins);
  // the retry loop is bounded, a race only ever raises the value.
  for (int attempt = 0; attempt < 3; ++attempt) {
    auto created = client_->Command({"SET", key, value, "NX", "EXAT", at});
    if (!created.ok()) return created.error();
    if (created->IsError()) return RedisError("SET", *created);
    if (!created->IsNil()) return Status::Ok();
    auto current = client_->Command({"GET", key});
    if (!current.ok()) return current.error();
    if (current->IsError()) return RedisError("GET", *current);
    if (current->IsNil()) continue;  // expired meanwhile: try again
    std::optional<int64_t> stored = ParseInt(current->str);
    if (stored && *stored >= expires_at) return Status::Ok();
    auto replaced = client_->Command({"SET", key, value, "XX", "EXAT", at});
    if (!replaced.ok()) return replaced.error();
    if (replaced->IsError()) return RedisError("SET", *replaced);
    if (!replaced->IsNil()) return Status::Ok();
  }
  return Error::Unavailable("redis: revocation of a token kept racing with its expiry");
}

Result<bool> RedisRevocationStore::IsJtiRevoked(const std::string& jti, int64_t now) {
  auto r = client_->Command({"GET", Key(jti)});
  if (!r.ok()) return r.error();
  if (r->IsError()) return RedisError("GET", *r);
  if (r->IsNil()) return false;
  std::optional<int64_t> expires_at = ParseInt(r->str);
  // An unreadable value still means "revoked": fail closed.
  return !expires_at || *expires_at > now;
}

Result<int> RedisRevocationStore::PurgeExpiredRevocations(int64_t) { return 0; }

}  // namespace bulwark
