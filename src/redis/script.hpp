// A Lua script sent by its SHA-1 (EVALSHA), so the body crosses the wire and
// is hashed by Redis only when a node does not know it yet (NOSCRIPT: after a
// restart, a failover, or on a Cluster node that has not seen it).
#pragma once

#include <string>
#include <vector>

#include "redis/redis_client.hpp"

namespace bulwark::redis {

class Script {
 public:
  explicit Script(std::string source);

  const std::string& source() const { return source_; }
  const std::string& sha1() const { return sha1_; }  // lower-case hex, as SCRIPT LOAD answers

  // {"EVALSHA", sha1, numkeys, keys..., args...} and the same with EVAL.
  std::vector<std::string> EvalSha(const std::vector<std::string>& keys,
                                   const std::vector<std::string>& args) const;
  std::vector<std::string> Eval(const std::vector<std::string>& keys,
                                const std::vector<std::string>& args) const;

 private:
  std::string source_;
  std::string sha1_;
};

// True for the error Redis answers to EVALSHA of an unknown script.
bool IsNoScript(const Reply& reply);

}  // namespace bulwark::redis
