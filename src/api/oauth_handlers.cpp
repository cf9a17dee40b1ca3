// OAuth 2.0 endpoints: POST /oauth2/token (client_credentials, refresh_token;
// RFC 6749), /oauth2/introspect (RFC 7662), /oauth2/revoke (RFC 7009), and the
// first-party POST /v1/auth/refresh. Clients authenticate with HTTP Basic
// (client_secret_basic) or form fields (client_secret_post). Errors follow RFC
// 6749 §5.2: {"error": code, "error_description": ...}.
#include <algorithm>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <variant>

#include "api/handlers.hpp"
#include "api/json_support.hpp"
#include "crypto/tokens.hpp"

namespace bulwark::api {
namespace {

using http::Executor;
using http::HttpRequest;
using http::HttpResponse;
using http::Reply;
namespace json = boost::json;

constexpr std::size_t kMaxFormFields = 32;

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// application/x-www-form-urlencoded decoding of one name or value.
bool FormDecode(std::string_view in, std::string* dst) {
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '+') {
      *dst += ' ';
    } else if (in[i] == '%') {
      if (i + 2 >= in.size()) return false;
      int hi = HexValue(in[i + 1]), lo = HexValue(in[i + 2]);
      if (hi < 0 || lo < 0) return false;
      *dst += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else {
      *dst += in[i];
    }
  }
  return true;
}

// application/x-www-form-urlencoded -> fields; nullopt when malformed or a
// field repeats (RFC 6749 §3.2: parameters must not be included more than once).
std::optional<std::unordered_map<std::string, std::string>> ParseForm(std::string_view body) {
  std::unordered_map<std::string, std::string> out;
  auto decode = FormDecode;
  while (!body.empty()) {
    std::size_t amp = body.find('&');
    std::string_view pair = body.substr(0, amp);
    body = amp == std::string_view::npos ? std::string_view{} : body.substr(amp + 1);
    if (pair.empty()) continue;
    std::size_t eq = pair.find('=');
    std::string key, value;
    if (!decode(pair.substr(0, eq), &key)) return std::nullopt;
    if (eq != std::string_view::npos && !decode(pair.substr(eq + 1), &value)) return std::nullopt;
    if (out.size() >= kMaxFormFields || !out.emplace(std::move(key), std::move(value)).second) {
      return std::nullopt;
    }
  }
  return out;
}

HttpResponse OAuthErrorResponse(const OAuthError& e) {
  int status = 400;
  if (e.code == "invalid_client") status = 401;
  if (e.code == "temporarily_unavailable") status = 503;
  json::object body{{"error", e.code}, {"error_description", e.description}};
  HttpResponse r = JsonResponse(status, body);
  if (status == 401) r.SetHeader("WWW-Authenticate", "Basic realm=\"bulwark\"");
  if (status == 503) r.SetHeader("Retry-After", "1");
  r.SetHeader("Pragma", "no-cache");
  return r;
}

HttpResponse InvalidRequest(std::string description) {
  return OAuthErrorResponse(OAuthError{"invalid_request", std::move(description)});
}

HttpResponse TokenJson(const TokenResponse& t) {
  json::object out{
      {"access_token", t.access_token}, {"token_type", "Bearer"}, {"expires_in", t.expires_in}};
  if (!t.refresh_token.empty()) out["refresh_token"] = t.refresh_token;
  if (!t.scope.empty()) out["scope"] = t.scope;
  HttpResponse r = JsonResponse(200, out);
  r.SetHeader("Pragma", "no-cache");
  return r;
}

using Form = std::unordered_map<std::string, std::string>;

struct PresentedClient {
  std::string id;
  std::string secret;
  // Basic credentials as sent, when form-decoding changed them: many clients
  // (curl -u) do not form-encode, so a secret with '+' or '%' is tried both ways.
  std::optional<std::pair<std::string, std::string>> undecoded;
};

// client_secret_basic or client_secret_post (not both: RFC 6749 §2.3).
std::variant<PresentedClient, OAuthError> ClientOf(const HttpRequest& req, const Form& form) {
  const std::string* auth = req.Header("Authorization");
  const bool in_body = form.count("client_secret") > 0;
  if (auth != nullptr && auth->size() > 6 && (auth->compare(0, 6, "Basic ") == 0)) {
    if (in_body) return OAuthError{"invalid_request", "use one client authentication method"};
    auto decoded = Base64Decode(std::string_view(*auth).substr(6));
    if (!decoded) return OAuthError{"invalid_client", "malformed Basic credentials"};
    std::size_t colon = decoded->find(':');
    if (colon == std::string::npos)
      return OAuthError{"invalid_client", "malformed Basic credentials"};
    // RFC 6749 §2.3.1: id and secret are form-encoded before Base64.
    const std::string raw_id = decoded->substr(0, colon);
    const std::string raw_secret = decoded->substr(colon + 1);
    PresentedClient client;
    if (!FormDecode(raw_id, &client.id) || !FormDecode(raw_secret, &client.secret)) {
      return PresentedClient{raw_id, raw_secret, std::nullopt};  // not form-encoded at all
    }
    if (client.id != raw_id || client.secret != raw_secret) {
      client.undecoded = std::make_pair(raw_id, raw_secret);
    }
    return client;
  }
  auto id = form.find("client_id");
  auto secret = form.find("client_secret");
  if (id == form.end() || secret == form.end()) {
    return OAuthError{"invalid_client", "client authentication required"};
  }
  return PresentedClient{id->second, secret->second, std::nullopt};
}

// An OAuth request, parsed on the I/O thread and carried to the store pool
// when it needs a store.
struct OAuthCall {
  Form form;
  PresentedClient client;
};

// The call, or the response that ends it (malformed body, bad client credentials).
std::variant<std::shared_ptr<OAuthCall>, HttpResponse> ParseCall(const HttpRequest& req);

OAuthResult<OAuthClient> Authenticate(ApiContext& ctx, const PresentedClient& c) {
  auto result = ctx.oauth->AuthenticateClient(c.id, c.secret);
  if (c.undecoded && std::holds_alternative<OAuthError>(result) &&
      std::get<OAuthError>(result).code == "invalid_client") {
    return ctx.oauth->AuthenticateClient(c.undecoded->first, c.undecoded->second);
  }
  return result;
}

std::optional<OAuthClient> AuthenticateCached(ApiContext& ctx, const PresentedClient& c) {
  if (auto client = ctx.oauth->AuthenticateCachedClient(c.id, c.secret)) return client;
  if (!c.undecoded) return std::nullopt;
  return ctx.oauth->AuthenticateCachedClient(c.undecoded->first, c.undecoded->second);
}

std::string Field(const std::unordered_map<std::string, std::string>& form, const char* key) {
  auto it = form.find(key);
  return it == form.end() ? "" : it->second;
}

std::variant<std::shared_ptr<OAuthCall>, HttpResponse> ParseCall(const HttpRequest& req) {
  auto form = ParseForm(req.body);
  if (!form) return InvalidRequest("the body must be application/x-www-form-urlencoded");
  auto client = ClientOf(req, *form);
  if (auto* e = std::get_if<OAuthError>(&client)) return OAuthErrorResponse(*e);
  return std::make_shared<OAuthCall>(
      OAuthCall{std::move(*form), std::move(std::get<PresentedClient>(client))});
}

Reply RefreshResponse(OAuthResult<TokenResponse> result) {
  if (auto* e = std::get_if<OAuthError>(&result)) return OAuthErrorResponse(*e);
  return TokenJson(std::get<TokenResponse>(result));
}

using PendingRefreshPtr = std::shared_ptr<OAuthService::PendingRefresh>;

// The step after TryRotateRefresh: no attempt made (nullopt) rotates and
// finishes on the store pool; a rotation is finished back on the I/O thread
// (`done` may run on the Redis client's) when that needs no blocking call,
// on the store pool otherwise.
Reply AfterTriedRotation(OAuthService& oauth, PendingRefreshPtr pending,
                         std::optional<Result<RotateResult>> rotated) {
  if (!rotated) {
    return Reply::Then(Executor::kStore, [&oauth, pending] {
      return RefreshResponse(oauth.CompleteRefresh(*pending));
    });
  }
  return Reply::Then(Executor::kInline,
                     [&oauth, pending, rotated = std::move(*rotated)]() -> Reply {
                       if (auto answer = oauth.FinishRefreshWithoutBlocking(*pending, rotated)) {
                         return RefreshResponse(std::move(*answer));
                       }
                       return Reply::Then(Executor::kStore, [&oauth, pending, rotated] {
                         return RefreshResponse(oauth.FinishRefresh(*pending, rotated));
                       });
                     });
}

// A refresh: the rotation joins the store's next batched commit without
// holding a thread when the store allows it (SQLite's group commit: batches
// then grow with concurrent refreshes, not with the store pool); judging it,
// the session check and signing run on the store pool. A store whose
// rotation would block (Redis) first tries it once from the I/O thread (its
// own connection there: no thread hop) and, when the session is held in
// memory, answers there too; anything else goes to the store pool.
Reply RefreshReply(ApiContext& ctx, std::string_view token, const std::string& client_id) {
  OAuthService& oauth = *ctx.oauth;
  auto begun = oauth.BeginRefresh(token, client_id);
  if (auto* e = std::get_if<OAuthError>(&begun)) return OAuthErrorResponse(*e);
  auto pending =
      std::make_shared<OAuthService::PendingRefresh>(std::get<OAuthService::PendingRefresh>(begun));
  if (!oauth.RefreshRotatesWithoutBlocking()) {
    return Reply::Await([&oauth, pending](Reply::Resume resume) {
      oauth.TryRotateRefresh(*pending, [&oauth, pending, resume = std::move(resume)](
                                           std::optional<Result<RotateResult>> rotated) {
        resume(AfterTriedRotation(oauth, pending, std::move(rotated)));
      });
    });
  }
  return Reply::Await([&oauth, pending](Reply::Resume resume) {
    oauth.RotateRefresh(
        *pending, [&oauth, pending, resume = std::move(resume)](Result<RotateResult> rotated) {
          resume(Reply::Then(Executor::kStore, [&oauth, pending, rotated] {
            return RefreshResponse(oauth.FinishRefresh(*pending, rotated));
          }));
        });
  });
}

Reply TokenFor(ApiContext& ctx, const OAuthCall& call, const OAuthClient& c) {
  const std::string grant = Field(call.form, "grant_type");
  OAuthResult<TokenResponse> result = OAuthError{"unsupported_grant_type", "unsupported grant"};
  if (grant.empty()) return InvalidRequest("grant_type is required");
  if (grant == "client_credentials") {
    result = ctx.oauth->ClientCredentials(c, Field(call.form, "scope"));
  } else if (grant == "refresh_token") {
    if (std::find(c.grants.begin(), c.grants.end(), "refresh_token") == c.grants.end()) {
      return OAuthErrorResponse({"unauthorized_client", "the client may not refresh"});
    }
    const std::string token = Field(call.form, "refresh_token");
    if (token.empty()) return InvalidRequest("refresh_token is required");
    return RefreshReply(ctx, token, c.id);
  }
  if (auto* e = std::get_if<OAuthError>(&result)) return OAuthErrorResponse(*e);
  return TokenJson(std::get<TokenResponse>(result));
}

// Starts on the I/O thread: a client that authenticated moments ago needs no
// store, so a client_credentials grant is answered there (signing is CPU
// work) and a refresh_token grant starts its rotation from there; everything
// else hops to the store pool.
Reply Token(ApiContext& ctx, HttpRequest& req) {
  auto parsed = ParseCall(req);
  if (auto* r = std::get_if<HttpResponse>(&parsed)) return std::move(*r);
  std::shared_ptr<OAuthCall> call = std::get<std::shared_ptr<OAuthCall>>(std::move(parsed));
  if (const std::string grant = Field(call->form, "grant_type");
      grant == "client_credentials" || grant == "refresh_token") {
    if (auto client = AuthenticateCached(ctx, call->client)) {
      return TokenFor(ctx, *call, *client);
    }
  }
  return Reply::Then(Executor::kStore, [&ctx, call]() -> Reply {
    auto client = Authenticate(ctx, call->client);
    if (auto* e = std::get_if<OAuthError>(&client)) return OAuthErrorResponse(*e);
    return TokenFor(ctx, *call, std::get<OAuthClient>(client));
  });
}

HttpResponse IntrospectionJson(const OAuthResult<Introspection>& result) {
  if (auto* e = std::get_if<OAuthError>(&result)) return OAuthErrorResponse(*e);
  const Introspection& i = std::get<Introspection>(result);
  json::object out{{"active", i.active}};
  if (i.active) {
    out["token_type"] = i.token_type;
    if (!i.sub.empty()) out["sub"] = i.sub;
    if (!i.username.empty()) out["username"] = i.username;
    if (!i.client_id.empty()) out["client_id"] = i.client_id;
    if (!i.scope.empty()) out["scope"] = i.scope;
    if (!i.iss.empty()) out["iss"] = i.iss;
    if (!i.jti.empty()) out["jti"] = i.jti;
    if (!i.aud.empty()) {
      json::array aud;
      for (const auto& a : i.aud) aud.emplace_back(a);
      out["aud"] = std::move(aud);
    }
    out["exp"] = i.exp;
    out["iat"] = i.iat;
  }
  return JsonResponse(200, out);
}

// Like Token: a cached client asking about a cached access token is answered
// on the I/O thread.
Reply Introspect(ApiContext& ctx, HttpRequest& req) {
  auto parsed = ParseCall(req);
  if (auto* r = std::get_if<HttpResponse>(&parsed)) return std::move(*r);
  std::shared_ptr<OAuthCall> call = std::get<std::shared_ptr<OAuthCall>>(std::move(parsed));
  if (call->form.count("token") > 0 && AuthenticateCached(ctx, call->client)) {
    if (auto answered = ctx.oauth->IntrospectWithoutBlocking(Field(call->form, "token"))) {
      return IntrospectionJson(*answered);
    }
  }
  return Reply::Then(Executor::kStore, [&ctx, call]() -> Reply {
    auto client = Authenticate(ctx, call->client);
    if (auto* e = std::get_if<OAuthError>(&client)) return OAuthErrorResponse(*e);
    if (call->form.count("token") == 0) return InvalidRequest("token is required");
    return IntrospectionJson(ctx.oauth->Introspect(Field(call->form, "token")));
  });
}

HttpResponse Revoke(ApiContext& ctx, HttpRequest& req) {
  auto parsed = ParseCall(req);
  if (auto* r = std::get_if<HttpResponse>(&parsed)) return std::move(*r);
  const OAuthCall& call = *std::get<std::shared_ptr<OAuthCall>>(parsed);
  auto client = Authenticate(ctx, call.client);
  if (auto* e = std::get_if<OAuthError>(&client)) return OAuthErrorResponse(*e);
  if (call.form.count("token") == 0) return InvalidRequest("token is required");
  auto result = ctx.oauth->Revoke(Field(call.form, "token"));
  if (auto* e = std::get_if<OAuthError>(&result)) return OAuthErrorResponse(*e);
  HttpResponse r;
  r.status = 200;
  return r;
}

// First-party refresh: {"refresh_token": "..."} from a token issued at login.
// Starts on the I/O thread (see RefreshReply).
Reply RefreshSession(ApiContext& ctx, HttpRequest& req) {
  auto body = ParseJsonObject(req.body);
  if (!body.ok()) return BadRequest(body.error());
  auto token = RequiredString(*body, "refresh_token");
  if (!token.ok()) return BadRequest(token.error());
  return RefreshReply(ctx, *token, "");
}

json::object ClientJson(const OAuthClient& c) {
  json::array grants, scopes;
  for (const auto& g : c.grants) grants.emplace_back(g);
  for (const auto& sc : c.scopes) scopes.emplace_back(sc);
  return {{"client_id", c.id},
          {"grants", std::move(grants)},
          {"scopes", std::move(scopes)},
          {"disabled", c.disabled},
          {"created_at", c.created_at}};  // never the secret or its hash
}

Result<std::vector<std::string>> StringArray(const json::object& body, const char* key) {
  std::vector<std::string> out;
  const json::value* v = body.if_contains(key);
  if (v == nullptr) return out;
  if (!v->is_array()) return Error::InvalidArgument(std::string(key) + " must be an array");
  for (const json::value& item : v->as_array()) {
    if (!item.is_string()) return Error::InvalidArgument(std::string(key) + " must hold strings");
    out.emplace_back(item.as_string());
  }
  return out;
}

HttpResponse ListClients(ApiContext& ctx, HttpRequest& req) {
  if (auto denied = RequireAdmin(ctx, req)) return *denied;
  auto clients = ctx.oauth->ListClients();
  if (!clients.ok()) return ErrorResponse(clients.error());
  json::array out;
  for (const auto& c : *clients) out.emplace_back(ClientJson(c));
  return JsonResponse(200, json::object{{"clients", std::move(out)}});
}

HttpResponse CreateClient(ApiContext& ctx, HttpRequest& req) {
  if (auto denied = RequireAdmin(ctx, req)) return *denied;
  auto body = ParseJsonObject(req.body);
  if (!body.ok()) return BadRequest(body.error());
  auto id = RequiredString(*body, "client_id");
  if (!id.ok()) return BadRequest(id.error());
  auto secret = RequiredString(*body, "client_secret");
  if (!secret.ok()) return BadRequest(secret.error());
  auto grants = StringArray(*body, "grants");
  if (!grants.ok()) return BadRequest(grants.error());
  auto scopes = StringArray(*body, "scopes");
  if (!scopes.ok()) return BadRequest(scopes.error());
  Status st = ctx.oauth->CreateClient(*id, *secret, std::move(*grants), std::move(*scopes));
  if (!st.ok()) {
    if (st.error().code() == ErrorCode::kInvalidArgument) return BadRequest(st.error());
    return ErrorResponse(st.error());
  }
  return JsonResponse(201, json::object{{"client_id", *id}});
}

HttpResponse DeleteClient(ApiContext& ctx, HttpRequest& req) {
  if (auto denied = RequireAdmin(ctx, req)) return *denied;
  Status st = ctx.oauth->DeleteClient(req.path_params.at("id"));
  if (!st.ok()) return ErrorResponse(st.error());
  return HttpResponse::NoContent();
}

}  // namespace

void RegisterOAuthRoutes(http::Router& router, ApiContext& ctx) {
  // Token and introspection start on the I/O thread (see Token, Introspect).
  router.Add("POST", "/oauth2/token", Executor::kInline,
             [&ctx](HttpRequest& req) { return Token(ctx, req); });
  router.Add("POST", "/oauth2/introspect", Executor::kInline,
             [&ctx](HttpRequest& req) { return Introspect(ctx, req); });
  router.Add("POST", "/oauth2/revoke", Executor::kStore,
             [&ctx](HttpRequest& req) { return Revoke(ctx, req); });
  router.Add("POST", "/v1/auth/refresh", Executor::kInline,
             [&ctx](HttpRequest& req) { return RefreshSession(ctx, req); });
  router.Add("GET", "/v1/admin/clients", Executor::kStore,
             [&ctx](HttpRequest& req) { return ListClients(ctx, req); });
  router.Add("POST", "/v1/admin/clients", Executor::kStore,
             [&ctx](HttpRequest& req) { return CreateClient(ctx, req); });
  router.Add("DELETE", "/v1/admin/clients/{id}", Executor::kStore,
             [&ctx](HttpRequest& req) { return DeleteClient(ctx, req); });
}

}  // namespace bulwark::api
