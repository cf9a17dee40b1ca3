// GET /.well-known/jwks.json and /.well-known/openid-configuration (inline:
// memory only), GET /v1/admin/keys and POST /v1/admin/keys/rotate (store pool).
#include "api/handlers.hpp"
#include "api/json_support.hpp"

namespace bulwark::api {
namespace {

using http::Executor;
using http::HttpRequest;
using http::HttpResponse;
namespace json = boost::json;

json::object KeyJson(const SigningKeyRecord& k) {
  boost::system::error_code ec;
  json::value jwk = json::parse(k.public_jwk, ec);
  if (ec) jwk = nullptr;
  json::object o{{"kid", k.kid},
                 {"algorithm", k.algorithm},
                 {"state", KeyStateName(k.state)},
                 {"created_at", k.created_at},
                 {"activated_at", k.activated_at},
                 {"public_jwk", std::move(jwk)}};
  if (k.state == KeyState::kRetired) {
    o["retired_at"] = k.retired_at;
    o["expires_at"] = k.expires_at;
  }
  return o;
}

HttpResponse Jwks(ApiContext& ctx) {
  auto ring = ctx.keys->Current();
  HttpResponse r = HttpResponse::Json(200, ring->jwks.empty() ? R"({"keys":[]})" : ring->jwks);
  r.SetHeader("Content-Type", "application/jwk-set+json");
  r.SetHeader("Cache-Control",
              "public, max-age=" + std::to_string(ctx.discovery.jwks_max_age_seconds));
  return r;
}

std::string OpenIdConfiguration(const DiscoveryOptions& d) {
  const std::string& base = d.issuer;
  json::object out{{"issuer", base},
                   {"jwks_uri", base + "/.well-known/jwks.json"},
                   {"token_endpoint", base + "/oauth2/token"},
                   {"introspection_endpoint", base + "/oauth2/introspect"},
                   {"revocation_endpoint", base + "/oauth2/revoke"},
                   {"grant_types_supported", json::array{"client_credentials", "refresh_token"}},
                   {"response_types_supported", json::array{"token"}},
                   {"subject_types_supported", json::array{"public"}},
                   {"id_token_signing_alg_values_supported", json::array{"ES256", "EdDSA"}},
                   {"token_endpoint_auth_methods_supported",
                    json::array{"client_secret_basic", "client_secret_post", "tls_client_auth"}},
                   {"introspection_endpoint_auth_methods_supported",
                    json::array{"client_secret_basic", "client_secret_post"}},
                   {"revocation_endpoint_auth_methods_supported",
                    json::array{"client_secret_basic", "client_secret_post"}},
                   {"claims_supported", json::array{"iss", "sub", "aud", "exp", "iat", "jti",
                                                    "roles", "preferred_username"}}};
  return json::serialize(out);
}

HttpResponse ListKeys(ApiContext& ctx, HttpRequest&) {
  auto keys = ctx.keys->List();
  if (!keys.ok()) return ErrorResponse(keys.error());
  json::array out;
  for (const auto& k : *keys) out.push_back(KeyJson(k));
  return JsonResponse(200, json::object{{"keys", std::move(out)}});
}

HttpResponse RotateKeys(ApiContext& ctx, HttpRequest&) {
  auto next = ctx.keys->Rotate();
  if (!next.ok()) return ErrorResponse(next.error());
  return JsonResponse(202, json::object{{"next", KeyJson(*next)},
                                        {"publish_delay_seconds", ctx.keys->publish_delay()}});
}

}  // namespace

void RegisterKeyRoutes(http::Router& router, ApiContext& ctx) {
  router.Add("GET", "/.well-known/jwks.json", Executor::kInline,
             [&ctx](HttpRequest&) { return Jwks(ctx); });
  router.Add("GET", "/.well-known/openid-configuration", Executor::kInline,
             [&ctx, body = OpenIdConfiguration(ctx.discovery)](HttpRequest&) {
               HttpResponse r = HttpResponse::Json(200, body);
               r.SetHeader("Cache-Control",
                           "public, max-age=" + std::to_string(ctx.discovery.jwks_max_age_seconds));
               return r;
             });
  using Fn = HttpResponse (*)(ApiContext&, HttpRequest&);
  auto admin = [&router, &ctx](const char* method, const char* pattern, Fn fn) {
    router.Add(method, pattern, Executor::kStore, [&ctx, fn](HttpRequest& req) {
      if (auto denied = RequireAdmin(ctx, req)) return std::move(*denied);
      return fn(ctx, req);
    });
  };
  admin("GET", "/v1/admin/keys", ListKeys);
  admin("POST", "/v1/admin/keys/rotate", RotateKeys);
}

}  // namespace bulwark::api
