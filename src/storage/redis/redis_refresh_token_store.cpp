#include "storage/redis/redis_refresh_token_store.hpp"

#include <charconv>
#include <utility>

#include "redis/script.hpp"
#include "storage/refresh_rotation.hpp"

namespace bulwark {

namespace {

using redis::Reply;

// The rule of storage/refresh_rotation.cpp (ApplyRotation), in Lua so that it
// runs atomically next to the data. Returns {outcome, HGETALL...} or {"missing"}.
constexpr const char* kRotateScript = R"lua(
local f = redis.call('HGETALL', KEYS[1])
if #f == 0 then return {'missing'} end
local h = {}
for i = 1, #f, 2 do h[f[i]] = f[i + 1] end
local now = tonumber(ARGV[3])
if h.revoked == '1' or now >= tonumber(h.idle_expires_at) or
   now >= tonumber(h.absolute_expires_at) then
  return {'missing'}
end
if h.client_id ~= ARGV[6] then
  table.insert(f, 1, 'wrong_client')
  return f
end
local current = ARGV[1] ~= '' and ARGV[1] == h.current_hash
local previous = (not current) and h.previous_hash ~= '' and ARGV[1] == h.previous_hash and
                 now - tonumber(h.rotated_at) <= tonumber(ARGV[5])
local outcome
if not current and not previous then
  redis.call('HSET', KEYS[1], 'revoked', '1')
  outcome = 'reuse'
else
  if current then
    redis.call('HSET', KEYS[1], 'previous_hash', h.current_hash, 'rotated_at', ARGV[3])
    outcome = 'rotated'
  else
    outcome = 'grace'
  end
  local idle = math.min(now + tonumber(ARGV[4]), tonumber(h.absolute_expires_at))
  redis.call('HSET', KEYS[1], 'current_hash', ARGV[2], 'idle_expires_at', tostring(idle),
             'generation', tostring(tonumber(h.generation) + 1))
  redis.call('EXPIREAT', KEYS[1], idle)
end
local out = redis.call('HGETALL', KEYS[1])
table.insert(out, 1, outcome)
return out
)lua";

std::string Str(int64_t v) { return std::to_string(v); }

int64_t Int(const std::string& s) {
  int64_t v = 0;
  std::from_chars(s.data(), s.data() + s.size(), v);
  return v;
}

// Fields from a flat field/value array starting at `first`.
RefreshFamily FromFields(const std::string& family_id, const std::vector<Reply>& a,
                         std::size_t first) {
  RefreshFamily f;
  f.family_id = family_id;
  for (std::size_t i = first; i + 1 < a.size(); i += 2) {
    const std::string& k = a[i].str;
    const std::string& v = a[i + 1].str;
    if (k == "user_id")
      f.user_id = v;
    else if (k == "client_id")
      f.client_id = v;
    else if (k == "session_hash")
      f.session_hash = v;
    else if (k == "scope")
      f.scope = v;
    else if (k == "current_hash")
      f.current_hash = v;
    else if (k == "previous_hash")
      f.previous_hash = v;
    else if (k == "generation")
      f.generation = Int(v);
    else if (k == "created_at")
      f.created_at = Int(v);
    else if (k == "rotated_at")
      f.rotated_at = Int(v);
    else if (k == "idle_expires_at")
      f.idle_expires_at = Int(v);
    else if (k == "absolute_expires_at")
      f.absolute_expires_at = Int(v);
    else if (k == "revoked")
      f.revoked = v == "1";
  }
  return f;
}

Error ReplyError(const std::string& what, const Reply& r) {
  return Error::Internal("redis " + what + ": " + r.str);
}

}  // namespace

RedisRefreshTokenStore::RedisRefreshTokenStore(std::shared_ptr<redis::Client> client,
                                               RedisRefreshTokenStoreOptions options)
    : client_(std::move(client)), options_(std::move(options)) {}

std::string RedisRefreshTokenStore::Key(const std::string& family_id) const {
  return options_.key_prefix + "refresh-family:{" + family_id + "}";
}

Result<Reply> RedisRefreshTokenStore::Write(std::vector<std::string> command) {
  if (!options_.wait_for_replica) return client_->Command(std::move(command));
  auto r = client_->PipelineAndWait({std::move(command)}, options_.wait_timeout);
  if (!r.ok()) return r.error();
  return std::move(r->replies.at(0));
}

Result<Reply> RedisRefreshTokenStore::Eval(const redis::Script& script,
                                           const std::vector<std::string>& keys,
                                           const std::vector<std::string>& args) {
  auto r = Write(script.EvalSha(keys, args));
  // Not run: the node does not know the script yet; EVAL runs and caches it.
  if (r.ok() && redis::IsNoScript(*r)) r = Write(script.Eval(keys, args));
  return r;
}

Status RedisRefreshTokenStore::CreateFamily(const RefreshFamily& f) {
  // One script: claims the id and writes every field with its expiry, or nothing.
  static const redis::Script kCreate(
      "if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end "
      "redis.call('HSET', KEYS[1], unpack(ARGV, 2)) "
      "redis.call('EXPIREAT', KEYS[1], ARGV[1]) return 1");
  auto r = Eval(kCreate, {Key(f.family_id)},
                {Str(std::max<int64_t>(f.idle_expires_at, 1)),
                 "user_id",
                 f.user_id,
                 "client_id",
                 f.client_id,
                 "session_hash",
                 f.session_hash,
                 "scope",
                 f.scope,
                 "current_hash",
                 f.current_hash,
                 "previous_hash",
                 f.previous_hash,
                 "generation",
                 Str(f.generation),
                 "created_at",
                 Str(f.created_at),
                 "rotated_at",
                 Str(f.rotated_at),
                 "idle_expires_at",
                 Str(f.idle_expires_at),
                 "absolute_expires_at",
                 Str(f.absolute_expires_at),
                 "revoked",
                 f.revoked ? "1" : "0"});
  if (!r.ok()) return r.error();
  if (r->IsError()) return ReplyError("EVAL", *r);
  if (r->integer == 0) return Error::AlreadyExists("refresh family exists");
  return Status::Ok();
}

Result<RefreshFamily> RedisRefreshTokenStore::GetFamily(const std::string& family_id, int64_t now) {
  auto r = client_->Command({"HGETALL", Key(family_id)});
  if (!r.ok()) return r.error();
  if (r->IsError()) return ReplyError("HGETALL", *r);
  if (r->elements.empty()) return Error::NotFound("refresh family not found");
  RefreshFamily f = FromFields(family_id, r->elements, 0);
  if (!RefreshFamilyLive(f, now)) return Error::NotFound("refresh family not found");
  return f;
}

namespace {

const redis::Script& RotateScript() {
  static const redis::Script script(kRotateScript);
  return script;
}

std::vector<std::string> RotateArgs(const RotateRequest& q) {
  return {q.presented_hash,        q.next_hash,          Str(q.now),
          Str(q.idle_ttl_seconds), Str(q.grace_seconds), q.client_id};
}

Result<RotateResult> RotationOf(const RotateRequest& q, const Reply& r) {
  if (r.IsError()) return ReplyError("EVAL", r);
  if (r.elements.empty() || r.elements[0].str == "missing") {
    return Error::NotFound("refresh family not found");
  }
  const std::string& outcome = r.elements[0].str;
  RotateResult result;
  result.outcome = outcome == "rotated"        ? RotateOutcome::kRotated
                   : outcome == "grace"        ? RotateOutcome::kGraceReissued
                   : outcome == "wrong_client" ? RotateOutcome::kWrongClient
                                               : RotateOutcome::kReuseDetected;
  result.family = FromFields(q.family_id, r.elements, 1);
  return result;
}

}  // namespace

Result<RotateResult> RedisRefreshTokenStore::Rotate(const RotateRequest& q) {
  auto r = Eval(RotateScript(), {Key(q.family_id)}, RotateArgs(q));
  if (!r.ok()) return r.error();
  return RotationOf(q, *r);
}

// EVALSHA only: a node that does not know the script yet answers NOSCRIPT
// (nothing ran), and the blocking Rotate then sends EVAL.
void RedisRefreshTokenStore::TryRotateAsync(RotateRequest q, TryRotateCallback done) {
  std::vector<std::string> command = RotateScript().EvalSha({Key(q.family_id)}, RotateArgs(q));
  client_->TryWriteAsync(
      std::move(command), options_.wait_for_replica, options_.wait_timeout,
      [q = std::move(q), done = std::move(done)](std::optional<Result<redis::WaitResult>> r) {
        if (!r) return done(std::nullopt);
        if (!r->ok()) return done(Result<RotateResult>(r->error()));
        done(RotationOf(q, (*r)->replies.at(0)));
      });
}

Status RedisRefreshTokenStore::RevokeFamily(const std::string& family_id) {
  // HSET only on an existing hash (absent stays absent: idempotent, no stray keys).
  static const redis::Script kRevoke(
      "if redis.call('EXISTS', KEYS[1]) == 1 then "
      "redis.call('HSET', KEYS[1], 'revoked', '1') end return 1");
  auto r = Eval(kRevoke, {Key(family_id)}, {});
  if (!r.ok()) return r.error();
  if (r->IsError()) return ReplyError("EVAL", *r);
  return Status::Ok();
}

}  // namespace bulwark
