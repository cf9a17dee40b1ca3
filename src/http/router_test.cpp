#include "http/router.hpp"

#include <stdexcept>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace bulwark::http {
namespace {

Handler Answer(int status) {
  return [status](HttpRequest&) { return HttpResponse::Json(status, "{}"); };
}

HttpRequest Request(std::string method, std::string path) {
  HttpRequest request;
  request.method = std::move(method);
  request.path = std::move(path);
  request.target = request.path;
  return request;
}

TEST(RouterTest, MatchesLiteralRoutes) {
  Router router;
  router.Add("GET", "/healthz", Executor::kInline, Answer(200));
  router.Add("GET", "/", Executor::kInline, Answer(201));
  HttpRequest request = Request("GET", "/healthz");
  const RouteMatch match = router.Find(request);
  ASSERT_EQ(match.status, 200);
  ASSERT_NE(match.route, nullptr);
  EXPECT_EQ(match.route->pattern, "/healthz");
  EXPECT_EQ(match.route->name, "/healthz");
  EXPECT_EQ(match.route->executor, Executor::kInline);
  HttpRequest root = Request("GET", "/");
  EXPECT_EQ(router.Find(root).route->handler(root).RunInline().status, 201);
}

TEST(ReplyTest, APlainResponseHasNoNextStep) {
  Reply reply(HttpResponse::Json(201, "{}"));
  EXPECT_FALSE(reply.has_next());
  EXPECT_EQ(reply.response().status, 201);
  EXPECT_EQ(std::move(reply).RunInline().status, 201);
}

TEST(ReplyTest, ThenNamesTheExecutorAndRunInlineRunsEveryStep) {
  std::vector<int> order;
  Reply reply = Reply::Then(Executor::kHash, [&order] {
    order.push_back(1);
    return Reply::Then(Executor::kStore, [&order]() -> Reply {
      order.push_back(2);
      return HttpResponse::Json(202, "{}");
    });
  });
  ASSERT_TRUE(reply.has_next());
  EXPECT_EQ(reply.next_executor(), Executor::kHash);
  EXPECT_TRUE(order.empty()) << "Then only describes the step";
  EXPECT_EQ(std::move(reply).RunInline().status, 202);
  EXPECT_EQ(order, (std::vector<int>{1, 2}));
}

TEST(ReplyTest, RunInlineWaitsForAnAwaitedOperationCompletingElsewhere) {
  std::thread completer;
  Reply reply = Reply::Await([&completer](Reply::Resume resume) {
    completer = std::thread([resume] {
      resume(
          Reply::Then(Executor::kStore, []() -> Reply { return HttpResponse::Json(203, "{}"); }));
    });
  });
  EXPECT_TRUE(reply.is_await());
  EXPECT_FALSE(reply.has_next());
  EXPECT_EQ(std::move(reply).RunInline().status, 203);
  completer.join();
  EXPECT_THROW(Reply::Await(nullptr), std::invalid_argument);
}

TEST(ReplyTest, ThenWithoutAStepThrows) {
  EXPECT_THROW(Reply::Then(Executor::kStore, nullptr), std::invalid_argument);
}

TEST(RouterTest, ExtractsParametersAndNamesRouteByPattern) {
  Router router;
  router.Add("DELETE", "/v1/admin/users/{id}/roles/{role}", Executor::kStore, Answer(204));
  HttpRequest request = Request("DELETE", "/v1/admin/users/u-42/roles/admin");
  const RouteMatch match = router.Find(request);
  ASSERT_EQ(match.status, 200);
  EXPECT_EQ(match.route->name, "/v1/admin/users/{id}/roles/{role}");
  EXPECT_EQ(match.route->executor, Executor::kStore);
  EXPECT_EQ(request.path_params.size(), 2u);
  EXPECT_EQ(request.path_params.at("id"), "u-42");
  EXPECT_EQ(request.path_params.at("role"), "admin");
}

TEST(RouterTest, PercentDecodesParameters) {
  Router router;
  router.Add("GET", "/v1/admin/config/{key}", Executor::kStore, Answer(200));
  HttpRequest request = Request("GET", "/v1/admin/config/a%2Fb%20c%zz");
  ASSERT_EQ(router.Find(request).status, 200);
  EXPECT_EQ(request.path_params.at("key"), "a/b c%zz");
}

TEST(RouterTest, ParametersMatchOneNonEmptySegment) {
  Router router;
  router.Add("GET", "/users/{id}", Executor::kStore, Answer(200));
  for (const char* path : {"/users/", "/users", "/users/a/b", "/users//", "/users/a/"}) {
    HttpRequest request = Request("GET", path);
    EXPECT_EQ(router.Find(request).status, 404) << path;
  }
}

TEST(RouterTest, UnknownPathIs404) {
  Router router;
  router.Add("GET", "/a", Executor::kInline, Answer(200));
  HttpRequest request = Request("GET", "/b");
  const RouteMatch match = router.Find(request);
  EXPECT_EQ(match.status, 404);
  EXPECT_EQ(match.route, nullptr);
  EXPECT_TRUE(match.allow.empty());
  HttpRequest no_slash = Request("GET", "a");
  EXPECT_EQ(router.Find(no_slash).status, 404);
}

TEST(RouterTest, KnownPathWithOtherMethodIs405WithAllow) {
  Router router;
  router.Add("GET", "/v1/admin/users/{id}", Executor::kStore, Answer(200));
  router.Add("PATCH", "/v1/admin/users/{id}", Executor::kHash, Answer(200));
  router.Add("DELETE", "/v1/admin/users/{id}", Executor::kStore, Answer(204));
  router.Add("GET", "/v1/admin/users/me", Executor::kStore, Answer(200));
  HttpRequest request = Request("POST", "/v1/admin/users/me");
  const RouteMatch match = router.Find(request);
  EXPECT_EQ(match.status, 405);
  EXPECT_EQ(match.route, nullptr);
  EXPECT_EQ(match.allow, "GET, PATCH, DELETE");  // insertion order, no duplicates
  EXPECT_TRUE(request.path_params.empty());
  HttpRequest head = Request("HEAD", "/v1/admin/users/x");
  EXPECT_EQ(router.Find(head).status, 405);
}

TEST(RouterTest, FirstInsertedMatchWins) {
  Router router;
  router.Add("GET", "/v1/users/{id}", Executor::kStore, Answer(200));
  router.Add("GET", "/v1/users/me", Executor::kInline, Answer(201));
  HttpRequest request = Request("GET", "/v1/users/me");
  const RouteMatch match = router.Find(request);
  ASSERT_EQ(match.status, 200);
  EXPECT_EQ(match.route->pattern, "/v1/users/{id}");
  EXPECT_EQ(request.path_params.at("id"), "me");

  Router literal_first;
  literal_first.Add("GET", "/v1/users/me", Executor::kInline, Answer(201));
  literal_first.Add("GET", "/v1/users/{id}", Executor::kStore, Answer(200));
  HttpRequest again = Request("GET", "/v1/users/me");
  const RouteMatch literal = literal_first.Find(again);
  EXPECT_EQ(literal.route->pattern, "/v1/users/me");
  EXPECT_TRUE(again.path_params.empty());
}

TEST(RouterTest, FindClearsStaleParameters) {
  Router router;
  router.Add("GET", "/a/{x}", Executor::kInline, Answer(200));
  HttpRequest request = Request("GET", "/b");
  request.path_params["stale"] = "1";
  EXPECT_EQ(router.Find(request).status, 404);
  EXPECT_TRUE(request.path_params.empty());
}

TEST(RouterTest, MethodsAreCaseSensitive) {
  Router router;
  router.Add("GET", "/a", Executor::kInline, Answer(200));
  HttpRequest request = Request("get", "/a");
  EXPECT_EQ(router.Find(request).status, 405);
}

TEST(RouterTest, RejectsBadPatterns) {
  Router router;
  const Handler ok = Answer(200);
  for (const char* pattern :
       {"", "a", "/a//b", "/a/", "/{}", "/{id", "/x{id}", "/{id}/{id}", "/{a-b}", "/a}"}) {
    EXPECT_THROW(router.Add("GET", pattern, Executor::kInline, ok), std::invalid_argument)
        << pattern;
  }
  EXPECT_THROW(router.Add("", "/a", Executor::kInline, ok), std::invalid_argument);
  EXPECT_THROW(router.Add("GE T", "/a", Executor::kInline, ok), std::invalid_argument);
  EXPECT_THROW(router.Add("GET", "/a", Executor::kInline, Handler()), std::invalid_argument);
  EXPECT_TRUE(router.routes().empty());
}

}  // namespace
}  // namespace bulwark::http
