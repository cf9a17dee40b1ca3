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

void AuthService::EnableAccessTokens(KeyService& keys, AccessTokenVerifier& verifier,
                                     AccessTokenOptions options) {
  keys_ = &keys;
  verifier_ = &verifier;
  access_ = std::move(options);
  if (access_.audience.empty()) access_.audience = access_.issuer;
  access_tokens_issued_ = &metrics_.GetCounter("bulwark_access_tokens_issued_total",
                                               "JWT access tokens signed at login.");
}

void AuthService::EnableRefreshTokens(LoginStore& logins, RefreshTokenLifetimes lifetimes) {
  logins_ = &logins;
  refresh_ = lifetimes;
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
  Status stored = Status::Ok();
  if (logins_ != nullptr) {
    NewRefreshToken refresh = MakeRefreshFamily(s, "", s.created_at, refresh_);
    stored = logins_->CreateLogin(s, refresh.family);
    result.refresh_token = std::move(refresh.token);
  } else {
    stored = sessions_.CreateSession(s);
  }
  if (!stored.ok()) {
    login_error_.Inc();
    return Error::Unavailable("session store unavailable: " + stored.error().message());
  }
  login_ok_.Inc();
  sessions_created_.Inc();
  return result;
}

namespace {

// Sliding sessions are renewed once less than half their lifetime is left.
bool DueForRenewal(const AuthOptions& options, int64_t expires_at, int64_t now) {
  return options.session_sliding && expires_at - now < options.session_ttl_seconds / 2;
}

Session IdentityOf(const jwt::Claims& claims) {
  Session identity;
  identity.user_id = claims.sub;
  identity.username = claims.username;
  identity.roles = claims.roles;
  identity.created_at = claims.iat;
  identity.expires_at = claims.exp;
  identity.client = claims.client_id;
  return identity;
}

Result<Session> IdentityOf(const Result<VerifiedClaims>& verified) {
  if (!verified.ok()) return verified.error();
  return IdentityOf(**verified);
}

}  // namespace

std::shared_ptr<const Session> AuthService::KeptSession(std::string_view token) {
  if (!LooksLikeSessionToken(token)) return nullptr;
  const int64_t now = clock_.NowUnix();
  std::shared_ptr<const Session> kept = sessions_.PeekSession(Sha256Hex(token), now);
  // A renewal writes: that is the store pool's work.
  if (!kept || DueForRenewal(options_, kept->expires_at, now)) return nullptr;
  return kept;
}

std::optional<Result<Session>> AuthService::VerifyWithoutBlocking(std::string_view token) {
  if (verifier_ == nullptr || !LooksLikeJwt(token)) return std::nullopt;
  auto cached = verifier_->VerifyCached(token, access_.audience);
  if (!cached) return std::nullopt;
  return IdentityOf(*cached);
}

bool AuthService::VerifySessionAsync(std::string_view token, AsyncVerify done) {
  // A JWT never looks like a session token (43 base64url characters, no dots).
  if (!sessions_.GetsSessionsWithoutBlocking() || !LooksLikeSessionToken(token)) return false;
  const int64_t now = clock_.NowUnix();
  sessions_.GetSessionAsync(
      Sha256Hex(token), now,
      [now, options = options_, done = std::move(done)](std::optional<Result<Session>> session) {
        if (!session) return done(std::nullopt);
        if (!session->ok()) {
          if (session->error().IsNotFound()) {
            return done(Result<Session>(Error::Unauthorized("unknown or expired session")));
          }
          return done(std::nullopt);
        }
        // A renewal writes: that is the store pool's work.
        if (DueForRenewal(options, (*session)->expires_at, now)) return done(std::nullopt);
        done(std::move(session));
      });
  return true;
}

Result<Session> AuthService::Verify(std::string_view token) {
  if (verifier_ != nullptr && LooksLikeJwt(token)) {
    return IdentityOf(verifier_->Verify(token, access_.audience));
  }
  if (!LooksLikeSessionToken(token)) return Error::Unauthorized("malformed token");
  int64_t now = clock_.NowUnix();
  std::string hash = Sha256Hex(token);
  auto session = sessions_.GetSession(hash, now);
  if (!session.ok()) {
    if (session.error().IsNotFound()) return Error::Unauthorized("unknown or expired session");
    return Error::Unavailable("session store unavailable: " + session.error().message());
  }
  if (DueForRenewal(options_, session->expires_at, now)) {
    int64_t new_expiry = now + options_.session_ttl_seconds;
    // A failed renewal is not a failed verification: the session is still valid.
    if (sessions_.TouchSession(hash, new_expiry, now).ok()) session->expires_at = new_expiry;
  }
  return session;
}

Status AuthService::Logout(std::string_view token) {
  if (verifier_ != nullptr && LooksLikeJwt(token)) {
    auto verified = verifier_->Verify(token, access_.audience);
    if (!verified.ok()) {
      if (verified.error().code() == ErrorCode::kUnavailable) return verified.error();
      return Status::Ok();  // invalid, expired or already revoked: nothing to end
    }
    return verifier_->Revoke(token, **verified);
  }
  if (!LooksLikeSessionToken(token)) return Status::Ok();
  Status st = sessions_.DeleteSession(Sha256Hex(token));
  if (!st.ok()) return Error::Unavailable("session store unavailable: " + st.error().message());
  return Status::Ok();
}

}  // namespace bulwark
