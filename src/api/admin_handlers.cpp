// /v1/admin/...: users, roles, grants, configuration and a user's sessions.
// Every route requires a session with the admin role.
#include <functional>

#include "api/handlers.hpp"
#include "api/json_support.hpp"

namespace bulwark::api {
namespace {

using http::Executor;
using http::HttpRequest;
using http::HttpResponse;
namespace json = boost::json;

json::object UserJson(const UserView& v) {
  json::array roles;
  for (const auto& r : v.roles) roles.emplace_back(r);
  return {{"id", v.user.id},
          {"username", v.user.username},
          {"email", v.user.email},
          {"disabled", v.user.disabled},
          {"roles", std::move(roles)},
          {"created_at", v.user.created_at},
          {"last_modified", v.user.last_modified}};
}

json::object RoleJson(const Role& role) {
  boost::system::error_code ec;
  json::value permissions = json::parse(role.permissions_json, ec);
  if (ec) permissions = json::array{};
  return {{"id", role.id}, {"name", role.name}, {"permissions", std::move(permissions)}};
}

json::object ConfigJson(const ConfigEntry& e) {
  boost::system::error_code ec;
  json::value value = json::parse(e.value_json, ec);
  return {{"key", e.key}, {"value", std::move(value)}, {"last_modified", e.last_modified}};
}

}  // namespace

std::optional<HttpResponse> RequireAdmin(ApiContext& ctx, const HttpRequest& req) {
  auto token = PresentedToken(req, ctx.cookie);
  if (!token) return ErrorResponse(Error::Unauthorized(""));
  auto session = ctx.auth.Verify(*token);
  if (!session.ok()) return ErrorResponse(session.error());
  for (const auto& role : session->roles) {
    if (role == kAdminRole) return std::nullopt;
  }
  return ErrorResponse(Error::Forbidden("the admin role is required"));
}

namespace {

HttpResponse ListUsers(ApiContext& ctx, HttpRequest&) {
  auto users = ctx.admin.ListUsers();
  if (!users.ok()) return ErrorResponse(users.error());
  json::array out;
  for (const auto& u : *users) out.push_back(UserJson(u));
  return JsonResponse(200, json::object{{"users", std::move(out)}});
}

HttpResponse CreateUser(ApiContext& ctx, HttpRequest& req) {
  auto body = ParseJsonObject(req.body);
  if (!body.ok()) return BadRequest(body.error());
  NewUser user;
  auto username = RequiredString(*body, "username");
  if (!username.ok()) return BadRequest(username.error());
  auto password = RequiredString(*body, "password");
  if (!password.ok()) return BadRequest(password.error());
  auto email = OptionalString(*body, "email");
  if (!email.ok()) return BadRequest(email.error());
  user.username = std::move(*username);
  user.password = std::move(*password);
  user.email = email->value_or("");
  if (const json::value* roles = body->if_contains("roles"); roles && !roles->is_null()) {
    if (!roles->is_array()) return BadRequest(Error::InvalidArgument("'roles' must be an array"));
    for (const auto& r : roles->as_array()) {
      if (!r.is_string()) {
        return BadRequest(Error::InvalidArgument("'roles' must be an array of strings"));
      }
      user.roles.emplace_back(r.as_string());
    }
  }
  auto created = ctx.admin.CreateUser(user);
  if (!created.ok()) return ErrorResponse(created.error());
  auto response = JsonResponse(201, UserJson(*created));
  response.SetHeader("Location", "/v1/admin/users/" + created->user.id);
  return response;
}

HttpResponse GetUser(ApiContext& ctx, HttpRequest& req) {
  auto user = ctx.admin.GetUser(req.path_params.at("id"));
  if (!user.ok()) return ErrorResponse(user.error());
  return JsonResponse(200, UserJson(*user));
}

HttpResponse UpdateUser(ApiContext& ctx, HttpRequest& req) {
  auto body = ParseJsonObject(req.body);
  if (!body.ok()) return BadRequest(body.error());
  UserUpdate update;
  auto email = OptionalString(*body, "email");
  if (!email.ok()) return BadRequest(email.error());
  auto password = OptionalString(*body, "password");
  if (!password.ok()) return BadRequest(password.error());
  auto disabled = OptionalBool(*body, "disabled");
  if (!disabled.ok()) return BadRequest(disabled.error());
  update.email = std::move(*email);
  update.password = std::move(*password);
  update.disabled = *disabled;
  auto user = ctx.admin.UpdateUser(req.path_params.at("id"), update);
  if (!user.ok()) return ErrorResponse(user.error());
  return JsonResponse(200, UserJson(*user));
}

HttpResponse DeleteUser(ApiContext& ctx, HttpRequest& req) {
  if (Status st = ctx.admin.DeleteUser(req.path_params.at("id")); !st.ok()) {
    return ErrorResponse(st.error());
  }
  return HttpResponse::NoContent();
}

HttpResponse ListUserSessions(ApiContext& ctx, HttpRequest& req) {
  const std::string& id = req.path_params.at("id");
  if (auto user = ctx.admin.GetUser(id); !user.ok()) return ErrorResponse(user.error());
  auto sessions = ctx.admin.ListUserSessions(id);
  if (!sessions.ok()) return ErrorResponse(sessions.error());
  json::array out;
  for (const auto& s : *sessions) out.push_back(SessionJson(s));
  return JsonResponse(200, json::object{{"sessions", std::move(out)}});
}

HttpResponse RevokeUserSessions(ApiContext& ctx, HttpRequest& req) {
  auto ended = ctx.admin.RevokeUserSessions(req.path_params.at("id"));
  if (!ended.ok()) return ErrorResponse(ended.error());
  return JsonResponse(200, json::object{{"revoked", *ended}});
}

HttpResponse GrantRole(ApiContext& ctx, HttpRequest& req) {
  auto body = ParseJsonObject(req.body);
  if (!body.ok()) return BadRequest(body.error());
  auto role = RequiredString(*body, "role");
  if (!role.ok()) return BadRequest(role.error());
  if (Status st = ctx.admin.GrantRole(req.path_params.at("id"), *role); !st.ok()) {
    return ErrorResponse(st.error());
  }
  return HttpResponse::NoContent();
}

HttpResponse RevokeRole(ApiContext& ctx, HttpRequest& req) {
  Status st = ctx.admin.RevokeRole(req.path_params.at("id"), req.path_params.at("role"));
  if (!st.ok()) return ErrorResponse(st.error());
  return HttpResponse::NoContent();
}

HttpResponse ListRoles(ApiContext& ctx, HttpRequest&) {
  auto roles = ctx.admin.ListRoles();
  if (!roles.ok()) return ErrorResponse(roles.error());
  json::array out;
  for (const auto& r : *roles) out.push_back(RoleJson(r));
  return JsonResponse(200, json::object{{"roles", std::move(out)}});
}

HttpResponse CreateRole(ApiContext& ctx, HttpRequest& req) {
  auto body = ParseJsonObject(req.body);
  if (!body.ok()) return BadRequest(body.error());
  auto name = RequiredString(*body, "name");
  if (!name.ok()) return BadRequest(name.error());
  std::string permissions = "[]";
  if (const json::value* p = body->if_contains("permissions"); p && !p->is_null()) {
    if (!p->is_array()) {
      return BadRequest(Error::InvalidArgument("'permissions' must be an array"));
    }
    permissions = json::serialize(*p);
  }
  auto role = ctx.admin.CreateRole(*name, permissions);
  if (!role.ok()) return ErrorResponse(role.error());
  return JsonResponse(201, RoleJson(*role));
}

HttpResponse DeleteRole(ApiContext& ctx, HttpRequest& req) {
  if (Status st = ctx.admin.DeleteRole(req.path_params.at("name")); !st.ok()) {
    return ErrorResponse(st.error());
  }
  return HttpResponse::NoContent();
}

HttpResponse ListConfig(ApiContext& ctx, HttpRequest&) {
  auto entries = ctx.admin.ListConfig();
  if (!entries.ok()) return ErrorResponse(entries.error());
  json::array out;
  for (const auto& e : *entries) out.push_back(ConfigJson(e));
  return JsonResponse(200, json::object{{"config", std::move(out)}});
}

HttpResponse GetConfig(ApiContext& ctx, HttpRequest& req) {
  auto entry = ctx.admin.GetConfig(req.path_params.at("key"));
  if (!entry.ok()) return ErrorResponse(entry.error());
  return JsonResponse(200, ConfigJson(*entry));
}

HttpResponse PutConfig(ApiContext& ctx, HttpRequest& req) {
  auto body = ParseJsonObject(req.body);
  if (!body.ok()) return BadRequest(body.error());
  const json::value* value = body->if_contains("value");
  if (value == nullptr) return BadRequest(Error::InvalidArgument("field 'value' is required"));
  auto entry = ctx.admin.PutConfig(req.path_params.at("key"), json::serialize(*value));
  if (!entry.ok()) return ErrorResponse(entry.error());
  return JsonResponse(200, ConfigJson(*entry));
}

HttpResponse DeleteConfig(ApiContext& ctx, HttpRequest& req) {
  if (Status st = ctx.admin.DeleteConfig(req.path_params.at("key")); !st.ok()) {
    return ErrorResponse(st.error());
  }
  return HttpResponse::NoContent();
}

}  // namespace

void RegisterAdminRoutes(http::Router& router, ApiContext& ctx) {
  using Fn = HttpResponse (*)(ApiContext&, HttpRequest&);
  auto admin = [&router, &ctx](const char* method, const char* pattern, Executor executor, Fn fn) {
    router.Add(method, pattern, executor, [&ctx, fn](HttpRequest& req) {
      if (auto denied = RequireAdmin(ctx, req)) return std::move(*denied);
      return fn(ctx, req);
    });
  };
  admin("GET", "/v1/admin/users", Executor::kStore, ListUsers);
  admin("POST", "/v1/admin/users", Executor::kHash, CreateUser);
  admin("GET", "/v1/admin/users/{id}", Executor::kStore, GetUser);
  admin("PATCH", "/v1/admin/users/{id}", Executor::kHash, UpdateUser);
  admin("DELETE", "/v1/admin/users/{id}", Executor::kStore, DeleteUser);
  admin("GET", "/v1/admin/users/{id}/sessions", Executor::kStore, ListUserSessions);
  admin("DELETE", "/v1/admin/users/{id}/sessions", Executor::kStore, RevokeUserSessions);
  admin("POST", "/v1/admin/users/{id}/roles", Executor::kStore, GrantRole);
  admin("DELETE", "/v1/admin/users/{id}/roles/{role}", Executor::kStore, RevokeRole);
  admin("GET", "/v1/admin/roles", Executor::kStore, ListRoles);
  admin("POST", "/v1/admin/roles", Executor::kStore, CreateRole);
  admin("DELETE", "/v1/admin/roles/{name}", Executor::kStore, DeleteRole);
  admin("GET", "/v1/admin/config", Executor::kStore, ListConfig);
  admin("GET", "/v1/admin/config/{key}", Executor::kStore, GetConfig);
  admin("PUT", "/v1/admin/config/{key}", Executor::kStore, PutConfig);
  admin("DELETE", "/v1/admin/config/{key}", Executor::kStore, DeleteConfig);
}

}  // namespace bulwark::api
