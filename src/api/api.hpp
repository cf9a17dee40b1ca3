// The HTTP API of SPEC §3: thin handlers that parse, call one service
// function and format the answer. No sockets here (see http/server.hpp).
#pragma once

#include <string>

#include "http/router.hpp"
#include "metrics/registry.hpp"
#include "service/admin_service.hpp"
#include "service/auth_service.hpp"
#include "service/health_monitor.hpp"

namespace bulwark::api {

struct CookieOptions {
  std::string name = "bulwark_session";
  bool secure = true;  // off only for plain-http development
};

struct ApiContext {
  AuthService& auth;
  AdminService& admin;
  HealthMonitor& health;
  metrics::Registry& metrics;
  CookieOptions cookie;
};

// Registers every route. `context` must outlive the router.
void RegisterRoutes(http::Router& router, ApiContext& context);

}  // namespace bulwark::api
