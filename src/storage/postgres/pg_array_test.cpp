#include "storage/postgres/pg_array.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace bulwark::postgres {
namespace {

TEST(PgArrayTest, EncodeQuotesEveryElement) {
  EXPECT_EQ(EncodeTextArray({}), "{}");
  EXPECT_EQ(EncodeTextArray({"admin"}), "{\"admin\"}");
  EXPECT_EQ(EncodeTextArray({"a\"b", "c\\d", ""}), R"({"a\"b","c\\d",""})");
}

TEST(PgArrayTest, RoundTripsAnyCharacters) {
  std::vector<std::string> items = {"admin",
                                    "say \"hi\"",
                                    "back\\slash",
                                    "管理者",
                                    "clé 🔑",
                                    "tab\tnew\nline\r",
                                    std::string("ctl\x01\x1f", 5),
                                    "[\"not\",\"an\",\"array\"]",
                                    "",
                                    "{braces},commas",
                                    "NULL",
                                    "  padded  "};
  auto decoded = DecodeTextArray(EncodeTextArray(items));
  ASSERT_TRUE(decoded.has_value());
  EXPECT_EQ(*decoded, items);
}

TEST(PgArrayTest, DecodesServerOutput) {
  // array_out quotes only what needs it.
  auto decoded = DecodeTextArray(R"({admin,"say \"hi\"","back\\slash","",viewer,"NULL"})");
  ASSERT_TRUE(decoded.has_value());
  EXPECT_EQ(*decoded,
            (std::vector<std::string>{"admin", "say \"hi\"", "back\\slash", "", "viewer", "NULL"}));
  decoded = DecodeTextArray("{}");
  ASSERT_TRUE(decoded.has_value());
  EXPECT_TRUE(decoded->empty());
  decoded = DecodeTextArray("[0:1]={a,b}");
  ASSERT_TRUE(decoded.has_value());
  EXPECT_EQ(*decoded, (std::vector<std::string>{"a", "b"}));
  decoded = DecodeTextArray("{ a , b\\ }");
  ASSERT_TRUE(decoded.has_value());
  EXPECT_EQ(*decoded, (std::vector<std::string>{"a", "b "}));
}

TEST(PgArrayTest, RejectsNullsAndMalformedText) {
  for (const char* bad : {"", "{", "}", "{a", "{a,}", "{,a}", "{NULL}", "{a,null}", "{{a}}",
                          "{\"a}", "{\"a\"b}", "{a}x", "[1:2{a}", "{a\\", "a,b"}) {
    EXPECT_FALSE(DecodeTextArray(bad).has_value()) << bad;
  }
}

}  // namespace
}  // namespace bulwark::postgres
