#include "redis/resp.hpp"

#include <gtest/gtest.h>

namespace bulwark::redis {
namespace {

TEST(Resp, EncodesCommandsAsArraysOfBulkStrings) {
  EXPECT_EQ(EncodeCommand({"PING"}), "*1\r\n$4\r\nPING\r\n");
  EXPECT_EQ(EncodeCommand({"SET", "k", ""}), "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n");
  std::string binary("a\r\n\0b", 5);
  EXPECT_EQ(EncodeCommand({"GET", binary}),
            std::string("*2\r\n$3\r\nGET\r\n$5\r\na\r\n\0b\r\n", 24));
  std::string batch;
  AppendCommand(batch, {"A"});
  AppendCommand(batch, {"B"});
  EXPECT_EQ(batch, "*1\r\n$1\r\nA\r\n*1\r\n$1\r\nB\r\n");
}

TEST(Resp, ParsesEveryReplyTypeIncrementally) {
  ReplyParser parser;
  std::string input =
      "+OK\r\n-ERR bad thing\r\n:42\r\n$5\r\nhello\r\n$-1\r\n*2\r\n$1\r\na\r\n*1\r\n:7\r\n*-1\r\n";
  // Feed one byte at a time: replies appear only when complete.
  std::vector<Reply> replies;
  for (char c : input) {
    ASSERT_TRUE(parser.Feed(&c, 1));
    while (auto r = parser.Next()) replies.push_back(std::move(*r));
  }
  EXPECT_TRUE(parser.error().empty());
  ASSERT_EQ(replies.size(), 7u);
  EXPECT_EQ(replies[0].type, Reply::Type::kStatus);
  EXPECT_EQ(replies[0].str, "OK");
  EXPECT_TRUE(replies[1].IsError());
  EXPECT_EQ(replies[1].str, "ERR bad thing");
  EXPECT_EQ(ErrorKind(replies[1]), "ERR");
  EXPECT_EQ(replies[2].integer, 42);
  EXPECT_EQ(replies[3].str, "hello");
  EXPECT_TRUE(replies[4].IsNil());
  ASSERT_EQ(replies[5].elements.size(), 2u);
  EXPECT_EQ(replies[5].elements[0].str, "a");
  EXPECT_EQ(replies[5].elements[1].elements[0].integer, 7);
  EXPECT_TRUE(replies[6].IsNil());
}

TEST(Resp, ProtocolErrorIsReported) {
  ReplyParser parser;
  ASSERT_TRUE(parser.Feed("%1\r\n", 4));  // RESP3 map: not RESP2
  EXPECT_FALSE(parser.Next().has_value());
  EXPECT_FALSE(parser.error().empty());
}

TEST(Resp, ErrorKindOfRedirects) {
  Reply moved;
  moved.type = Reply::Type::kError;
  moved.str = "MOVED 3999 127.0.0.1:6381";
  EXPECT_EQ(ErrorKind(moved), "MOVED");
  Reply ok;
  ok.type = Reply::Type::kStatus;
  ok.str = "OK";
  EXPECT_EQ(ErrorKind(ok), "");
}

}  // namespace
}  // namespace bulwark::redis
