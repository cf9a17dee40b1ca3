// POST /v1/auth/login, POST /v1/auth/logout, GET /v1/auth/verify,
// GET|DELETE /v1/sessions/me.
#include <memory>
#include <string>

#include "api/handlers.hpp"
#include "api/json_support.hpp"
#include "core/json_escape.hpp"
#include "log/logger.hpp"

namespace bulwark::api {
namespace {

using http::Executor;
using http::HttpRequest;
using http::HttpResponse;
using http::Reply;
namespace json = boost::json;

std::string SessionCookie(const CookieOptions& c, const std::string& token, int64_t max_age) {
  std::string v = c.name + "=" + token + "; Path=/; Max-Age=" + std::to_string(max_age) +
                  "; HttpOnly; SameSite=Lax";
  if (c.secure) v += "; Secure";
  return v;
}

HttpResponse Unauthorized() {
  auto r = HttpResponse::Error(401, "unauthorized", "a valid session is required");
  r.SetHeader("WWW-Authenticate", "Bearer");
  return r;
}

std::string Join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) {
    if (!out.empty()) out += ',';
    out += item;
  }
  return out;
}

// The answer to a failed login step. One answer for unknown user, wrong
// password and disabled account.
HttpResponse LoginFailure(const Error& error) {
  if (error.code() == ErrorCode::kUnauthorized) {
    return HttpResponse::Error(401, "invalid_credentials", "invalid username or password");
  }
  return ErrorResponse(error);
}

HttpResponse LoginSuccess(const CookieOptions& cookie, const LoginResult& result) {
  const Session& s = result.session;
  int64_t ttl = s.expires_at - s.created_at;
  json::object out{{"session_token", result.session_token},
                   {"token_type", "Bearer"},
                   {"expires_in", ttl},
                   {"expires_at", s.expires_at},
                   {"user", json::object{{"id", s.user_id},
                                         {"username", s.username},
                                         {"roles", SessionJson(s).at("roles")}}}};
  if (!result.access_token.empty()) {
    out["access_token"] = result.access_token;
    out["access_token_expires_in"] = result.access_token_expires_in;
  }
  // Bound to this session and rotated by POST /v1/auth/refresh; written with
  // the session in one transaction where the store allows.
  if (!result.refresh_token.empty()) out["refresh_token"] = result.refresh_token;
  auto response = JsonResponse(200, out);
  response.SetHeader("Set-Cookie", SessionCookie(cookie, result.session_token, ttl));
  return response;
}

// Three steps, so that the hashing pool only hashes: the user read on the
// store pool, Argon2id on the hashing pool (a dummy hash for an unknown user:
// the same work and the same hops), the session write on the store pool.
Reply Login(ApiContext& ctx, HttpRequest& req) {
  auto body = ParseJsonObject(req.body);
  if (!body.ok()) return BadRequest(body.error());
  auto username = RequiredString(*body, "username");
  if (!username.ok()) return BadRequest(username.error());
  auto password = RequiredString(*body, "password");
  if (!password.ok()) return BadRequest(password.error());

  LoginRequest login;
  login.username = std::move(*username);
  login.password = std::move(*password);
  login.ip = req.remote_address;
  if (const auto* ua = req.Header("User-Agent")) login.user_agent = ua->substr(0, 512);
  auto prepared = ctx.auth.PrepareLogin(std::move(login));
  if (!prepared.ok()) return LoginFailure(prepared.error());
  auto attempt = std::make_shared<LoginAttempt>(std::move(*prepared));
  return Reply::Then(Executor::kHash, [&ctx, attempt]() -> Reply {
    if (Status st = ctx.auth.CheckPassword(*attempt); !st.ok()) return LoginFailure(st.error());
    return Reply::Then(Executor::kStore, [&ctx, attempt]() -> Reply {
      auto result = ctx.auth.CompleteLogin(*attempt);
      if (!result.ok()) return LoginFailure(result.error());
      return LoginSuccess(ctx.cookie, *result);
    });
  });
}

HttpResponse Logout(ApiContext& ctx, HttpRequest& req) {
  auto token = PresentedToken(req, ctx.cookie);
  if (!token) return Unauthorized();
  if (Status st = ctx.auth.Logout(*token); !st.ok()) return ErrorResponse(st.error());
  auto response = HttpResponse::NoContent();
  response.SetHeader("Set-Cookie", SessionCookie(ctx.cookie, "", 0));
  return response;
}

HttpResponse VerifyResponse(const Session& session) {
  // Written by hand: this is the forward-auth hot path, answered for every
  // request an edge proxy lets through, and a JSON document tree per answer
  // cost more than the rest of the handler.
  std::string body;
  body.reserve(96 + session.username.size() + session.user_id.size() + 16 * session.roles.size());
  body.append("{\"user\":");
  AppendJsonString(body, session.username);
  body.append(",\"user_id\":");
  AppendJsonString(body, session.user_id);
  body.append(",\"roles\":[");
  for (std::size_t i = 0; i < session.roles.size(); ++i) {
    if (i > 0) body.push_back(',');
    AppendJsonString(body, session.roles[i]);
  }
  body.append("],\"expires_at\":");
  body.append(std::to_string(session.expires_at));
  body.push_back('}');
  auto response = HttpResponse::Json(200, std::move(body));
  response.headers.reserve(4);
  response.headers.emplace_back("X-Auth-User", session.username);
  response.headers.emplace_back("X-Auth-User-Id", session.user_id);
  response.headers.emplace_back("X-Auth-Roles", Join(session.roles));
  return response;
}

HttpResponse VerifyResponse(const Result<Session>& session) {
  if (session.ok()) return VerifyResponse(*session);
  if (session.error().code() == ErrorCode::kUnauthorized) return Unauthorized();
  return ErrorResponse(session.error());  // 503: a store outage is not a bad credential
}

// Starts on the I/O thread: a JWT seen moments ago, or a session the Redis
// store keeps current in memory, is answered there; a session in Redis is read with the request
// waiting on the Redis reply, not on a thread (Reply::Await); everything else (SQLite or PostgreSQL
// sessions, new or due JWTs, a Redis miss or outage) hops to the store pool.
Reply Verify(ApiContext& ctx, HttpRequest& req) {
  auto token = PresentedToken(req, ctx.cookie);
  if (!token) return Unauthorized();
  if (auto kept = ctx.auth.KeptSession(*token)) return VerifyResponse(*kept);
  if (auto answered = ctx.auth.VerifyWithoutBlocking(*token)) return VerifyResponse(*answered);
  auto on_store_pool = [&ctx, token = *token]() -> Reply {
    return VerifyResponse(ctx.auth.Verify(token));
  };
  if (!ctx.auth.SessionsVerifyWithoutBlocking() || !LooksLikeSessionToken(*token)) {
    return Reply::Then(Executor::kStore, std::move(on_store_pool));
  }
  return Reply::Await([&ctx, token = std::move(*token), on_store_pool](Reply::Resume resume) {
    bool started = ctx.auth.VerifySessionAsync(
        token, [resume, on_store_pool](std::optional<Result<Session>> session) {
          // The response is built on the I/O thread: the Redis client's one
          // thread serves every replica's reads and should only hand on.
          if (session) {
            return resume(Reply::Then(Executor::kInline, [answer = std::move(*session)] {
              return VerifyResponse(answer);
            }));
          }
          resume(Reply::Then(Executor::kStore, on_store_pool));
        });
    if (!started) resume(Reply::Then(Executor::kStore, on_store_pool));
  });
}

HttpResponse GetMySession(ApiContext& ctx, HttpRequest& req) {
  auto token = PresentedToken(req, ctx.cookie);
  if (!token) return Unauthorized();
  auto session = ctx.auth.Verify(*token);
  if (!session.ok()) {
    if (session.error().code() == ErrorCode::kUnauthorized) return Unauthorized();
    return ErrorResponse(session.error());
  }
  return JsonResponse(200, SessionJson(*session));
}

}  // namespace

void RegisterAuthRoutes(http::Router& router, ApiContext& ctx) {
  auto bind = [&ctx](HttpResponse (*fn)(ApiContext&, HttpRequest&)) {
    return [&ctx, fn](HttpRequest& req) { return fn(ctx, req); };
  };
  // Login starts on the store pool and hops to the hashing pool and back.
  router.Add("POST", "/v1/auth/login", Executor::kStore,
             [&ctx](HttpRequest& req) { return Login(ctx, req); });
  router.Add("POST", "/v1/auth/logout", Executor::kStore, bind(Logout));
  router.Add("GET", "/v1/auth/verify", Executor::kInline,
             [&ctx](HttpRequest& req) { return Verify(ctx, req); });
  router.Add("GET", "/v1/sessions/me", Executor::kStore, bind(GetMySession));
  router.Add("DELETE", "/v1/sessions/me", Executor::kStore, bind(Logout));
}

}  // namespace bulwark::api
