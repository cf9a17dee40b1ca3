// Per-area route registration (internal to api/).
#pragma once

#include <optional>
#include <string>

#include <boost/json.hpp>

#include "api/api.hpp"

namespace bulwark::api {

void RegisterAuthRoutes(http::Router& router, ApiContext& context);
void RegisterAdminRoutes(http::Router& router, ApiContext& context);
void RegisterSystemRoutes(http::Router& router, ApiContext& context);
// /.well-known/jwks.json, /.well-known/openid-configuration, /v1/admin/keys.
void RegisterKeyRoutes(http::Router& router, ApiContext& context);
// /oauth2/token, /oauth2/introspect, /oauth2/revoke, /v1/auth/refresh.
void RegisterOAuthRoutes(http::Router& router, ApiContext& context);

// Returns an error response unless the caller's session (or access token)
// carries the admin role.
std::optional<http::HttpResponse> RequireAdmin(ApiContext& ctx, const http::HttpRequest& req);

// The presented session token: the session cookie, else "Authorization: Bearer".
std::optional<std::string> PresentedToken(const http::HttpRequest& request,
                                          const CookieOptions& cookie);

boost::json::object SessionJson(const Session& session);

}  // namespace bulwark::api
