#include "redis/commands.hpp"

#include <gtest/gtest.h>

#include "redis/redis_client.hpp"

namespace bulwark::redis {
namespace {

TEST(KeySlot, KnownValues) {
  EXPECT_EQ(KeySlot("123456789"), 12739);
  EXPECT_EQ(KeySlot(""), 0);
  EXPECT_EQ(KeySlot("foo"), 12182);
  EXPECT_EQ(KeySlot("bar"), 5061);
  EXPECT_EQ(KeySlot("user:1000"), 1649);
}

TEST(KeySlot, HashTags) {
  EXPECT_EQ(KeySlot("{user1000}.following"), KeySlot("{user1000}.followers"));
  EXPECT_EQ(KeySlot("{user1000}.following"), KeySlot("user1000"));
  // Only the first {...} counts.
  EXPECT_EQ(KeySlot("foo{bar}{zap}"), KeySlot("bar"));
  // An empty tag means the whole key is hashed.
  EXPECT_EQ(KeySlot("foo{}{bar}"), KeySlot(std::string_view("foo{}{bar}")));
  EXPECT_NE(KeySlot("foo{}{bar}"), KeySlot("bar"));
  // The tag runs to the first } after the first {.
  EXPECT_EQ(KeySlot("foo{{bar}}zap"), KeySlot("{bar"));
  EXPECT_EQ(KeySlot("foo{bar}{zap}"), KeySlot("x{bar}y"));
  // No closing brace: the whole key.
  EXPECT_EQ(KeySlot("foo{bar"), KeySlot(std::string_view("foo{bar")));
  EXPECT_NE(KeySlot("foo{bar"), KeySlot("bar"));
}

TEST(KeySlot, Range) {
  for (int i = 0; i < 2000; ++i) EXPECT_LT(KeySlot("key:" + std::to_string(i)), 16384);
}

TEST(ParseEndpoints, Valid) {
  auto r = ParseEndpoints("127.0.0.1:7000, redis.local:7001,[::1]:7002,host");
  ASSERT_TRUE(r.ok()) << r.error().message();
  ASSERT_EQ(r->size(), 4u);
  EXPECT_EQ((*r)[0].host, "127.0.0.1");
  EXPECT_EQ((*r)[0].port, 7000);
  EXPECT_EQ((*r)[1].host, "redis.local");
  EXPECT_EQ((*r)[1].port, 7001);
  EXPECT_EQ((*r)[2].host, "::1");
  EXPECT_EQ((*r)[2].port, 7002);
  EXPECT_EQ((*r)[3].host, "host");
  EXPECT_EQ((*r)[3].port, 6379);
}

TEST(ParseEndpoints, ErrorsNameTheBadItem) {
  for (const char* bad : {"", " ", "a:1,,b:2", "a:", ":7000", "a:0", "a:65536", "a:x1", "a:1x",
                          "::1:7000", "[::1", "[::1]7000", "a:1,b:-1"}) {
    auto r = ParseEndpoints(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().code(), ErrorCode::kInvalidArgument) << bad;
  }
  auto r = ParseEndpoints("good:1,bad:99999");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message().find("bad:99999"), std::string::npos) << r.error().message();
}

TEST(CommandKeys, Routing) {
  using V = std::vector<std::string>;
  EXPECT_TRUE(CommandKeys(V{"PING"}).empty());
  EXPECT_TRUE(CommandKeys(V{"ping", "hello"}).empty());
  EXPECT_TRUE(CommandKeys(V{"WAIT", "1", "100"}).empty());
  EXPECT_TRUE(CommandKeys(V{"INFO", "replication"}).empty());
  V set{"SET", "k", "v", "PX", "10"};
  V del{"del", "a", "b", "c"};
  V mset{"MSET", "a", "1", "b", "2"};
  auto keys = CommandKeys(set);
  ASSERT_EQ(keys.size(), 1u);
  EXPECT_EQ(keys[0], "k");
  keys = CommandKeys(del);
  ASSERT_EQ(keys.size(), 3u);
  EXPECT_EQ(keys[2], "c");
  keys = CommandKeys(mset);
  ASSERT_EQ(keys.size(), 2u);
  EXPECT_EQ(keys[1], "b");
  // EVAL routes by its declared keys, not by the script text.
  V eval{"EVAL", "return 1", "2", "{f}a", "{f}b", "arg"};
  keys = CommandKeys(eval);
  ASSERT_EQ(keys.size(), 2u);
  EXPECT_EQ(keys[0], "{f}a");
  EXPECT_EQ(keys[1], "{f}b");
  EXPECT_TRUE(CommandKeys(V{"EVAL", "return 1", "0", "arg"}).empty());
  EXPECT_TRUE(CommandKeys(V{"EVAL", "return 1", "x1"}).empty());
  EXPECT_FALSE(IsIdempotent(eval));  // a script may change data on every run
}

TEST(IsIdempotent, SessionStoreCommands) {
  using V = std::vector<std::string>;
  for (const V& cmd : {V{"SET", "k", "v", "EXAT", "100"}, V{"SET", "k", "v", "XX"}, V{"DEL", "k"},
                       V{"EXPIREAT", "k", "1", "NX"}, V{"SADD", "s", "m"}, V{"SREM", "s", "m"},
                       V{"ZADD", "z", "1", "m"}, V{"ZREM", "z", "m"}, V{"GET", "k"},
                       V{"SMEMBERS", "s"}, V{"expire", "k", "10"}}) {
    EXPECT_TRUE(IsIdempotent(cmd)) << cmd[0];
  }
  for (const V& cmd : {V{"INCR", "k"}, V{"LPUSH", "l", "x"}, V{"XADD", "s", "*", "a", "b"},
                       V{"SET", "k", "v", "NX"}, V{"set", "k", "v", "get"},
                       V{"ZADD", "z", "INCR", "1", "m"}, V{"EVAL", "return 1", "0"}}) {
    EXPECT_FALSE(IsIdempotent(cmd)) << cmd[0];
  }
}

}  // namespace
TEST(CommandsTest, ReadOnlyIsReadsOnly) {
  EXPECT_TRUE(IsReadOnly({"GET", "k"}));
  EXPECT_TRUE(IsReadOnly({"hgetall", "k"}));
  EXPECT_FALSE(IsReadOnly({"SET", "k", "v"}));
  EXPECT_FALSE(IsReadOnly({"PING"}));  // idempotent, but not a data read
  EXPECT_TRUE(IsIdempotent({"PING"}));
  EXPECT_FALSE(IsReadOnly({"EVALSHA", "sha", "1", "k"}));
  EXPECT_FALSE(IsReadOnly({}));
}

TEST(CommandsTest, RefusedWithoutRunningIsRedirectsAndTransientStatesOnly) {
  for (const char* kind :
       {"MOVED", "ASK", "TRYAGAIN", "LOADING", "MASTERDOWN", "CLUSTERDOWN", "READONLY"}) {
    EXPECT_TRUE(RefusedWithoutRunning(kind)) << kind;
  }
  // A script's own error, a wrong type or an unknown script are answers.
  for (const char* kind : {"ERR", "WRONGTYPE", "NOSCRIPT", "BUSY", "", "moved"}) {
    EXPECT_FALSE(RefusedWithoutRunning(kind)) << kind;
  }
}

TEST(ParseSwitchMaster, TheNewPrimaryOfThisMaster) {
  auto ep = ParseSwitchMaster("bulwark 127.0.0.1 6380 127.0.0.1 6381", "bulwark");
  ASSERT_TRUE(ep.has_value());
  EXPECT_EQ(ep->host, "127.0.0.1");
  EXPECT_EQ(ep->port, 6381);
  auto v6 = ParseSwitchMaster("m ::1 7000 ::1 7001", "m");
  ASSERT_TRUE(v6.has_value());
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->port, 7001);
}

TEST(ParseSwitchMaster, OtherMastersAndMalformedPayloadsAreIgnored) {
  EXPECT_FALSE(ParseSwitchMaster("other 127.0.0.1 6380 127.0.0.1 6381", "bulwark"));
  EXPECT_FALSE(ParseSwitchMaster("bulwarkx 127.0.0.1 6380 127.0.0.1 6381", "bulwark"));
  EXPECT_FALSE(ParseSwitchMaster("bulwark 127.0.0.1 6380 127.0.0.1", "bulwark"));
  EXPECT_FALSE(ParseSwitchMaster("bulwark 127.0.0.1 6380 127.0.0.1 6381 extra", "bulwark"));
  EXPECT_FALSE(ParseSwitchMaster("bulwark 127.0.0.1 6380 127.0.0.1 0", "bulwark"));
  EXPECT_FALSE(ParseSwitchMaster("bulwark 127.0.0.1 6380 127.0.0.1 65536", "bulwark"));
  EXPECT_FALSE(ParseSwitchMaster("bulwark 127.0.0.1 6380 127.0.0.1 63x", "bulwark"));
  EXPECT_FALSE(ParseSwitchMaster("bulwark 127.0.0.1 6380  6381", "bulwark"));
  EXPECT_FALSE(ParseSwitchMaster("", "bulwark"));
}

}  // namespace bulwark::redis
