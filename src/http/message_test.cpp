#include "http/message.hpp"

#include <gtest/gtest.h>

namespace bulwark::http {
namespace {

HttpRequest WithHeaders(HeaderList headers) {
  HttpRequest request;
  request.headers = std::move(headers);
  return request;
}

TEST(HeaderNameEqualsTest, IgnoresAsciiCase) {
  EXPECT_TRUE(HeaderNameEquals("Content-Type", "content-type"));
  EXPECT_TRUE(HeaderNameEquals("X-REQUEST-ID", "x-request-id"));
  EXPECT_FALSE(HeaderNameEquals("Content-Type", "Content-Typ"));
  EXPECT_FALSE(HeaderNameEquals("a", "b"));
  EXPECT_TRUE(HeaderNameEquals("", ""));
}

TEST(HttpRequestTest, HeaderFindsFirstCaseInsensitively) {
  const HttpRequest request = WithHeaders({{"Host", "a"}, {"X-Thing", "1"}, {"x-thing", "2"}});
  ASSERT_NE(request.Header("x-THING"), nullptr);
  EXPECT_EQ(*request.Header("x-THING"), "1");
  EXPECT_EQ(request.Header("Missing"), nullptr);
}

TEST(HttpRequestTest, CookieParsesAllCookieHeaders) {
  const HttpRequest request =
      WithHeaders({{"Cookie", "a=b; session=xyz ;flag"}, {"cookie", "c=d; quoted=\"q v\""}});
  EXPECT_EQ(request.Cookie("a"), "b");
  EXPECT_EQ(request.Cookie("session"), "xyz");
  EXPECT_EQ(request.Cookie("c"), "d");
  EXPECT_EQ(request.Cookie("quoted"), "q v");
  EXPECT_EQ(request.Cookie("flag"), std::nullopt);
  EXPECT_EQ(request.Cookie("missing"), std::nullopt);
  EXPECT_EQ(request.Cookie("A"), std::nullopt) << "cookie names are case-sensitive";
  EXPECT_EQ(request.Cookie(""), std::nullopt);
}

TEST(HttpRequestTest, CookieFirstMatchWinsAndEmptyValueIsPresent) {
  const HttpRequest request = WithHeaders({{"Cookie", "s=1; s=2; e="}});
  EXPECT_EQ(request.Cookie("s"), "1");
  EXPECT_EQ(request.Cookie("e"), "");
}

TEST(HttpRequestTest, BearerTokenIsCaseInsensitiveOnTheScheme) {
  EXPECT_EQ(WithHeaders({{"Authorization", "Bearer abc.def"}}).BearerToken(), "abc.def");
  EXPECT_EQ(WithHeaders({{"authorization", "bearer tok"}}).BearerToken(), "tok");
  EXPECT_EQ(WithHeaders({{"Authorization", "BEARER   tok  "}}).BearerToken(), "tok");
}

TEST(HttpRequestTest, BearerTokenRejectsOtherShapes) {
  EXPECT_EQ(HttpRequest().BearerToken(), std::nullopt);
  EXPECT_EQ(WithHeaders({{"Authorization", "Basic dXNlcjpwYXNz"}}).BearerToken(), std::nullopt);
  EXPECT_EQ(WithHeaders({{"Authorization", "Bearer"}}).BearerToken(), std::nullopt);
  EXPECT_EQ(WithHeaders({{"Authorization", "Bearer   "}}).BearerToken(), std::nullopt);
  EXPECT_EQ(WithHeaders({{"Authorization", "Bearerabc"}}).BearerToken(), std::nullopt);
  EXPECT_EQ(WithHeaders({{"Authorization", "Bearer a b"}}).BearerToken(), std::nullopt);
}

TEST(HttpResponseTest, JsonSetsContentType) {
  const HttpResponse response = HttpResponse::Json(201, R"({"id":"1"})");
  EXPECT_EQ(response.status, 201);
  EXPECT_EQ(response.body, R"({"id":"1"})");
  ASSERT_NE(response.Header("content-type"), nullptr);
  EXPECT_EQ(*response.Header("content-type"), "application/json");
}

TEST(HttpResponseTest, ErrorBuildsJsonBody) {
  const HttpResponse response = HttpResponse::Error(404, "not_found", "no such user");
  EXPECT_EQ(response.status, 404);
  EXPECT_EQ(response.body, R"({"error":"not_found","message":"no such user"})");
  EXPECT_EQ(*response.Header("Content-Type"), "application/json");
}

TEST(HttpResponseTest, ErrorEscapesQuotesBackslashesAndControls) {
  const HttpResponse response =
      HttpResponse::Error(400, "bad\"code", std::string("a\\b\n\t\x01\x1f\0", 8) + "\"end");
  EXPECT_EQ(response.body, R"({"error":"bad\"code","message":"a\\b\n\t\u0001\u001f\u0000\"end"})");
}

TEST(HttpResponseTest, ErrorKeepsUtf8AndReplacesInvalidBytes) {
  const HttpResponse response =
      HttpResponse::Error(400, "x", "caf\xc3\xa9 \xe2\x82\xac bad:\xff\xc3 end");
  EXPECT_EQ(response.body,
            "{\"error\":\"x\",\"message\":\"caf\xc3\xa9 \xe2\x82\xac bad:\\ufffd\\ufffd end\"}");
  // Overlong encoding and an encoded surrogate are invalid too.
  EXPECT_EQ(HttpResponse::Error(400, "x", "\xc0\xaf\xed\xa0\x80").body,
            R"({"error":"x","message":"\ufffd\ufffd\ufffd\ufffd\ufffd"})");
}

TEST(HttpResponseTest, NoContentIsEmpty) {
  const HttpResponse response = HttpResponse::NoContent();
  EXPECT_EQ(response.status, 204);
  EXPECT_TRUE(response.body.empty());
}

TEST(HttpResponseTest, SetHeaderReplacesAllFieldsOfThatName) {
  HttpResponse response;
  response.headers = {{"X-A", "1"}, {"Other", "o"}, {"x-a", "2"}};
  response.SetHeader("X-a", "3");
  ASSERT_EQ(response.headers.size(), 2u);
  EXPECT_EQ(response.headers[0].second, "3");
  EXPECT_EQ(response.headers[1].first, "Other");
  response.SetHeader("New", "n");
  EXPECT_EQ(*response.Header("new"), "n");
  EXPECT_EQ(response.Header("absent"), nullptr);
}

}  // namespace
}  // namespace bulwark::http
