// The HTTP API of SPEC §3: thin handlers that parse, call one service
// function and format the answer. No sockets here (see http/server.hpp).
#pragma once

#include <string>

#include "http/router.hpp"
#include "metrics/registry.hpp"
#include "service/admin_service.hpp"
#include "service/auth_service.hpp"
#include "service/health_monitor.hpp"
#include "service/key_service.hpp"
#include "service/oauth_service.hpp"

namespace bulwark::api {

struct CookieOptions {
  std::string name = "bulwark_session";
  bool secure = true;  // off only for plain-http development
};

// OIDC discovery and the JWKS (present when access tokens are enabled).
struct DiscoveryOptions {
  std::string issuer;                  // BULWARK_ISSUER
  int64_t jwks_max_age_seconds = 300;  // Cache-Control of /.well-known/jwks.json
  std::string signing_algorithm = "ES256";
};

struct ApiContext {
  AuthService& auth;
  AdminService& admin;
  HealthMonitor& health;
  metrics::Registry& metrics;
  CookieOptions cookie;
  KeyService* keys = nullptr;  // null: no JWKS, discovery or key administration routes
  DiscoveryOptions discovery{};
  OAuthService* oauth = nullptr;  // null: no /oauth2/* or /v1/auth/refresh routes
};

// Registers every route. `context` must outlive the router.
void RegisterRoutes(http::Router& router, ApiContext& context);

}  // namespace bulwark::api
