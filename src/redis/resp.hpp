// RESP2 encoding of requests and parsing of replies (hiredis's reader only;
// the I/O is ours). Internal to src/redis.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "redis/redis_client.hpp"

struct redisReader;

namespace bulwark::redis {

// Appends one command as a RESP2 array of bulk strings.
void AppendCommand(std::string& out, const std::vector<std::string>& args);
std::string EncodeCommand(const std::vector<std::string>& args);

// Incremental reply parser: Feed() bytes as they arrive, then Next() until it
// returns nullopt (needs more data). A protocol error is reported by Next()
// returning nullopt and error() becoming non-empty.
class ReplyParser {
 public:
  ReplyParser();
  ~ReplyParser();
  ReplyParser(const ReplyParser&) = delete;
  ReplyParser& operator=(const ReplyParser&) = delete;

  bool Feed(const char* data, size_t size);
  std::optional<Reply> Next();
  const std::string& error() const { return error_; }

 private:
  redisReader* reader_;
  std::string error_;
};

// Helpers on replies.
// The first word of an error reply ("MOVED", "ASK", "TRYAGAIN", ...).
std::string_view ErrorKind(const Reply& reply);
// A one-line description for error messages (bounded length).
std::string Describe(const Reply& reply);

}  // namespace bulwark::redis
