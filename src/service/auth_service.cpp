#include "service/auth_service.hpp"

#include <utility>

#include "crypto/tokens.hpp"
#include "log/logger.hpp"

namespace bulwark {
namespace {

constexpr const char* kInvalidCredentials = "invalid username or password";

Error InvalidCredentials() { return Error::Unauthorized(kInvalidCredentials); }

}  // namespace

bool LooksLikeSessionToken(std::string_view token) {
  if (token.size() != 43) return false;
  for (char c : token) {
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_';
    if (!ok) return false;
  }
  return true;
}

bool LooksLikeJwt(std::string_view token) {
  if (token.empty() || token.size() > 8192) return false;
  int dots = 0;
  char prev = '.';
  for (char c : token) {
    if (c == '.') {
      if (prev == '.') return false;
      ++dots;
    } else if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                 c == '-' || c == '_')) {
      return false;
    }
    prev = c;
  }
  return dots == 2 && prev != '.';
}

AuthService::AuthService(UserStore& users, RoleStore& roles, SessionStore& sessions,
                         const PasswordHasher& hasher, const Clock& clock,
                         metrics::Registry& metrics, AuthOptions options)
    : users_(users),
      roles_(roles),
      sessions_(sessions),
      hasher_(hasher),
      clock_(clock),
      options_(options),
      login_ok_(metrics.GetCounter("bulwark_logins_total", "Login attempts by result.",
                                   {{"result", "success"}})),
      login_failed_(metrics.GetCounter("bulwark_logins_total", "Login attempts by result.",
                                       {{"result", "invalid_credentials"}})),
      login_error_(metrics.GetCounter("bulwark_logins_total", "Login attempts by result.",
                                      {{"result", "error"}})),
      sessions_created_(
          metrics.GetCounter("bulwark_sessions_created_total", "Sessions created by logins.")),
      rehashes_(metrics.GetCounter("bulwark_password_rehashes_total",
                                   "Password hashes upgraded to the current Argon2id parameters "
                                   "at login.")),
      metrics_(metrics) {}

void AuthService::EnableAccessTokens(KeyService& keys, RevocationStore& revocations,
                                     AccessTokenOptions options) {
  keys_ = &keys;
  revocations_ = &revocations;
  access_ = std::move(options);
  if (access_.audience.empty()) access_.audience = access_.issuer;
  access_tokens_issued_ = &metrics_.GetCounter("bulwark_access_tokens_issued_total",
                                               "JWT access tokens signed at login.");
}

Result<std::string> AuthService::IssueAccessToken(const Session& session, int64_t now) {
  jwt::Claims claims;
  claims.iss = access_.issuer;
  claims.sub = session.user_id;
  claims.aud = {access_.audience};
  claims.iat = now;
  claims.exp = now + access_.ttl_seconds;
  claims.jti = RandomHex(16);
  claims.roles = session.roles;
  claims.username = session.username;
  auto token = keys_->Sign(claims);
  if (!token.ok())
    return Error::Unavailable("cannot sign an access token: " + token.error().message());
  if (access_tokens_issued_ != nullptr) access_tokens_issued_->Inc();
  return token;
}

Result<LoginResult> AuthService::Login(const LoginRequest& request) {
  auto attempt = PrepareLogin(request);
  if (!attempt.ok()) return attempt.error();
  if (Status st = CheckPassword(*attempt); !st.ok()) return st.error();
  return CompleteLogin(*attempt);
}

Result<LoginAttempt> AuthService::PrepareLogin(LoginRequest request) {
  if (request.username.empty() || request.username.size() > kMaxUsernameBytes ||
      request.password.size() > kMaxPasswordBytes) {
    login_failed_.Inc();
    return Error::InvalidArgument("username must be 1-256 bytes and password at most 1024 bytes");
  }
  LoginAttempt attempt;
  auto user = users_.GetUserByUsername(request.username);
  if (user.ok()) {
    attempt.user_ = std::move(*user);
  } else if (!user.error().IsNotFound()) {
    login_error_.Inc();
    return Error::Unavailable("user store unavailable: " + user.error().message());
  }
  attempt.request_ = std::move(request);
  return attempt;
}

Status AuthService::CheckPassword(LoginAttempt& attempt) {
  attempt.accepted_ = false;
  std::string& password = attempt.request_.password;
  if (!attempt.user_) {
    hasher_.VerifyDummy(password);  // same work as a real user
    password.clear();
    login_failed_.Inc();
    log::Info("login failed", {{"reason", "unknown user"}});
    return InvalidCredentials();
  }
  const User& user = *attempt.user_;
  const bool password_ok = hasher_.Verify(user.password_hash, password);
  if (!password_ok || user.disabled) {
    password.clear();
    login_failed_.Inc();
    log::Info("login failed", {{"reason", password_ok ? "account disabled" : "wrong password"},
                               {"user_id", user.id}});
    return InvalidCredentials();
  }
  if (hasher_.NeedsRehash(user.password_hash)) {
    if (auto rehashed = hasher_.Hash(password); rehashed.ok()) attempt.new_hash_ = *rehashed;
  }
  password.clear();
  attempt.accepted_ = true;
  return Status::Ok();
}

Result<LoginResult> AuthService::CompleteLogin(LoginAttempt& attempt) {
  // One session per accepted password check.
  if (!std::exchange(attempt.accepted_, false) || !attempt.user_) return InvalidCredentials();
  const User& user = *attempt.user_;
  if (attempt.new_hash_ &&
      users_.UpdatePasswordHash(user.id, *attempt.new_hash_, clock_.NowUnix()).ok()) {
    rehashes_.Inc();
  }

  auto roles = roles_.ListUserRoles(user.id);
  if (!roles.ok()) {
    login_error_.Inc();
    return Error::Unavailable("role store unavailable: " + roles.error().message());
  }

  const LoginRequest& request = attempt.request_;
  LoginResult result;
  result.session_token = NewSessionToken();
  Session& s = result.session;
  s.token_hash = Sha256Hex(result.session_token);
  s.user_id = user.id;
  s.username = user.username;
  s.roles = std::move(*roles);
  s.created_at = clock_.NowUnix();
  s.expires_at = s.created_at + options_.session_ttl_seconds;
  s.client = request.client;
  s.ip = request.ip;
  s.user_agent = request.user_agent;
  if (keys_ != nullptr) {
    auto access = IssueAccessToken(s, s.created_at);
    if (!access.ok()) {
      login_error_.Inc();
      return access.error();
    }
    result.access_token = std::move(*access);
    result.access_token_expires_in = access_.ttl_seconds;
  }
  if (Status st = sessions_.CreateSession(s); !st.ok()) {
    login_error_.Inc();
    return Error::Unavailable("session store unavailable: " + st.error().message());
  }
  login_ok_.Inc();
  sessions_created_.Inc();
  return result;
}

Result<Session> AuthService::VerifyJwt(std::string_view token, const std::string& token_hash,
                                       int64_t now, std::string* jti) {
  std::optional<CachedClaims> cached;
  {
    std::lock_guard lock(cache_mutex_);
    if (auto it = claims_cache_.find(token_hash); it != claims_cache_.end()) {
      if (it->second.identity.expires_at > now) {
        cached = it->second;
      } else {
        claims_cache_.erase(it);
      }
    }
  }
  if (!cached) {
    std::shared_ptr<const KeyRing> ring = keys_->Current();
    auto kid = jwt::PeekKid(token);
    if (!kid.ok()) return Error::Unauthorized("malformed token");
    if (!ring->keys.Contains(*kid)) {
      // A key another replica published moments ago: reload (at most once a second).
      keys_->RefreshSoon();
      ring = keys_->Current();
    }
    jwt::ValidationOptions options;
    options.issuer = access_.issuer;
    options.audience = access_.audience;
    options.now = now;
    options.leeway_seconds = access_.leeway_seconds;
    auto claims = jwt::Validate(token, ring->keys, options);
    if (!claims.ok())
      return Error::Unauthorized("invalid access token: " + claims.error().message());
    if (claims->jti.empty() || claims->sub.empty()) {
      return Error::Unauthorized("invalid access token: no jti or sub");
    }
    CachedClaims entry;
    entry.identity.user_id = claims->sub;
    entry.identity.username = claims->username;
    entry.identity.roles = claims->roles;
    entry.identity.created_at = claims->iat;
    entry.identity.expires_at = claims->exp;
    entry.identity.client = claims->client_id;
    entry.jti = claims->jti;
    cached = entry;
    // Cached only while not expired (Validate may accept it within the leeway).
    if (claims->exp > now) {
      std::lock_guard lock(cache_mutex_);
      if (claims_cache_.size() >= access_.cache_entries) {
        std::erase_if(claims_cache_,
                      [now](const auto& kv) { return kv.second.identity.expires_at <= now; });
        if (claims_cache_.size() >= access_.cache_entries) claims_cache_.clear();
      }
      if (access_.cache_entries > 0) claims_cache_.emplace(token_hash, entry);
    }
  }
  auto revoked = revocations_->IsJtiRevoked(cached->jti, now);
  if (!revoked.ok()) {
    return Error::Unavailable("revocation store unavailable: " + revoked.error().message());
  }
  if (*revoked) {
    std::lock_guard lock(cache_mutex_);
    claims_cache_.erase(token_hash);
    return Error::Unauthorized("revoked access token");
  }
  if (jti != nullptr) *jti = cached->jti;
  return cached->identity;
}

Result<Session> AuthService::Verify(std::string_view token) {
  if (keys_ != nullptr && LooksLikeJwt(token)) {
    return VerifyJwt(token, Sha256Hex(token), clock_.NowUnix(), nullptr);
  }
  if (!LooksLikeSessionToken(token)) return Error::Unauthorized("malformed token");
  int64_t now = clock_.NowUnix();
  std::string hash = Sha256Hex(token);
  auto session = sessions_.GetSession(hash, now);
  if (!session.ok()) {
    if (session.error().IsNotFound()) return Error::Unauthorized("unknown or expired session");
    return Error::Unavailable("session store unavailable: " + session.error().message());
  }
  if (options_.session_sliding) {
    int64_t remaining = session->expires_at - now;
    if (remaining < options_.session_ttl_seconds / 2) {
      int64_t new_expiry = now + options_.session_ttl_seconds;
      // A failed renewal is not a failed verification: the session is still valid.
      if (sessions_.TouchSession(hash, new_expiry, now).ok()) session->expires_at = new_expiry;
    }
  }
  return session;
}

Status AuthService::Logout(std::string_view token) {
  if (keys_ != nullptr && LooksLikeJwt(token)) {
    const std::string hash = Sha256Hex(token);
    std::string jti;
    auto identity = VerifyJwt(token, hash, clock_.NowUnix(), &jti);
    if (!identity.ok()) {
      if (identity.error().code() == ErrorCode::kUnavailable) return identity.error();
      return Status::Ok();  // invalid, expired or already revoked: nothing to end
    }
    // Revoked until it would have expired anyway (plus the leeway Validate allows).
    Status st = revocations_->RevokeJti(jti, identity->expires_at + access_.leeway_seconds);
    if (!st.ok())
      return Error::Unavailable("revocation store unavailable: " + st.error().message());
    std::lock_guard lock(cache_mutex_);
    claims_cache_.erase(hash);
    return Status::Ok();
  }
  if (!LooksLikeSessionToken(token)) return Status::Ok();
  Status st = sessions_.DeleteSession(Sha256Hex(token));
  if (!st.ok()) return Error::Unavailable("session store unavailable: " + st.error().message());
  return Status::Ok();
}

}  // namespace bulwark
