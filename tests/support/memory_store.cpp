#include "tests/support/memory_store.hpp"

#include <algorithm>

namespace bulwark::testing {

#define BULWARK_MEMORY_CHECK() \
  if (unavailable) return Down();

Status MemoryStore::CreateUser(const User& user) {
  BULWARK_MEMORY_CHECK();
  std::lock_guard lock(mutex_);
  for (const auto& [id, u] : users_) {
    if (u.username == user.username || id == user.id) return Error::AlreadyExists("user exists");
  }
  users_[user.id] = user;
  return Status::Ok();
}

Result<User> MemoryStore::GetUserById(const std::string& id) {
  BULWARK_MEMORY_CHECK();
  std::lock_guard lock(mutex_);
  auto it = users_.find(id);
  if (it == users_.end()) return Error::NotFound("no such user");
  return it->second;
}

Result<User> MemoryStore::GetUserByUsername(const std::string& username) {
  BULWARK_MEMORY_CHECK();
  std::lock_guard lock(mutex_);
  for (const auto& [id, u] : users_) {
    if (u.username == username) return u;
  }
  return Error::NotFound("no such user");
}

Result<std::vector<User>> MemoryStore::ListUsers() {
  BULWARK_MEMORY_CHECK();
  std::lock_guard lock(mutex_);
  std::vector<User> out;
  for (const auto& [id, u] : users_) out.push_back(u);
  std::sort(out.begin(), out.end(),
            [](const User& a, const User& b) { return a.username < b.username; });
  return out;
}

Status MemoryStore::UpdatePasswordHash(const std::string& id, const std::string& hash,
                                       int64_t now) {
  BULWARK_MEMORY_CHECK();
  std::lock_guard lock(mutex_);
  auto it = users_.find(id);
  if (it == users_.end()) return Error::NotFound("no such user");
  it->second.password_hash = hash;
  it->second.last_modified = now;
  return Status::Ok();
}

Status MemoryStore::SetDisabled(const std::string& id, bool disabled, int64_t now) {
  BULWARK_MEMORY_CHECK();
  std::lock_guard lock(mutex_);
  auto it = users_.find(id);
  if (it == users_.end()) return Error::NotFound("no such user");
  it->second.disabled = disabled;
  it->second.last_modified = now;
  return Status::Ok();
}

Status MemoryStore::UpdateEmail(const std::string& id, const std::string& email, int64_t now) {
  BULWARK_MEMORY_CHECK();
  std::lock_guard lock(mutex_);
  auto it = users_.find(id);
  if (it == users_.end()) return Error::NotFound("no such user");
  it->second.email = email;
  it->second.last_modified = now;
  return Status::Ok();
}

Status MemoryStore::DeleteUser(const std::string& id) {
  BULWARK_MEMORY_CHECK();
  std::lock_guard lock(mutex_);
  if (users_.erase(id) == 0) return Error::NotFound("no such user");
  std::erase_if(grants_, [&](const auto& g) { return g.first == id; });
  return Status::Ok();
}

Status MemoryStore::CreateRole(const Role& role) {
  BULWARK_MEMORY_CHECK();
  std::lock_guard lock(mutex_);
  if (roles_.count(role.name)) return Error::AlreadyExists("role exists");
  roles_[role.name] = role;
  return Status::Ok();
}

Result<Role> MemoryStore::GetRoleByName(const std::string& name) {
  BULWARK_MEMORY_CHECK();
  std::lock_guard lock(mutex_);
  auto it = roles_.find(name);
  if (it == roles_.end()) return Error::NotFound("no such role");
  return it->second;
}

Result<std::vector<Role>> MemoryStore::ListRoles() {
  BULWARK_MEMORY_CHECK();
  std::lock_guard lock(mutex_);
  std::vector<Role> out;
  for (const auto& [name, r] : roles_) out.push_back(r);
  return out;
}

Status MemoryStore::DeleteRole(const std::string& name) {
  BULWARK_MEMORY_CHECK();
  std::lock_guard lock(mutex_);
  if (roles_.erase(name) == 0) return Error::NotFound("no such role");
  std::erase_if(grants_, [&](const auto& g) { return g.second == name; });
  return Status::Ok();
}

Status MemoryStore::GrantRole(const std::string& user_id, const std::string& role_name) {
  BULWARK_MEMORY_CHECK();
  std::lock_guard lock(mutex_);
  if (!users_.count(user_id) || !roles_.count(role_name)) return Error::NotFound("no such user");
  grants_.insert({user_id, role_name});
  return Status::Ok();
}

Status MemoryStore::RevokeRole(const std::string& user_id, const std::string& role_name) {
  BULWARK_MEMORY_CHECK();
  std::lock_guard lock(mutex_);
  if (!users_.count(user_id) || !roles_.count(role_name)) return Error::NotFound("no such user");
  grants_.erase({user_id, role_name});
  return Status::Ok();
}

Result<std::vector<std::string>> MemoryStore::ListUserRoles(const std::string& user_id) {
  BULWARK_MEMORY_CHECK();
  std::lock_guard lock(mutex_);
  std::vector<std::string> out;
  for (const auto& [u, r] : grants_) {
    if (u == user_id) out.push_back(r);
  }
  return out;
}

Result<ConfigEntry> MemoryStore::GetConfig(const std::string& key) {
  BULWARK_MEMORY_CHECK();
  std::lock_guard lock(mutex_);
  auto it = config_.find(key);
  if (it == config_.end()) return Error::NotFound("no such key");
  return it->second;
}

Status MemoryStore::PutConfig(const ConfigEntry& entry) {
  BULWARK_MEMORY_CHECK();
  std::lock_guard lock(mutex_);
  config_[entry.key] = entry;
  return Status::Ok();
}

Status MemoryStore::DeleteConfig(const std::string& key) {
  BULWARK_MEMORY_CHECK();
  std::lock_guard lock(mutex_);
  if (config_.erase(key) == 0) return Error::NotFound("no such key");
  return Status::Ok();
}

Result<std::vector<ConfigEntry>> MemoryStore::ListConfig() {
  BULWARK_MEMORY_CHECK();
  std::lock_guard lock(mutex_);
  std::vector<ConfigEntry> out;
  for (const auto& [k, e] : config_) out.push_back(e);
  return out;
}

Status MemoryStore::CreateSession(const Session& session) {
  BULWARK_MEMORY_CHECK();
  std::lock_guard lock(mutex_);
  if (!sessions_.emplace(session.token_hash, session).second) {
    return Error::AlreadyExists("session exists");
  }
  return Status::Ok();
}

Result<Session> MemoryStore::GetSession(const std::string& token_hash, int64_t now) {
  BULWARK_MEMORY_CHECK();
  std::lock_guard lock(mutex_);
  auto it = sessions_.find(token_hash);
  if (it == sessions_.end() || it->second.expires_at <= now) return Error::NotFound("no session");
  return it->second;
}

Status MemoryStore::TouchSession(const std::string& token_hash, int64_t expires_at, int64_t now) {
  BULWARK_MEMORY_CHECK();
  std::lock_guard lock(mutex_);
  auto it = sessions_.find(token_hash);
  if (it == sessions_.end() || it->second.expires_at <= now) return Error::NotFound("no session");
  it->second.expires_at = expires_at;
  return Status::Ok();
}

Status MemoryStore::DeleteSession(const std::string& token_hash) {
  BULWARK_MEMORY_CHECK();
  std::lock_guard lock(mutex_);
  sessions_.erase(token_hash);
  return Status::Ok();
}

Result<std::vector<Session>> MemoryStore::ListUserSessions(const std::string& user_id,
                                                           int64_t now) {
  BULWARK_MEMORY_CHECK();
  std::lock_guard lock(mutex_);
  std::vector<Session> out;
  for (const auto& [h, s] : sessions_) {
    if (s.user_id == user_id && s.expires_at > now) out.push_back(s);
  }
  std::sort(out.begin(), out.end(),
            [](const Session& a, const Session& b) { return a.created_at < b.created_at; });
  return out;
}

Result<int> MemoryStore::DeleteUserSessions(const std::string& user_id) {
  BULWARK_MEMORY_CHECK();
  std::lock_guard lock(mutex_);
  return static_cast<int>(
      std::erase_if(sessions_, [&](const auto& kv) { return kv.second.user_id == user_id; }));
}

Result<int> MemoryStore::PurgeExpired(int64_t now) {
  BULWARK_MEMORY_CHECK();
  std::lock_guard lock(mutex_);
  return static_cast<int>(
      std::erase_if(sessions_, [&](const auto& kv) { return kv.second.expires_at <= now; }));
}

Status MemoryStore::CreateSigningKey(const SigningKeyRecord& key) {
  BULWARK_MEMORY_CHECK();
  std::lock_guard lock(mutex_);
  if (signing_keys_.count(key.kid)) return Error::AlreadyExists("signing key exists");
  if (key.state != KeyState::kRetired) {
    for (const auto& [kid, k] : signing_keys_) {
      if (k.state == key.state) return Error::AlreadyExists("a key already has this state");
    }
  }
  signing_keys_[key.kid] = key;
  return Status::Ok();
}

Result<std::vector<SigningKeyRecord>> MemoryStore::ListSigningKeys() {
  BULWARK_MEMORY_CHECK();
  std::lock_guard lock(mutex_);
  std::vector<SigningKeyRecord> out;
  for (const auto& [kid, k] : signing_keys_) out.push_back(k);
  std::stable_sort(out.begin(), out.end(),
                   [](const auto& a, const auto& b) { return a.created_at < b.created_at; });
  return out;
}

Result<SigningKeyRecord> MemoryStore::GetSigningKey(const std::string& kid) {
  BULWARK_MEMORY_CHECK();
  std::lock_guard lock(mutex_);
  auto it = signing_keys_.find(kid);
  if (it == signing_keys_.end()) return Error::NotFound("signing key not found");
  return it->second;
}

Result<bool> MemoryStore::UpdateSigningKeyState(const std::string& kid, KeyState from, KeyState to,
                                                int64_t now, int64_t expires_at) {
  BULWARK_MEMORY_CHECK();
  std::lock_guard lock(mutex_);
  auto it = signing_keys_.find(kid);
  if (it == signing_keys_.end()) return Error::NotFound("signing key not found");
  SigningKeyRecord& key = it->second;
  if (key.state != from) return false;
  if (to != KeyState::kRetired && to != from) {
    for (const auto& [other, k] : signing_keys_) {
      if (other != kid && k.state == to)
        return Error::AlreadyExists("a key already has this state");
    }
  }
  key.state = to;
  if (to == KeyState::kActive) key.activated_at = now;
  if (to == KeyState::kRetired) {
    key.retired_at = now;
    key.expires_at = expires_at;
  }
  return true;
}

Status MemoryStore::DeleteSigningKey(const std::string& kid) {
  BULWARK_MEMORY_CHECK();
  std::lock_guard lock(mutex_);
  signing_keys_.erase(kid);
  return Status::Ok();
}

Status MemoryStore::RevokeJti(const std::string& jti, int64_t expires_at) {
  BULWARK_MEMORY_CHECK();
  std::lock_guard lock(mutex_);
  auto [it, inserted] = revoked_jtis_.emplace(jti, expires_at);
  if (!inserted) it->second = std::max(it->second, expires_at);
  return Status::Ok();
}

Result<bool> MemoryStore::IsJtiRevoked(const std::string& jti, int64_t now) {
  BULWARK_MEMORY_CHECK();
  std::lock_guard lock(mutex_);
  auto it = revoked_jtis_.find(jti);
  return it != revoked_jtis_.end() && it->second > now;
}

Result<int> MemoryStore::PurgeExpiredRevocations(int64_t now) {
  BULWARK_MEMORY_CHECK();
  std::lock_guard lock(mutex_);
  return static_cast<int>(
      std::erase_if(revoked_jtis_, [&](const auto& kv) { return kv.second <= now; }));
}

Status MemoryStore::Ping() {
  BULWARK_MEMORY_CHECK();
  return Status::Ok();
}

Stores MemoryStore::AsStores(const std::shared_ptr<MemoryStore>& store) {
  Stores s;
  s.users = store;
  s.roles = store;
  s.config = store;
  s.sessions = store;
  s.signing_keys = store;
  s.revocations = store;
  s.database = store;
  s.session_backend = store;
  s.database_kind = "memory";
  s.session_kind = "memory";
  return s;
}

}  // namespace bulwark::testing
