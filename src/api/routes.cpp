#include "api/handlers.hpp"

namespace bulwark::api {

void RegisterRoutes(http::Router& router, ApiContext& context) {
  RegisterSystemRoutes(router, context);
  RegisterAuthRoutes(router, context);
  RegisterAdminRoutes(router, context);
  if (context.keys != nullptr) RegisterKeyRoutes(router, context);
  if (context.oauth != nullptr) RegisterOAuthRoutes(router, context);
}

std::optional<std::string> PresentedToken(const http::HttpRequest& request,
                                          const CookieOptions& cookie) {
  if (auto bearer = request.BearerToken()) return bearer;
  return request.Cookie(cookie.name);
}

boost::json::object SessionJson(const Session& session) {
  boost::json::array roles;
  for (const auto& r : session.roles) roles.emplace_back(r);
  return {{"user_id", session.user_id},       {"username", session.username},
          {"roles", std::move(roles)},        {"created_at", session.created_at},
          {"expires_at", session.expires_at}, {"ip", session.ip},
          {"user_agent", session.user_agent}};
}

}  // namespace bulwark::api
