#include "api/json_support.hpp"

namespace bulwark::api {

namespace json = boost::json;

Result<json::object> ParseJsonObject(const std::string& body) {
  boost::system::error_code ec;
  json::value value = json::parse(body, ec);
  if (ec) return Error::InvalidArgument("invalid_json: request body is not valid JSON");
  if (!value.is_object()) {
    return Error::InvalidArgument("invalid_json: request body must be a JSON object");
  }
  return std::move(value.as_object());
}

Result<std::optional<std::string>> OptionalString(const json::object& obj, std::string_view key) {
  const json::value* v = obj.if_contains(key);
  if (v == nullptr || v->is_null()) return std::optional<std::string>{};
  if (!v->is_string()) {
    return Error::InvalidArgument("field '" + std::string(key) + "' must be a string");
  }
  return std::optional<std::string>{std::string(v->as_string())};
}

Result<std::string> RequiredString(const json::object& obj, std::string_view key) {
  auto v = OptionalString(obj, key);
  if (!v.ok()) return v.error();
  if (!v->has_value()) {
    return Error::InvalidArgument("field '" + std::string(key) + "' is required");
  }
  return std::move(**v);
}

Result<std::optional<bool>> OptionalBool(const json::object& obj, std::string_view key) {
  const json::value* v = obj.if_contains(key);
  if (v == nullptr || v->is_null()) return std::optional<bool>{};
  if (!v->is_bool()) {
    return Error::InvalidArgument("field '" + std::string(key) + "' must be true or false");
  }
  return std::optional<bool>{v->as_bool()};
}

http::HttpResponse BadRequest(const Error& error) {
  const std::string& m = error.message();
  constexpr std::string_view kJsonPrefix = "invalid_json: ";
  if (m.rfind(kJsonPrefix, 0) == 0) {
    return http::HttpResponse::Error(400, "invalid_json", m.substr(kJsonPrefix.size()));
  }
  return http::HttpResponse::Error(400, "invalid_request", m);
}

http::HttpResponse ErrorResponse(const Error& error) {
  switch (error.code()) {
    case ErrorCode::kInvalidArgument:
      return BadRequest(error);
    case ErrorCode::kUnauthorized:
      return http::HttpResponse::Error(401, "unauthorized", "authentication required");
    case ErrorCode::kForbidden:
      return http::HttpResponse::Error(403, "forbidden", error.message());
    case ErrorCode::kNotFound:
      return http::HttpResponse::Error(404, "not_found", error.message());
    case ErrorCode::kAlreadyExists:
      return http::HttpResponse::Error(409, "conflict", error.message());
    case ErrorCode::kUnavailable: {
      // The detail stays in the log; clients learn only that they may retry.
      auto r = http::HttpResponse::Error(503, "unavailable",
                                         "a backing store is unavailable; retry later");
      r.SetHeader("Retry-After", "1");
      return r;
    }
    case ErrorCode::kInternal:
      break;
  }
  return http::HttpResponse::Error(500, "internal_error", "internal error");
}

http::HttpResponse JsonResponse(int status, const json::value& value) {
  return http::HttpResponse::Json(status, json::serialize(value));
}

}  // namespace bulwark::api
