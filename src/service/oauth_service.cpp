#include "service/oauth_service.hpp"

#include <algorithm>
#include <set>
#include <utility>

#include "crypto/tokens.hpp"
#include "jwt/jwt.hpp"
#include "log/logger.hpp"
#include "service/auth_service.hpp"
#include "service/refresh_tokens.hpp"

namespace bulwark {

namespace {

constexpr std::size_t kMaxOAuthTokenBytes = 8192;
constexpr std::size_t kClientCacheEntries = 10000;
constexpr std::string_view kSecretPrefix = "sha256:";

OAuthError Err(std::string code, std::string description) {
  return OAuthError{std::move(code), std::move(description)};
}

OAuthError StoreDown(const Error& e) {
  return Err("temporarily_unavailable", "a store is unavailable: " + e.message());
}

bool Contains(const std::vector<std::string>& list, std::string_view item) {
  return std::find(list.begin(), list.end(), item) != list.end();
}

std::vector<std::string> SplitScope(std::string_view scope) {
  return SplitTokens(std::string(scope));
}

std::string JoinScope(const std::vector<std::string>& scopes) { return JoinTokens(scopes); }

}  // namespace

std::string OAuthService::HashClientSecret(std::string_view secret) {
  // Client secrets are generated, high-entropy strings (the CLI insists on
  // 32+ characters), so a fast hash suffices and keeps the token endpoint fast.
  return std::string(kSecretPrefix) + Sha256Hex(secret);
}

OAuthService::OAuthService(ClientStore& clients, RefreshTokenStore& refresh, SessionStore& sessions,
                           KeyService& keys, AccessTokenVerifier& verifier, const Clock& clock,
                           metrics::Registry& metrics, OAuthOptions options)
    : clients_(clients),
      refresh_(refresh),
      sessions_(sessions),
      keys_(keys),
      verifier_(verifier),
      clock_(clock),
      options_(std::move(options)),
      grants_client_credentials_(metrics.GetCounter("bulwark_oauth_grants_total",
                                                    "Tokens issued by grant",
                                                    {{"grant", "client_credentials"}})),
      grants_refresh_(metrics.GetCounter("bulwark_oauth_grants_total", "Tokens issued by grant",
                                         {{"grant", "refresh_token"}})),
      refresh_reuse_(metrics.GetCounter(
          "bulwark_refresh_reuse_total",
          "Rotated refresh tokens presented again: each revoked its whole family")),
      invalid_client_(metrics.GetCounter("bulwark_oauth_invalid_client_total",
                                         "Failed OAuth client authentications")) {
  if (options_.audience.empty()) options_.audience = options_.issuer;
}

Result<OAuthClient> OAuthService::MakeClient(const std::string& id, std::string_view secret,
                                             std::vector<std::string> grants,
                                             std::vector<std::string> scopes, int64_t now) {
  if (id.empty() || id.size() > 256) return Error::InvalidArgument("client id must be 1-256 bytes");
  if (secret.size() < kMinClientSecretBytes || secret.size() > 1024) {
    return Error::InvalidArgument("the client secret must have 32-1024 characters");
  }
  if (grants.empty()) grants = {"client_credentials"};
  for (const std::string& g : grants) {
    if (g != "client_credentials" && g != "refresh_token") {
      return Error::InvalidArgument("unsupported grant: " + g);
    }
  }
  OAuthClient c;
  c.id = id;
  c.secret_hash = HashClientSecret(secret);
  c.grants = std::move(grants);
  c.scopes = std::move(scopes);
  c.created_at = now;
  return c;
}

Status OAuthService::CreateClient(const std::string& id, std::string_view secret,
                                  std::vector<std::string> grants,
                                  std::vector<std::string> scopes) {
  auto client = MakeClient(id, secret, std::move(grants), std::move(scopes), clock_.NowUnix());
  if (!client.ok()) return client.error();
  return clients_.CreateClient(*client);
}

Result<std::vector<OAuthClient>> OAuthService::ListClients() { return clients_.ListClients(); }

Status OAuthService::DeleteClient(const std::string& id) {
  Status st = clients_.DeleteClient(id);
  std::lock_guard lock(client_cache_mutex_);
  client_cache_.erase(id);
  return st;
}

std::optional<OAuthClient> OAuthService::AuthenticateCachedClient(std::string_view client_id,
                                                                  std::string_view secret) {
  if (options_.client_cache_ttl.count() <= 0) return std::nullopt;
  OAuthClient client;
  {
    std::lock_guard lock(client_cache_mutex_);
    auto it = client_cache_.find(std::string(client_id));
    if (it == client_cache_.end()) return std::nullopt;
    if (clock_.Monotonic() - it->second.fetched_at >= options_.client_cache_ttl) {
      client_cache_.erase(it);
      return std::nullopt;
    }
    client = it->second.client;
  }
  // Only a success is answered from memory; anything else takes the full path.
  if (!ConstantTimeEquals(HashClientSecret(secret), client.secret_hash)) return std::nullopt;
  return client;
}

OAuthResult<OAuthClient> OAuthService::AuthenticateClient(std::string_view client_id,
                                                          std::string_view secret) {
  const std::string presented = HashClientSecret(secret);
  Result<OAuthClient> client = clients_.GetClient(std::string(client_id));
  if (!client.ok() && !client.error().IsNotFound()) return StoreDown(client.error());
  // Same comparison work whether or not the client exists.
  const std::string stored = client.ok() ? client->secret_hash : HashClientSecret("\x01unknown");
  const bool match = ConstantTimeEquals(presented, stored);
  if (!client.ok() || !match || client->disabled || client_id.empty()) {
    invalid_client_.Inc();
    return Err("invalid_client", "client authentication failed");
  }
  if (options_.client_cache_ttl.count() > 0) {
    std::lock_guard lock(client_cache_mutex_);
    if (client_cache_.size() >= kClientCacheEntries) client_cache_.clear();  // bounded
    client_cache_[client->id] = CachedClient{*client, clock_.Monotonic()};
  }
  return std::move(*client);
}

Result<std::string> OAuthService::SignAccessToken(const std::string& sub,
                                                  const std::string& username,
                                                  const std::vector<std::string>& roles,
                                                  const std::string& client_id,
                                                  const std::string& scope, int64_t now) {
  jwt::Claims claims;
  claims.iss = options_.issuer;
  claims.sub = sub;
  claims.aud = {options_.audience};
  claims.iat = now;
  claims.exp = now + options_.access_token_ttl_seconds;
  claims.jti = RandomHex(16);
  claims.roles = roles;
  claims.username = username;
  claims.client_id = client_id;
  claims.scope = scope;
  return keys_.Sign(claims);
}

OAuthResult<TokenResponse> OAuthService::ClientCredentials(const OAuthClient& client,
                                                           std::string_view scope) {
  if (!Contains(client.grants, "client_credentials")) {
    return Err("unauthorized_client", "the client may not use client_credentials");
  }
  std::vector<std::string> requested = SplitScope(scope);
  if (requested.empty()) requested = client.scopes;
  for (const std::string& s : requested) {
    if (!Contains(client.scopes, s)) return Err("invalid_scope", "scope not allowed: " + s);
  }
  const int64_t now = clock_.NowUnix();
  const std::string granted = JoinScope(requested);
  auto token = SignAccessToken(client.id, "", {}, client.id, granted, now);
  if (!token.ok()) return StoreDown(token.error());
  grants_client_credentials_.Inc();
  return TokenResponse{std::move(*token), options_.access_token_ttl_seconds, "", granted};
}

OAuthResult<OAuthService::PendingRefresh> OAuthService::BeginRefresh(
    std::string_view refresh_token, const std::string& client_id) const {
  if (refresh_token.size() > kMaxOAuthTokenBytes) return Err("invalid_grant", "malformed token");
  std::string family_id = RefreshFamilyIdOf(refresh_token);
  if (family_id.empty()) return Err("invalid_grant", "malformed refresh token");
  PendingRefresh pending;
  pending.next_token = family_id + "." + NewSessionToken();
  RotateRequest& r = pending.rotation;
  r.family_id = std::move(family_id);
  // Bound to the client it was issued to (RFC 6749 §6): the store checks it
  // before anything else, so another client's attempt changes nothing.
  r.client_id = client_id;
  r.presented_hash = Sha256Hex(refresh_token);
  r.next_hash = Sha256Hex(pending.next_token);
  r.now = clock_.NowUnix();
  r.idle_ttl_seconds = options_.refresh.idle_ttl_seconds;
  r.grace_seconds = options_.refresh.grace_seconds;
  return pending;
}

void OAuthService::RotateRefresh(const PendingRefresh& pending,
                                 RefreshTokenStore::RotateCallback done) {
  refresh_.RotateAsync(pending.rotation, std::move(done));
}

void OAuthService::TryRotateRefresh(const PendingRefresh& pending,
                                    RefreshTokenStore::TryRotateCallback done) {
  refresh_.TryRotateAsync(pending.rotation, std::move(done));
}

std::optional<OAuthResult<TokenResponse>> OAuthService::JudgeRotation(
    const Result<RotateResult>& rotated) {
  if (!rotated.ok()) {
    if (rotated.error().IsNotFound()) return Err("invalid_grant", "unknown or expired token");
    return StoreDown(rotated.error());
  }
  const RefreshFamily& family = rotated->family;
  switch (rotated->outcome) {
    case RotateOutcome::kWrongClient:
      return Err("invalid_grant", "token issued to another client");
    case RotateOutcome::kReuseDetected:
      refresh_reuse_.Inc();
      log::Warn("refresh token reuse: family revoked",
                {{"user_id", family.user_id}, {"client_id", family.client_id}});
      return Err("invalid_grant", "refresh token reuse detected; every token of it is revoked");
    case RotateOutcome::kRotated:
    case RotateOutcome::kGraceReissued:
      break;
  }
  return std::nullopt;
}

OAuthResult<TokenResponse> OAuthService::IssueRefreshed(const PendingRefresh& pending,
                                                        const RefreshFamily& family,
                                                        const Session& session) {
  auto access = SignAccessToken(session.user_id, session.username, session.roles, family.client_id,
                                family.scope, pending.rotation.now);
  if (!access.ok()) return StoreDown(access.error());
  grants_refresh_.Inc();
  return TokenResponse{std::move(*access), options_.access_token_ttl_seconds, pending.next_token,
                       family.scope};
}

std::optional<OAuthResult<TokenResponse>> OAuthService::FinishRefreshWithoutBlocking(
    const PendingRefresh& pending, const Result<RotateResult>& rotated) {
  if (auto judged = JudgeRotation(rotated)) return judged;
  const RefreshFamily& family = rotated->family;
  std::shared_ptr<const Session> session =
      sessions_.PeekSession(family.session_hash, pending.rotation.now);
  if (session == nullptr) return std::nullopt;  // unknown here, or ended: the store decides
  return IssueRefreshed(pending, family, *session);
}

OAuthResult<TokenResponse> OAuthService::FinishRefresh(const PendingRefresh& pending,
                                                       Result<RotateResult> rotated) {
  if (auto judged = JudgeRotation(rotated)) return std::move(*judged);
  const RefreshFamily& family = rotated->family;
  // Bound to its session: a logout or a revocation ends the family too. The
  // rotation already happened; revoking the family makes its new token void.
  auto session = sessions_.GetSession(family.session_hash, pending.rotation.now);
  if (!session.ok()) {
    if (!session.error().IsNotFound()) return StoreDown(session.error());
    (void)refresh_.RevokeFamily(family.family_id);
    return Err("invalid_grant", "the session of this token has ended");
  }
  return IssueRefreshed(pending, family, *session);
}

OAuthResult<TokenResponse> OAuthService::Refresh(std::string_view refresh_token,
                                                 const std::string& client_id) {
  auto pending = BeginRefresh(refresh_token, client_id);
  if (auto* error = std::get_if<OAuthError>(&pending)) return std::move(*error);
  return CompleteRefresh(std::get<PendingRefresh>(pending));
}

OAuthResult<TokenResponse> OAuthService::CompleteRefresh(const PendingRefresh& pending) {
  return FinishRefresh(pending, refresh_.Rotate(pending.rotation));
}

namespace {

Introspection IntrospectionOf(const jwt::Claims& claims) {
  Introspection out;
  out.active = true;
  out.token_type = "access_token";
  out.sub = claims.sub;
  out.username = claims.username;
  out.client_id = claims.client_id;
  out.scope = claims.scope;
  out.iss = claims.iss;
  out.jti = claims.jti;
  out.aud = claims.aud;
  out.exp = claims.exp;
  out.iat = claims.iat;
  return out;
}

}  // namespace

std::optional<OAuthResult<Introspection>> OAuthService::IntrospectWithoutBlocking(
    std::string_view token) {
  if (token.size() > kMaxOAuthTokenBytes || !LooksLikeJwt(token)) return std::nullopt;
  auto cached = verifier_.VerifyCached(token, "");
  if (!cached) return std::nullopt;
  if (!cached->ok()) return Introspection{};  // VerifyCached fails only for the audience
  return IntrospectionOf(***cached);
}

OAuthResult<Introspection> OAuthService::Introspect(std::string_view token) {
  Introspection out;
  if (token.empty() || token.size() > kMaxOAuthTokenBytes) return out;
  const int64_t now = clock_.NowUnix();
  if (LooksLikeJwt(token)) {
    // Any audience: the issuer vouches for every token it signed.
    auto verified = verifier_.Verify(token, "");
    if (!verified.ok()) {
      if (verified.error().code() == ErrorCode::kUnavailable) return StoreDown(verified.error());
      return out;
    }
    return IntrospectionOf(**verified);
  }
  if (std::string family_id = RefreshFamilyIdOf(token); !family_id.empty()) {
    auto family = refresh_.GetFamily(family_id, now);
    if (!family.ok()) {
      if (family.error().IsNotFound()) return out;
      return StoreDown(family.error());
    }
    if (!ConstantTimeEquals(Sha256Hex(token), family->current_hash)) return out;
    out.active = true;
    out.token_type = "refresh_token";
    out.sub = family->user_id;
    out.client_id = family->client_id;
    out.scope = family->scope;
    out.iss = options_.issuer;
    out.exp = family->idle_expires_at;
    out.iat = family->rotated_at;
    return out;
  }
  if (LooksLikeSessionToken(token)) {
    auto session = sessions_.GetSession(Sha256Hex(token), now);
    if (!session.ok()) {
      if (session.error().IsNotFound()) return out;
      return StoreDown(session.error());
    }
    out.active = true;
    out.token_type = "session";
    out.sub = session->user_id;
    out.username = session->username;
    out.iss = options_.issuer;
    out.exp = session->expires_at;
    out.iat = session->created_at;
    return out;
  }
  return out;
}

OAuthResult<bool> OAuthService::Revoke(std::string_view token) {
  if (token.empty() || token.size() > kMaxOAuthTokenBytes) return true;
  const int64_t now = clock_.NowUnix();
  if (LooksLikeJwt(token)) {
    auto verified = verifier_.Verify(token, "");
    if (!verified.ok()) {
      if (verified.error().code() == ErrorCode::kUnavailable) return StoreDown(verified.error());
      return true;  // invalid or already revoked: nothing to do (RFC 7009 §2.2)
    }
    if (Status st = verifier_.Revoke(token, **verified); !st.ok()) return StoreDown(st.error());
    return true;
  }
  if (std::string family_id = RefreshFamilyIdOf(token); !family_id.empty()) {
    auto family = refresh_.GetFamily(family_id, now);
    if (!family.ok()) {
      if (family.error().IsNotFound()) return true;
      return StoreDown(family.error());
    }
    // Only a holder of one of its tokens may revoke a family.
    const std::string hash = Sha256Hex(token);
    if (ConstantTimeEquals(hash, family->current_hash) ||
        ConstantTimeEquals(hash, family->previous_hash)) {
      if (Status st = refresh_.RevokeFamily(family_id); !st.ok()) return StoreDown(st.error());
    }
    return true;
  }
  return true;
}

}  // namespace bulwark
