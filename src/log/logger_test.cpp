#include "log/logger.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <cstdio>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/temp_dir.hpp"

namespace bulwark::log {
namespace {

// Runs `fn` with fd 2 pointed at a file and returns what was written.
template <typename Fn>
std::string CaptureStderr(Fn fn) {
  testing::TempDir dir;
  const std::string path = dir.File("stderr.txt");
  std::fflush(stderr);
  const int saved = dup(2);
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  EXPECT_GE(saved, 0);
  EXPECT_GE(fd, 0);
  dup2(fd, 2);
  close(fd);
  fn();
  Flush();
  std::fflush(stderr);
  dup2(saved, 2);
  close(saved);
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// "2026-11-22T02:05:53.123Z" (std::regex trips g++ 12 warnings under the sanitizers).
bool IsRfc3339Millis(std::string_view s) {
  constexpr std::string_view kShape = "dddd-dd-ddTdd:dd:dd.dddZ";
  if (s.size() != kShape.size()) return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (kShape[i] == 'd' ? (s[i] < '0' || s[i] > '9') : s[i] != kShape[i]) return false;
  }
  return true;
}

class LoggerTest : public ::testing::Test {
 protected:
  void TearDown() override { Init(Format::kJson, "", Level::kInfo); }
};

TEST_F(LoggerTest, JsonLineHasEnvelopeThenFields) {
  Init(Format::kJson, "replica-1", Level::kInfo);
  const std::string out = CaptureStderr([] {
    Info("request done", {{"route", "/v1/auth/login"},
                          {"status", int64_t{200}},
                          {"duration", 0.0125},
                          {"cached", false}});
  });
  const std::vector<std::string> lines = Lines(out);
  ASSERT_EQ(lines.size(), 1u) << out;
  const boost::json::object obj = boost::json::parse(lines[0]).as_object();
  EXPECT_TRUE(IsRfc3339Millis(obj.at("time").as_string())) << lines[0];
  EXPECT_EQ(obj.at("level").as_string(), "info");
  EXPECT_EQ(obj.at("replica").as_string(), "replica-1");
  EXPECT_EQ(obj.at("msg").as_string(), "request done");
  EXPECT_EQ(obj.at("route").as_string(), "/v1/auth/login");
  EXPECT_EQ(obj.at("status").as_int64(), 200);
  EXPECT_EQ(obj.at("duration").as_double(), 0.0125);
  EXPECT_EQ(obj.at("cached").as_bool(), false);
  // Envelope first, in a fixed order; plain decimal numbers.
  EXPECT_EQ(lines[0].find("{\"time\":"), 0u) << lines[0];
  EXPECT_NE(lines[0].find(R"("level":"info","replica":"replica-1","msg":"request done")"),
            std::string::npos)
      << lines[0];
  EXPECT_NE(lines[0].find(R"("duration":0.0125)"), std::string::npos) << lines[0];
}

TEST_F(LoggerTest, JsonEscapesQuotesNewlinesAndBadBytes) {
  Init(Format::kJson, "r\"1", Level::kDebug);
  const std::string message = "say \"hi\"\nsecond line\\ {} %s \x01";
  const std::string field = "agent \"x\"\r\n\t\xff\xfe end";
  const std::string out = CaptureStderr([&] {
    Warn(message, {{"user_agent", field},
                   {"msg", "shadow"},
                   {"nan", std::numeric_limits<double>::quiet_NaN()}});
  });
  const std::vector<std::string> lines = Lines(out);
  ASSERT_EQ(lines.size(), 1u) << out;
  const boost::json::object obj = boost::json::parse(lines[0]).as_object();
  EXPECT_EQ(obj.at("level").as_string(), "warn");
  EXPECT_EQ(obj.at("replica").as_string(), "r\"1");
  EXPECT_EQ(obj.at("msg").as_string(), message);
  EXPECT_EQ(obj.at("user_agent").as_string(), "agent \"x\"\r\n\t\xef\xbf\xbd\xef\xbf\xbd end");
  EXPECT_EQ(obj.at("field_msg").as_string(), "shadow");
  EXPECT_TRUE(obj.at("nan").is_null());
}

TEST_F(LoggerTest, TextFormat) {
  Init(Format::kText, "replica-1", Level::kInfo);
  const std::string out = CaptureStderr([] {
    Error("store down", {{"store", "redis"},
                         {"attempt", int64_t{3}},
                         {"ratio", 0.5},
                         {"retry", true},
                         {"detail", "connection refused"},
                         {"empty", ""}});
    Info("two\nlines");
  });
  const std::vector<std::string> lines = Lines(out);
  ASSERT_EQ(lines.size(), 2u) << out;
  ASSERT_GT(lines[0].size(), 24u);
  EXPECT_TRUE(IsRfc3339Millis(lines[0].substr(0, 24))) << lines[0];
  EXPECT_EQ(lines[0].substr(24),
            " ERROR store down store=redis attempt=3 ratio=0.5 retry=true "
            "detail=\"connection refused\" empty=\"\"");
  EXPECT_TRUE(lines[1].ends_with(" INFO two\\nlines")) << lines[1];
}

TEST_F(LoggerTest, LevelFiltering) {
  Init(Format::kJson, "r", Level::kWarn);
  const std::string out = CaptureStderr([] {
    Write(Level::kDebug, "debug");
    Info("info");
    Warn("warn");
    Error("error");
  });
  const std::vector<std::string> lines = Lines(out);
  ASSERT_EQ(lines.size(), 2u) << out;
  EXPECT_EQ(boost::json::parse(lines[0]).at("msg").as_string(), "warn");
  EXPECT_EQ(boost::json::parse(lines[1]).at("msg").as_string(), "error");

  Init(Format::kJson, "r", Level::kDebug);
  const std::string debug = CaptureStderr([] { Write(Level::kDebug, "debug"); });
  ASSERT_EQ(Lines(debug).size(), 1u) << debug;
  EXPECT_EQ(boost::json::parse(Lines(debug)[0]).at("level").as_string(), "debug");
}

TEST_F(LoggerTest, InitCanBeCalledAgain) {
  Init(Format::kText, "a", Level::kInfo);
  Init(Format::kJson, "b", Level::kInfo);
  const std::string out = CaptureStderr([] { Info("hello"); });
  ASSERT_EQ(Lines(out).size(), 1u) << out;
  EXPECT_EQ(boost::json::parse(Lines(out)[0]).at("replica").as_string(), "b");
}

TEST_F(LoggerTest, ConcurrentWritersProduceWholeLines) {
  Init(Format::kJson, "r", Level::kInfo);
  constexpr int kThreads = 4;
  constexpr int kPerThread = 200;
  const std::string out = CaptureStderr([] {
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([t] {
        for (int i = 0; i < kPerThread; ++i) {
          Info("line", {{"thread", int64_t{t}}, {"i", int64_t{i}}});
        }
      });
    }
    for (auto& th : threads) th.join();
  });
  const std::vector<std::string> lines = Lines(out);
  ASSERT_EQ(lines.size(), static_cast<std::size_t>(kThreads * kPerThread));
  for (const std::string& line : lines) {
    ASSERT_NO_THROW((void)boost::json::parse(line)) << line;
  }
}

}  // namespace
}  // namespace bulwark::log
