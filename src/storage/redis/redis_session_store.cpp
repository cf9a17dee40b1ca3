#include "storage/redis/redis_session_store.hpp"

#include <algorithm>
#include <boost/json.hpp>
#include <string_view>
#include <tuple>
#include <utility>

namespace bulwark {

namespace {

using redis::Reply;
namespace json = boost::json;

Error RedisError(const std::string& what, const Reply& reply) {
  return Error::Internal("redis " + what + ": " + reply.str);
}

std::string Str(int64_t v) { return std::to_string(v); }

const json::string* StringField(const json::object& o, const char* name) {
  const json::value* v = o.if_contains(name);
  return v ? v->if_string() : nullptr;
}

}  // namespace

std::string EncodeSessionValue(const Session& s) {
  json::array roles;
  roles.reserve(s.roles.size());
  for (const std::string& r : s.roles) roles.emplace_back(r);
  json::object o;
  o["user_id"] = s.user_id;
  o["username"] = s.username;
  o["roles"] = std::move(roles);
  o["created_at"] = s.created_at;
  o["expires_at"] = s.expires_at;
  o["client"] = s.client;
  o["ip"] = s.ip;
  o["user_agent"] = s.user_agent;
  return json::serialize(o);
}

Result<Session> DecodeSessionValue(const std::string& token_hash, const std::string& value) {
  json::parse_options opts;
  opts.allow_invalid_utf8 = true;  // stored verbatim: a user agent may carry any bytes
  boost::system::error_code ec;
  json::value v = json::parse(value, ec, {}, opts);
  const json::object* o = ec ? nullptr : v.if_object();
  if (o == nullptr) return Error::Internal("redis: session value is not a JSON object");
  Session s;
  s.token_hash = token_hash;
  const json::string* user_id = StringField(*o, "user_id");
  const json::value* created = o->if_contains("created_at");
  const json::value* expires = o->if_contains("expires_at");
  if (user_id == nullptr || created == nullptr || !created->is_int64() || expires == nullptr ||
      !expires->is_int64()) {
    return Error::Internal("redis: session value lacks user_id/created_at/expires_at");
  }
  s.user_id = std::string(*user_id);
  s.created_at = created->as_int64();
  s.expires_at = expires->as_int64();
  if (const json::string* f = StringField(*o, "username")) s.username = std::string(*f);
  if (const json::string* f = StringField(*o, "client")) s.client = std::string(*f);
  if (const json::string* f = StringField(*o, "ip")) s.ip = std::string(*f);
  if (const json::string* f = StringField(*o, "user_agent")) s.user_agent = std::string(*f);
  if (const json::value* roles = o->if_contains("roles"); roles && roles->is_array()) {
    for (const json::value& r : roles->get_array()) {
      if (const json::string* name = r.if_string()) s.roles.emplace_back(*name);
    }
  }
  return s;
}

RedisSessionStore::RedisSessionStore(std::shared_ptr<redis::Client> client,
                                     RedisSessionStoreOptions options)
    : client_(std::move(client)), options_(std::move(options)) {
  if (options_.metrics != nullptr) {
    ack_timeouts_metric_ = &options_.metrics->GetCounter(
        "bulwark_session_replica_ack_timeouts_total",
        "Session writes whose WAIT for a Redis replica timed out (on the primary only)");
  }
  if (options_.cache_max_entries > 0) {
    SessionCacheOptions cache;
    cache.key_prefix = options_.key_prefix + "session:";
    cache.max_entries = options_.cache_max_entries;
    cache.metrics = options_.metrics;
    cache_ = std::make_shared<SessionCache>(std::move(cache));
    client_->TrackKeyPrefix(options_.key_prefix + "session:", cache_);
  }
}

void RedisSessionStore::Forget(const std::string& token_hash) {
  if (cache_ != nullptr) cache_->Forget(token_hash);
}

std::shared_ptr<const Session> RedisSessionStore::PeekSession(const std::string& token_hash,
                                                              int64_t now) {
  if (cache_ == nullptr) return nullptr;
  return cache_->Find(token_hash, now);
}

std::string RedisSessionStore::SessionKey(const std::string& token_hash) const {
  return options_.key_prefix + "session:" + token_hash;
}

std::string RedisSessionStore::UserKey(const std::string& user_id) const {
  return options_.key_prefix + "user-sessions:" + user_id;
}

std::string RedisSessionStore::ExpiryKey(const std::string& token_hash) const {
  char bucket = token_hash.empty() ? '0' : token_hash[0];
  return options_.key_prefix + "session-expiry:" + std::string(1, bucket);
}

Status RedisSessionStore::WriteSessionKey(const std::string& key, const std::string& value,
                                          int64_t expires_at, bool only_if_absent,
                                          bool only_if_present, bool* written) {
  std::vector<std::string> set = {"SET", key, value, "EXAT", Str(std::max<int64_t>(expires_at, 1))};
  if (only_if_absent) set.emplace_back("NX");
  if (only_if_present) set.emplace_back("XX");
  Reply reply;
  if (options_.wait_for_replica) {
    auto r = client_->PipelineAndWait({std::move(set)}, options_.wait_timeout);
    if (!r.ok()) return r.error();
    if (r->replicas_acked == 0) {
      unacknowledged_writes_.fetch_add(1);
      if (ack_timeouts_metric_ != nullptr) ack_timeouts_metric_->Inc();
    }
    reply = std::move(r->replies.at(0));
  } else {
    auto r = client_->Command(std::move(set));
    if (!r.ok()) return r.error();
    reply = std::move(*r);
  }
  if (reply.IsError()) return RedisError("SET", reply);
  *written = !reply.IsNil();
  return Status::Ok();
}

Status RedisSessionStore::IndexSession(const Session& s) {
  const std::string user_key = UserKey(s.user_id);
  const std::string exp = Str(std::max<int64_t>(s.expires_at, 1));
  // The index lives as long as its longest session: NX gives a fresh set a
  // TTL, GT only ever extends it.
  auto r = client_->Pipeline({{"SADD", user_key, s.token_hash},
                              {"EXPIREAT", user_key, exp, "NX"},
                              {"EXPIREAT", user_key, exp, "GT"}});
  if (!r.ok()) return r.error();
  for (const Reply& reply : *r) {
    if (reply.IsError()) return RedisError("SADD/EXPIREAT", reply);
  }
  auto z = client_->Command(
      {"ZADD", ExpiryKey(s.token_hash), Str(s.expires_at), s.token_hash + ":" + s.user_id});
  if (!z.ok()) return z.error();
  if (z->IsError()) return RedisError("ZADD", *z);
  return Status::Ok();
}

Status RedisSessionStore::UnindexSession(const std::string& token_hash,
                                         const std::string& user_id) {
  auto r = client_->Command({"SREM", UserKey(user_id), token_hash});
  if (!r.ok()) return r.error();
  auto z = client_->Command({"ZREM", ExpiryKey(token_hash), token_hash + ":" + user_id});
  if (!z.ok()) return z.error();
  return Status::Ok();
}

Status RedisSessionStore::CreateSession(const Session& session) {
  bool written = false;
  Status st = WriteSessionKey(SessionKey(session.token_hash), EncodeSessionValue(session),
                              session.expires_at, /*only_if_absent=*/true, false, &written);
  if (!st.ok()) return st;
  if (!written) return Error::AlreadyExists("session already exists");
  return IndexSession(session);
}

Status RedisSessionStore::RestoreSession(const Session& session) {
  Forget(session.token_hash);
  auto r = client_->Command({"SET", SessionKey(session.token_hash), EncodeSessionValue(session),
                             "EXAT", Str(std::max<int64_t>(session.expires_at, 1))});
  Forget(session.token_hash);
  if (!r.ok()) return r.error();
  if (r->IsError()) return RedisError("SET", *r);
  return IndexSession(session);
}

namespace {

// The session in a GET reply of its key (GetSession and GetSessionAsync).
Result<Session> SessionOfReply(const std::string& token_hash, const Reply& reply, int64_t now) {
  if (reply.IsError()) return RedisError("GET", reply);
  if (reply.IsNil()) return Error::NotFound("session not found");
  auto session = DecodeSessionValue(token_hash, reply.str);
  if (!session.ok()) return session.error();
  if (session->expires_at <= now) return Error::NotFound("session expired");
  return session;
}

}  // namespace

Result<Session> RedisSessionStore::GetSession(const std::string& token_hash, int64_t now) {
  const uint64_t ticket = cache_ != nullptr ? cache_->Ticket() : 0;
  auto r = client_->Command({"GET", SessionKey(token_hash)});
  if (!r.ok()) return r.error();
  Result<Session> session = SessionOfReply(token_hash, *r, now);
  if (ticket != 0 && session.ok()) cache_->Keep(*session, ticket);
  return session;
}

void RedisSessionStore::GetSessionAsync(const std::string& token_hash, int64_t now,
                                        AsyncSession done) {
  // The ticket is taken before the GET is sent: an invalidation that overtakes
  // the reply keeps the reply out of the cache.
  const uint64_t ticket = cache_ != nullptr ? cache_->Ticket() : 0;
  client_->TryCommandAsync({"GET", SessionKey(token_hash)},
                           [cache = ticket != 0 ? cache_ : nullptr, ticket, token_hash, now,
                            done = std::move(done)](std::optional<Reply> r) {
                             if (!r) return done(std::nullopt);
                             Result<Session> session = SessionOfReply(token_hash, *r, now);
                             if (cache != nullptr && session.ok()) cache->Keep(*session, ticket);
                             done(std::move(session));
                           });
}

Status RedisSessionStore::TouchSession(const std::string& token_hash, int64_t expires_at,
                                       int64_t now) {
  auto session = GetSession(token_hash, now);
  if (!session.ok()) return session.error();
  session->expires_at = expires_at;
  bool written = false;
  Forget(token_hash);
  Status st = WriteSessionKey(SessionKey(token_hash), EncodeSessionValue(*session), expires_at,
                              false, /*only_if_present=*/true, &written);
  Forget(token_hash);
  if (!st.ok()) return st;
  if (!written) return Error::NotFound("session not found");
  return IndexSession(*session);
}

Status RedisSessionStore::DeleteSession(const std::string& token_hash) {
  const std::string key = SessionKey(token_hash);
  auto r = client_->Command({"GET", key});
  if (!r.ok()) return r.error();
  if (r->IsError()) return RedisError("GET", *r);
  Forget(token_hash);  // even when Redis no longer has it: this replica must not either
  if (r->IsNil()) return Status::Ok();
  auto del = client_->Command({"DEL", key});
  Forget(token_hash);
  if (!del.ok()) return del.error();
  auto session = DecodeSessionValue(token_hash, r->str);
  if (!session.ok()) return Status::Ok();  // unreadable value: the key is gone, nothing to unindex
  return UnindexSession(token_hash, session->user_id);
}

Result<std::vector<std::string>> RedisSessionStore::Members(const std::string& key) {
  auto r = client_->Command({"SMEMBERS", key});
  if (!r.ok()) return r.error();
  if (r->IsError()) return RedisError("SMEMBERS", *r);
  std::vector<std::string> members;
  members.reserve(r->elements.size());
  for (Reply& e : r->elements) members.push_back(std::move(e.str));
  return members;
}

Result<std::vector<Session>> RedisSessionStore::ListUserSessions(const std::string& user_id,
                                                                 int64_t now) {
  auto members = Members(UserKey(user_id));
  if (!members.ok()) return members.error();
  std::vector<Session> sessions;
  for (const std::string& hash : *members) {
    auto s = GetSession(hash, now);
    if (s.ok()) {
      sessions.push_back(std::move(*s));
    } else if (!s.error().IsNotFound()) {
      return s.error();
    }
  }
  std::sort(sessions.begin(), sessions.end(), [](const Session& a, const Session& b) {
    return std::tie(a.created_at, a.token_hash) < std::tie(b.created_at, b.token_hash);
  });
  return sessions;
}

Result<int> RedisSessionStore::DeleteUserSessions(const std::string& user_id) {
  auto members = Members(UserKey(user_id));
  if (!members.ok()) return members.error();
  int deleted = 0;
  for (const std::string& hash : *members) {
    Forget(hash);
    auto del = client_->Command({"DEL", SessionKey(hash)});
    Forget(hash);
    if (!del.ok()) return del.error();
    if (del->IsError()) return RedisError("DEL", *del);
    deleted += static_cast<int>(del->integer);
    auto z = client_->Command({"ZREM", ExpiryKey(hash), hash + ":" + user_id});
    if (!z.ok()) return z.error();
  }
  auto del = client_->Command({"DEL", UserKey(user_id)});
  if (!del.ok()) return del.error();
  return deleted;
}

Result<int> RedisSessionStore::PurgeExpired(int64_t now) {
  static constexpr char kHexDigits[] = "0123456789abcdef";
  int purged = 0;
  for (char bucket : std::string_view(kHexDigits)) {
    const std::string zkey = options_.key_prefix + "session-expiry:" + std::string(1, bucket);
    auto due = client_->Command({"ZRANGEBYSCORE", zkey, "-inf", Str(now), "LIMIT", "0", "1000"});
    if (!due.ok()) return due.error();
    if (due->IsError()) return RedisError("ZRANGEBYSCORE", *due);
    for (const Reply& member : due->elements) {
      const std::string& entry = member.str;
      std::size_t colon = entry.find(':');
      std::string hash = entry.substr(0, colon);
      std::string user_id = colon == std::string::npos ? "" : entry.substr(colon + 1);
      // Only delete the session key if it did not get a later expiry meanwhile.
      auto current = client_->Command({"GET", SessionKey(hash)});
      if (!current.ok()) return current.error();
      bool still_expired = current->IsNil();
      if (!current->IsNil()) {
        auto s = DecodeSessionValue(hash, current->str);
        still_expired = !s.ok() || s->expires_at <= now;
      }
      if (still_expired) {
        Forget(hash);
        auto del = client_->Command({"DEL", SessionKey(hash)});
        Forget(hash);
        if (!del.ok()) return del.error();
        auto srem = client_->Command({"SREM", UserKey(user_id), hash});
        if (!srem.ok()) return srem.error();
      }
      auto zrem = client_->Command({"ZREM", zkey, entry});
      if (!zrem.ok()) return zrem.error();
      if (still_expired && zrem->integer > 0) ++purged;
    }
  }
  return purged;
}

Status RedisSessionStore::MarkRevoked(const std::string& token_hash) {
  auto r = client_->Command({"SET", options_.key_prefix + "session-revoked:" + token_hash, "1",
                             "EX", Str(std::max<int64_t>(options_.revocation_ttl_seconds, 1))});
  if (!r.ok()) return r.error();
  if (r->IsError()) return RedisError("SET", *r);
  return Status::Ok();
}

Result<bool> RedisSessionStore::IsRevoked(const std::string& token_hash) {
  auto r = client_->Command({"EXISTS", options_.key_prefix + "session-revoked:" + token_hash});
  if (!r.ok()) return r.error();
  if (r->IsError()) return RedisError("EXISTS", *r);
  return r->integer > 0;
}

Status RedisSessionStore::Ping() { return client_->Ping(); }

}  // namespace bulwark
