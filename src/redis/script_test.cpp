#include "redis/script.hpp"

#include <gtest/gtest.h>

namespace bulwark::redis {
namespace {

TEST(Script, Sha1IsWhatScriptLoadAnswers) {
  // redis-cli SCRIPT LOAD "return 1"
  EXPECT_EQ(Script("return 1").sha1(), "e0e1f9fabfc9d4800c877a703b823ac0578ff8db");
}

TEST(Script, CommandsCarryKeysThenArguments) {
  Script s("return KEYS[1]");
  EXPECT_EQ(s.EvalSha({"k1", "k2"}, {"a"}),
            (std::vector<std::string>{"EVALSHA", s.sha1(), "2", "k1", "k2", "a"}));
  EXPECT_EQ(s.Eval({"k1"}, {}), (std::vector<std::string>{"EVAL", "return KEYS[1]", "1", "k1"}));
}

TEST(Script, NoScriptIsRecognised) {
  Reply no_script;
  no_script.type = Reply::Type::kError;
  no_script.str = "NOSCRIPT No matching script. Please use EVAL.";
  EXPECT_TRUE(IsNoScript(no_script));
  Reply other = no_script;
  other.str = "ERR wrong number of arguments";
  EXPECT_FALSE(IsNoScript(other));
  Reply ok;
  ok.type = Reply::Type::kString;
  ok.str = "NOSCRIPT";
  EXPECT_FALSE(IsNoScript(ok));
}

}  // namespace
}  // namespace bulwark::redis
