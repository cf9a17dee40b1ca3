// JSON request parsing and error responses shared by the handlers.
#pragma once

#include <boost/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "core/result.hpp"
#include "http/message.hpp"

namespace bulwark::api {

// Parses the body as a JSON object. kInvalidArgument ("invalid_json") when it
// is not JSON or not an object.
Result<boost::json::object> ParseJsonObject(const std::string& body);

// Reads an optional string field; kInvalidArgument when present with another type.
Result<std::optional<std::string>> OptionalString(const boost::json::object& obj,
                                                  std::string_view key);
// Reads a required string field.
Result<std::string> RequiredString(const boost::json::object& obj, std::string_view key);
Result<std::optional<bool>> OptionalBool(const boost::json::object& obj, std::string_view key);

// Maps a service error to its HTTP status and JSON error body.
http::HttpResponse ErrorResponse(const Error& error);
// 400 {"error":"invalid_request"} (or "invalid_json" for parse failures).
http::HttpResponse BadRequest(const Error& error);

http::HttpResponse JsonResponse(int status, const boost::json::value& value);

}  // namespace bulwark::api
