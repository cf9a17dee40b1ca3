#include "redis/script.hpp"

#include <openssl/sha.h>

#include <cstdio>
#include <utility>

namespace bulwark::redis {

Script::Script(std::string source) : source_(std::move(source)) {
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(source_.data()), source_.size(), digest);
  char hex[2 * SHA_DIGEST_LENGTH + 1];
  for (int i = 0; i < SHA_DIGEST_LENGTH; ++i) std::snprintf(hex + 2 * i, 3, "%02x", digest[i]);
  sha1_.assign(hex, 2 * SHA_DIGEST_LENGTH);
}

namespace {

std::vector<std::string> Build(std::string command, std::string body,
                               const std::vector<std::string>& keys,
                               const std::vector<std::string>& args) {
  std::vector<std::string> out;
  out.reserve(3 + keys.size() + args.size());
  out.push_back(std::move(command));
  out.push_back(std::move(body));
  out.push_back(std::to_string(keys.size()));
  out.insert(out.end(), keys.begin(), keys.end());
  out.insert(out.end(), args.begin(), args.end());
  return out;
}

}  // namespace

std::vector<std::string> Script::EvalSha(const std::vector<std::string>& keys,
                                         const std::vector<std::string>& args) const {
  return Build("EVALSHA", sha1_, keys, args);
}

std::vector<std::string> Script::Eval(const std::vector<std::string>& keys,
                                      const std::vector<std::string>& args) const {
  return Build("EVAL", source_, keys, args);
}

bool IsNoScript(const Reply& reply) {
  return reply.IsError() && reply.str.compare(0, 8, "NOSCRIPT") == 0;
}

}  // namespace bulwark::redis
