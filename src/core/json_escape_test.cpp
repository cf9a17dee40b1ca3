#include "core/json_escape.hpp"

#include <string>

#include <gtest/gtest.h>

namespace bulwark {
namespace {

std::string Quoted(std::string_view s, InvalidUtf8 invalid = InvalidUtf8::kReplace) {
  std::string out = "prefix:";
  AppendJsonString(out, s, invalid);
  return out;
}

TEST(JsonEscapeTest, AppendsQuotedLiteral) {
  EXPECT_EQ(Quoted(""), "prefix:\"\"");
  EXPECT_EQ(Quoted("plain text / 123"), "prefix:\"plain text / 123\"");
}

TEST(JsonEscapeTest, EscapesQuotesBackslashesAndControls) {
  EXPECT_EQ(Quoted("a\"b\\c"), R"(prefix:"a\"b\\c")");
  EXPECT_EQ(Quoted("\b\f\n\r\t"), R"(prefix:"\b\f\n\r\t")");
  EXPECT_EQ(Quoted(std::string_view("\x00\x01\x1f\x7f", 4)),
            "prefix:\"\\u0000\\u0001\\u001f\x7f\"");
  // Plain runs between escapes, at both ends.
  EXPECT_EQ(Quoted("user \"ann\"\tid=7\x02 \xc3\xa9t\xc3\xa9 end"),
            "prefix:\"user \\\"ann\\\"\\tid=7\\u0002 \xc3\xa9t\xc3\xa9 end\"");
}

TEST(JsonEscapeTest, CopiesValidUtf8InBothModes) {
  const std::string text = "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\x91";
  EXPECT_EQ(Quoted(text), "prefix:\"" + text + "\"");
  EXPECT_EQ(Quoted(text, InvalidUtf8::kVerbatim), "prefix:\"" + text + "\"");
}

TEST(JsonEscapeTest, ReplacesInvalidUtf8ByteByByte) {
  EXPECT_EQ(Quoted("a\xff"
                   "b"),
            R"(prefix:"a\ufffdb")");
  EXPECT_EQ(Quoted("\xc3"), R"(prefix:"\ufffd")");                      // truncated sequence
  EXPECT_EQ(Quoted("\xc0\xaf"), R"(prefix:"\ufffd\ufffd")");            // overlong
  EXPECT_EQ(Quoted("\xed\xa0\x80"), R"(prefix:"\ufffd\ufffd\ufffd")");  // surrogate
  EXPECT_EQ(Quoted("\xf4\x90\x80\x80"), R"(prefix:"\ufffd\ufffd\ufffd\ufffd")");  // > U+10FFFF
}

TEST(JsonEscapeTest, VerbatimKeepsInvalidBytes) {
  EXPECT_EQ(Quoted("a\xff\xc0\xaf\"", InvalidUtf8::kVerbatim), "prefix:\"a\xff\xc0\xaf\\\"\"");
}

}  // namespace
}  // namespace bulwark
