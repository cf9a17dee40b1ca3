#include "service/admin_service.hpp"

#include "crypto/tokens.hpp"
#include "service/auth_service.hpp"

namespace bulwark {
namespace {

bool AllCharsIn(const std::string& s, std::string_view extra, std::size_t max_len) {
  if (s.empty() || s.size() > max_len) return false;
  for (char c : s) {
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              extra.find(c) != std::string_view::npos;
    if (!ok) return false;
  }
  return true;
}

Status ValidatePassword(const std::string& password) {
  if (password.size() < kMinPasswordBytes || password.size() > kMaxPasswordBytes) {
    return Error::InvalidArgument("password must be 8-1024 bytes");
  }
  return Status::Ok();
}

}  // namespace

bool IsValidUsername(const std::string& name) { return AllCharsIn(name, "._@-", 64); }
bool IsValidRoleName(const std::string& name) { return AllCharsIn(name, "._:-", 64); }
bool IsValidConfigKey(const std::string& key) { return AllCharsIn(key, "._:-", 128); }

AdminService::AdminService(UserStore& users, RoleStore& roles, ConfigStore& config,
                           SessionStore& sessions, const PasswordHasher& hasher, const Clock& clock)
    : users_(users),
      roles_(roles),
      config_(config),
      sessions_(sessions),
      hasher_(hasher),
      clock_(clock) {}

Result<UserView> AdminService::View(User user) {
  auto roles = roles_.ListUserRoles(user.id);
  if (!roles.ok()) return roles.error();
  user.password_hash.clear();
  return UserView{std::move(user), std::move(*roles)};
}

Status AdminService::EnsureRole(const std::string& name) {
  if (!IsValidRoleName(name)) return Error::InvalidArgument("invalid role name '" + name + "'");
  Status st = roles_.CreateRole(Role{NewUuid(), name, "[]"});
  if (!st.ok() && !st.error().IsAlreadyExists()) return st;
  return Status::Ok();
}

Result<UserView> AdminService::CreateUser(const NewUser& request) {
  if (!IsValidUsername(request.username)) {
    return Error::InvalidArgument("username must be 1-64 characters of A-Z a-z 0-9 . _ @ -");
  }
  if (Status st = ValidatePassword(request.password); !st.ok()) return st.error();
  if (request.email.size() > 254) return Error::InvalidArgument("email is too long");
  for (const auto& role : request.roles) {
    if (Status st = EnsureRole(role); !st.ok()) return st.error();
  }
  auto hash = hasher_.Hash(request.password);
  if (!hash.ok()) return hash.error();
  User user;
  user.id = NewUuid();
  user.username = request.username;
  user.email = request.email;
  user.password_hash = std::move(*hash);
  user.created_at = user.last_modified = clock_.NowUnix();
  if (Status st = users_.CreateUser(user); !st.ok()) return st.error();
  for (const auto& role : request.roles) {
    if (Status st = roles_.GrantRole(user.id, role); !st.ok()) return st.error();
  }
  return View(std::move(user));
}

Result<UserView> AdminService::GetUser(const std::string& id) {
  auto user = users_.GetUserById(id);
  if (!user.ok()) return user.error();
  return View(std::move(*user));
}

Result<UserView> AdminService::GetUserByUsername(const std::string& username) {
  auto user = users_.GetUserByUsername(username);
  if (!user.ok()) return user.error();
  return View(std::move(*user));
}

Result<std::vector<UserView>> AdminService::ListUsers() {
  auto users = users_.ListUsers();
  if (!users.ok()) return users.error();
  std::vector<UserView> views;
  views.reserve(users->size());
  for (auto& user : *users) {
    auto view = View(std::move(user));
    if (!view.ok()) return view.error();
    views.push_back(std::move(*view));
  }
  return views;
}

Result<UserView> AdminService::UpdateUser(const std::string& id, const UserUpdate& update) {
  auto existing = users_.GetUserById(id);
  if (!existing.ok()) return existing.error();
  int64_t now = clock_.NowUnix();
  bool end_sessions = false;
  if (update.email) {
    if (update.email->size() > 254) return Error::InvalidArgument("email is too long");
    if (Status st = users_.UpdateEmail(id, *update.email, now); !st.ok()) return st.error();
  }
  if (update.password) {
    if (Status st = ValidatePassword(*update.password); !st.ok()) return st.error();
    auto hash = hasher_.Hash(*update.password);
    if (!hash.ok()) return hash.error();
    if (Status st = users_.UpdatePasswordHash(id, *hash, now); !st.ok()) return st.error();
    end_sessions = true;
  }
  if (update.disabled) {
    if (Status st = users_.SetDisabled(id, *update.disabled, now); !st.ok()) return st.error();
    end_sessions = end_sessions || *update.disabled;
  }
  if (end_sessions) {
    auto ended = sessions_.DeleteUserSessions(id);
    if (!ended.ok()) return ended.error();
  }
  return GetUser(id);
}

Status AdminService::DeleteUser(const std::string& id) {
  if (Status st = users_.DeleteUser(id); !st.ok()) return st;
  auto ended = sessions_.DeleteUserSessions(id);
  if (!ended.ok()) return ended.error();
  return Status::Ok();
}

Result<Role> AdminService::CreateRole(const std::string& name,
                                      const std::string& permissions_json) {
  if (!IsValidRoleName(name)) {
    return Error::InvalidArgument("role name must be 1-64 characters of A-Z a-z 0-9 . _ : -");
  }
  Role role{NewUuid(), name, permissions_json.empty() ? "[]" : permissions_json};
  if (Status st = roles_.CreateRole(role); !st.ok()) return st.error();
  return role;
}

Result<std::vector<Role>> AdminService::ListRoles() { return roles_.ListRoles(); }
Status AdminService::DeleteRole(const std::string& name) { return roles_.DeleteRole(name); }

Status AdminService::GrantRole(const std::string& user_id, const std::string& role_name) {
  return roles_.GrantRole(user_id, role_name);
}

Status AdminService::RevokeRole(const std::string& user_id, const std::string& role_name) {
  return roles_.RevokeRole(user_id, role_name);
}

Result<ConfigEntry> AdminService::GetConfig(const std::string& key) {
  return config_.GetConfig(key);
}
Result<std::vector<ConfigEntry>> AdminService::ListConfig() { return config_.ListConfig(); }

Result<ConfigEntry> AdminService::PutConfig(const std::string& key, const std::string& value_json) {
  if (!IsValidConfigKey(key)) {
    return Error::InvalidArgument("key must be 1-128 characters of A-Z a-z 0-9 . _ : -");
  }
  ConfigEntry entry{key, value_json, clock_.NowUnix()};
  if (Status st = config_.PutConfig(entry); !st.ok()) return st.error();
  return entry;
}

Status AdminService::DeleteConfig(const std::string& key) { return config_.DeleteConfig(key); }

Result<std::vector<Session>> AdminService::ListUserSessions(const std::string& user_id) {
  return sessions_.ListUserSessions(user_id, clock_.NowUnix());
}

Result<int> AdminService::RevokeUserSessions(const std::string& user_id) {
  return sessions_.DeleteUserSessions(user_id);
}

}  // namespace bulwark
