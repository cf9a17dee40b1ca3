// OAuth 2.0 use cases (RFC 6749, 7662, 7009) over the stores: client
// authentication, the client_credentials and refresh_token grants, refresh
// tokens bound to a session and rotated on every use (reuse revokes the
// family), introspection and revocation. No HTTP here: errors carry the RFC
// 6749 §5.2 code in OAuthError::code and the API maps them to statuses.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <variant>

#include "core/clock.hpp"
#include "core/result.hpp"
#include "metrics/registry.hpp"
#include "service/access_token_verifier.hpp"
#include "service/key_service.hpp"
#include "service/refresh_tokens.hpp"
#include "storage/client_store.hpp"
#include "storage/refresh_token_store.hpp"
#include "storage/session_store.hpp"

namespace bulwark {

struct OAuthOptions {
  std::string issuer;
  std::string audience;  // "aud" of access tokens; empty: the issuer
  int64_t access_token_ttl_seconds = 300;
  RefreshTokenLifetimes refresh;
  // How long a client that authenticated stays in memory, so that its next
  // calls need no store read (a client deleted through another replica keeps
  // working here that long); 0: never cached.
  std::chrono::milliseconds client_cache_ttl{1000};
};

// An RFC 6749 §5.2 error: `code` is "invalid_client", "invalid_grant",
// "invalid_request", "invalid_scope", "unauthorized_client",
// "unsupported_grant_type", or "temporarily_unavailable" (a store is down).
struct OAuthError {
  std::string code;
  std::string description;
};

template <typename T>
using OAuthResult = std::variant<T, OAuthError>;

struct TokenResponse {
  std::string access_token;
  int64_t expires_in = 0;
  std::string refresh_token;  // empty when none is issued
  std::string scope;
};

// RFC 7662 answer: active, and when active the claims worth returning.
struct Introspection {
  bool active = false;
  std::string token_type;  // "access_token", "refresh_token", "session"
  std::string sub, username, client_id, scope, iss, jti;
  std::vector<std::string> aud;
  int64_t exp = 0, iat = 0;
};

// Thread-safe; every method blocks on stores (call from the store pool).
class OAuthService {
 public:
  OAuthService(ClientStore& clients, RefreshTokenStore& refresh, SessionStore& sessions,
               KeyService& keys, AccessTokenVerifier& verifier, const Clock& clock,
               metrics::Registry& metrics, OAuthOptions options);

  // Checks a client's secret in constant time; an unknown client costs the
  // same. invalid_client for unknown, disabled or wrong secret.
  OAuthResult<OAuthClient> AuthenticateClient(std::string_view client_id, std::string_view secret);

  // AuthenticateClient answered from memory without blocking: the client when
  // it authenticated here within client_cache_ttl and `secret` matches;
  // nullopt otherwise (then call AuthenticateClient from the store pool).
  std::optional<OAuthClient> AuthenticateCachedClient(std::string_view client_id,
                                                      std::string_view secret);

  // grant_type=client_credentials: an access token for the client itself
  // (sub = client_id), no refresh token (RFC 6749 §4.4.3). `scope` must be a
  // subset of the client's scopes; empty asks for all of them.
  OAuthResult<TokenResponse> ClientCredentials(const OAuthClient& client, std::string_view scope);

  // grant_type=refresh_token (and POST /v1/auth/refresh with client_id ""):
  // rotates the token and returns a new access + refresh token. A rotated
  // token presented again after the grace window revokes the family
  // (invalid_grant); a token whose session has ended is invalid_grant too.
  OAuthResult<TokenResponse> Refresh(std::string_view refresh_token, const std::string& client_id);

  // Refresh in three parts, for callers that wait for the rotation without
  // holding a thread (RefreshTokenStore::RotateAsync batches rotations):
  // BeginRefresh checks the token's form and builds the rotation (no store
  // access, no blocking); RotateRefresh hands it to the store; FinishRefresh
  // judges the rotation, checks the session and signs (blocks on the session
  // store: call it from the store pool).
  struct PendingRefresh {
    RotateRequest rotation;
    std::string next_token;
  };
  OAuthResult<PendingRefresh> BeginRefresh(std::string_view refresh_token,
                                           const std::string& client_id) const;
  // True when RotateRefresh never blocks (it may then run on an I/O thread).
  bool RefreshRotatesWithoutBlocking() const { return refresh_.RotatesWithoutBlocking(); }
  void RotateRefresh(const PendingRefresh& pending, RefreshTokenStore::RotateCallback done);
  OAuthResult<TokenResponse> FinishRefresh(const PendingRefresh& pending,
                                           Result<RotateResult> rotated);
  // RotateRefresh + FinishRefresh on the calling thread, blocking (store pool).
  OAuthResult<TokenResponse> CompleteRefresh(const PendingRefresh& pending);
  // For stores whose rotation would block (RefreshRotatesWithoutBlocking()
  // false): one try without blocking (RefreshTokenStore::TryRotateAsync);
  // nullopt in `done` means "call CompleteRefresh from the store pool".
  void TryRotateRefresh(const PendingRefresh& pending, RefreshTokenStore::TryRotateCallback done);
  // FinishRefresh when it needs no blocking store call: the answer follows
  // from the rotation alone, or the session is one the session store holds
  // in memory (PeekSession). nullopt: call FinishRefresh from the store pool.
  std::optional<OAuthResult<TokenResponse>> FinishRefreshWithoutBlocking(
      const PendingRefresh& pending, const Result<RotateResult>& rotated);

  // RFC 7662. A token it cannot vouch for is {active: false}; only a store
  // outage is an error (temporarily_unavailable).
  OAuthResult<Introspection> Introspect(std::string_view token);
  // Introspect without blocking: an access token the verifier has cached;
  // nullopt when the store must be asked.
  std::optional<OAuthResult<Introspection>> IntrospectWithoutBlocking(std::string_view token);

  // RFC 7009: revokes a refresh token's family or an access token's jti;
  // unknown tokens are fine (OK).
  OAuthResult<bool> Revoke(std::string_view token);

  // Client administration (/v1/admin/clients, `bulwark client`). The secret
  // must have at least kMinClientSecretBytes characters (it is checked with a
  // fast hash, so it must carry its own entropy); only its hash is stored.
  static constexpr std::size_t kMinClientSecretBytes = 32;
  Status CreateClient(const std::string& id, std::string_view secret,
                      std::vector<std::string> grants, std::vector<std::string> scopes);
  Result<std::vector<OAuthClient>> ListClients();
  Status DeleteClient(const std::string& id);

  // A validated client record (the checks CreateClient makes), for callers
  // that write to a ClientStore themselves (the CLI). kInvalidArgument.
  static Result<OAuthClient> MakeClient(const std::string& id, std::string_view secret,
                                        std::vector<std::string> grants,
                                        std::vector<std::string> scopes, int64_t now);

  // For tests and the CLI: the stored form of a client secret.
  static std::string HashClientSecret(std::string_view secret);

 private:
  // The answer a rotation alone decides (not found, store down, another
  // client, reuse); nullopt when it rotated and the session must be checked.
  std::optional<OAuthResult<TokenResponse>> JudgeRotation(const Result<RotateResult>& rotated);
  OAuthResult<TokenResponse> IssueRefreshed(const PendingRefresh& pending,
                                            const RefreshFamily& family, const Session& session);
  Result<std::string> SignAccessToken(const std::string& sub, const std::string& username,
                                      const std::vector<std::string>& roles,
                                      const std::string& client_id, const std::string& scope,
                                      int64_t now);

  ClientStore& clients_;
  RefreshTokenStore& refresh_;
  SessionStore& sessions_;
  KeyService& keys_;
  AccessTokenVerifier& verifier_;
  const Clock& clock_;
  OAuthOptions options_;
  metrics::Counter& grants_client_credentials_;
  metrics::Counter& grants_refresh_;
  metrics::Counter& refresh_reuse_;
  metrics::Counter& invalid_client_;

  struct CachedClient {
    OAuthClient client;
    std::chrono::steady_clock::time_point fetched_at;
  };
  std::mutex client_cache_mutex_;
  std::unordered_map<std::string, CachedClient> client_cache_;  // GUARDED_BY(client_cache_mutex_)
};

}  // namespace bulwark
