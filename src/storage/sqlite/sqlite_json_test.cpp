#include "storage/sqlite/sqlite_json.hpp"

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

namespace bulwark::sqlite {
namespace {

using Strings = std::vector<std::string>;

TEST(SqliteJson, EncodesAndEscapes) {
  EXPECT_EQ(EncodeStringArray({}), "[]");
  EXPECT_EQ(EncodeStringArray({"a", "b"}), R"(["a","b"])");
  EXPECT_EQ(EncodeStringArray({"q\"b\\"}), R"(["q\"b\\"])");
  EXPECT_EQ(EncodeStringArray({"\b\f\n\r\t"}), R"(["\b\f\n\r\t"])");
  EXPECT_EQ(EncodeStringArray({std::string("\x01\x1f\0", 3)}), R"(["\u0001\u001f\u0000"])");
  EXPECT_EQ(EncodeStringArray({"é🔑/"}), "[\"é🔑/\"]");  // UTF-8 and '/' stay verbatim
}

TEST(SqliteJson, RoundTripsAnything) {
  Strings items = {"",        "admin",  "say \"hi\"",
                   "a\\b",    "管理者", "🔑",
                   "\x7f",    "tab\t",  std::string("nul\0byte", 8),
                   "[\"x\"]", "\\u0041"};
  std::optional<Strings> decoded = DecodeStringArray(EncodeStringArray(items));
  ASSERT_TRUE(decoded.has_value());
  EXPECT_EQ(*decoded, items);
}

TEST(SqliteJson, DecodesWhatOtherWritersProduce) {
  EXPECT_EQ(DecodeStringArray(" [ ] "), Strings{});
  EXPECT_EQ(DecodeStringArray("[\n \"a\" ,\t\"b\"\r\n]"), (Strings{"a", "b"}));
  EXPECT_EQ(DecodeStringArray(R"(["\/\u0041\u00e9\u20ac"])"), Strings{"/Aé€"});
  EXPECT_EQ(DecodeStringArray(R"(["\ud83d\udd11"])"), Strings{"🔑"});
  EXPECT_EQ(DecodeStringArray(R"(["\uD83D\uDD11"])"), Strings{"🔑"});
}

TEST(SqliteJson, RejectsEverythingElse) {
  for (const char* bad :
       {"", "[", "]", "[\"a\"", "[\"a\",]", "[,\"a\"]", "[\"a\" \"b\"]", "[\"a\"] x", "[1]",
        "[null]", "{\"a\":\"b\"}", "\"a\"", "[\"\\x\"]", "[\"\\u12\"]", "[\"\\ud83d\"]",
        "[\"\\udd11\"]", "[\"\\ud83d\\u0041\"]", "[\"raw\nnewline\"]", "[\"unterminated]"}) {
    EXPECT_FALSE(DecodeStringArray(bad).has_value()) << bad;
  }
}

}  // namespace
}  // namespace bulwark::sqlite
