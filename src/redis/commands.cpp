#include "redis/commands.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>

#include "redis/redis_client.hpp"

namespace bulwark::redis {

namespace {

bool OneOf(std::string_view name, std::initializer_list<std::string_view> names) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

std::string Upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

// CRC16-CCITT (XMODEM): polynomial 0x1021, initial value 0, no reflection,
// computed bit by bit (keys are short; no table needed).
uint16_t Crc16(std::string_view data) {
  uint16_t crc = 0;
  for (unsigned char byte : data) {
    crc = static_cast<uint16_t>(crc ^ (static_cast<uint16_t>(byte) << 8));
    for (int bit = 0; bit < 8; ++bit) {
      crc = (crc & 0x8000) != 0 ? static_cast<uint16_t>((crc << 1) ^ 0x1021)
                                : static_cast<uint16_t>(crc << 1);
    }
  }
  return crc;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

}  // namespace

uint16_t KeySlot(std::string_view key) {
  // Hash tag: the part between the first '{' and the first '}' after it,
  // when that part is not empty.
  size_t open = key.find('{');
  if (open != std::string_view::npos) {
    size_t close = key.find('}', open + 1);
    if (close != std::string_view::npos && close > open + 1) {
      key = key.substr(open + 1, close - open - 1);
    }
  }
  return static_cast<uint16_t>(Crc16(key) & 16383);
}

Result<std::vector<Endpoint>> ParseEndpoints(const std::string& list) {
  std::vector<Endpoint> out;
  std::string_view rest = list;
  if (Trim(rest).empty()) return Error::InvalidArgument("empty Redis endpoint list");
  while (true) {
    size_t comma = rest.find(',');
    std::string_view item = Trim(rest.substr(0, comma));
    auto bad = [&](const char* why) {
      return Error::InvalidArgument("bad Redis endpoint \"" + std::string(item) + "\": " + why);
    };
    if (item.empty()) return bad("empty item");
    Endpoint ep;
    std::string_view host = item;
    std::string_view port;
    if (item.front() == '[') {  // [IPv6]:port
      size_t end = item.find(']');
      if (end == std::string_view::npos) return bad("unterminated [");
      host = item.substr(1, end - 1);
      std::string_view after = item.substr(end + 1);
      if (!after.empty()) {
        if (after.front() != ':') return bad("expected :port after ]");
        port = after.substr(1);
        if (port.empty()) return bad("empty port");
      }
    } else {
      size_t colon = item.rfind(':');
      if (colon != std::string_view::npos) {
        if (item.find(':') != colon) return bad("IPv6 addresses need [brackets]");
        host = item.substr(0, colon);
        port = item.substr(colon + 1);
        if (port.empty()) return bad("empty port");
      }
    }
    if (host.empty()) return bad("empty host");
    if (!port.empty()) {
      unsigned value = 0;
      auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
      if (ec != std::errc() || ptr != port.data() + port.size() || value == 0 || value > 65535) {
        return bad("port must be 1..65535");
      }
      ep.port = static_cast<uint16_t>(value);
    }
    ep.host = std::string(host);
    out.push_back(std::move(ep));
    if (comma == std::string_view::npos) break;
    rest = rest.substr(comma + 1);
  }
  return out;
}

std::string CommandName(const std::vector<std::string>& args) {
  return args.empty() ? std::string() : Upper(args[0]);
}

std::vector<std::string_view> CommandKeys(const std::vector<std::string>& args) {
  std::vector<std::string_view> keys;
  if (args.size() < 2) return keys;
  std::string name = CommandName(args);
  if (OneOf(name, {"PING",     "WAIT",     "INFO",   "ROLE",     "ASKING",  "AUTH",     "CLUSTER",
                   "SENTINEL", "SELECT",   "DBSIZE", "FLUSHALL", "FLUSHDB", "CLIENT",   "CONFIG",
                   "DEBUG",    "SCRIPT",   "TIME",   "ECHO",     "HELLO",   "READONLY", "READWRITE",
                   "COMMAND",  "LASTSAVE", "SAVE",   "BGSAVE",   "SLOWLOG", "MULTI",    "EXEC",
                   "DISCARD",  "QUIT",     "RESET",  "SCAN",     "KEYS",    "PUBLISH",  "SUBSCRIBE",
                   "MEMORY",   "LATENCY"})) {
    return keys;
  }
  if (OneOf(name, {"EVAL", "EVALSHA", "EVAL_RO", "EVALSHA_RO", "FCALL", "FCALL_RO"})) {
    // EVAL script numkeys key [key ...] arg [arg ...]
    if (args.size() < 3) return keys;
    std::size_t numkeys = 0;
    for (char c : args[2]) {
      if (c < '0' || c > '9' || numkeys > args.size()) return keys;
      numkeys = numkeys * 10 + static_cast<std::size_t>(c - '0');
    }
    for (std::size_t i = 3; i < args.size() && i < 3 + numkeys; ++i) keys.push_back(args[i]);
  } else if (OneOf(name, {"DEL", "UNLINK", "EXISTS", "TOUCH", "MGET", "SINTER", "SUNION", "SDIFF",
                          "PFCOUNT", "WATCH"})) {
    for (size_t i = 1; i < args.size(); ++i) keys.push_back(args[i]);
  } else if (OneOf(name, {"MSET", "MSETNX"})) {
    for (size_t i = 1; i < args.size(); i += 2) keys.push_back(args[i]);
  } else {
    keys.push_back(args[1]);
  }
  return keys;
}

namespace {

// Commands that only read data.
bool IsReadName(const std::string& name) {
  return OneOf(name, {"GET",
                      "MGET",
                      "EXISTS",
                      "TTL",
                      "PTTL",
                      "EXPIRETIME",
                      "PEXPIRETIME",
                      "TYPE",
                      "STRLEN",
                      "GETRANGE",
                      "SMEMBERS",
                      "SISMEMBER",
                      "SMISMEMBER",
                      "SCARD",
                      "SRANDMEMBER",
                      "ZRANGE",
                      "ZRANGEBYSCORE",
                      "ZREVRANGE",
                      "ZREVRANGEBYSCORE",
                      "ZSCORE",
                      "ZMSCORE",
                      "ZCARD",
                      "ZCOUNT",
                      "ZRANK",
                      "HGET",
                      "HGETALL",
                      "HMGET",
                      "HEXISTS",
                      "HLEN",
                      "HKEYS",
                      "HVALS",
                      "LRANGE",
                      "LLEN",
                      "LINDEX",
                      "XRANGE",
                      "XREVRANGE",
                      "XLEN",
                      "SCAN",
                      "SSCAN",
                      "ZSCAN",
                      "HSCAN",
                      "KEYS"});
}

}  // namespace

bool IsReadOnly(const std::vector<std::string>& args) {
  return !args.empty() && IsReadName(CommandName(args));
}

bool IsIdempotent(const std::vector<std::string>& args) {
  std::string name = CommandName(args);
  if (IsReadName(name)) return true;
  // Keyless inspection commands.
  if (OneOf(name, {"PING", "ROLE", "INFO", "DBSIZE", "ECHO", "TIME", "WAIT", "ASKING", "AUTH",
                   "SELECT", "CLUSTER", "SENTINEL"})) {
    return true;
  }
  // Writes whose effect does not depend on how many times they run.
  if (OneOf(name, {"SETEX", "PSETEX", "DEL", "UNLINK", "EXPIRE", "PEXPIRE", "EXPIREAT", "PEXPIREAT",
                   "PERSIST", "SADD", "SREM", "ZREM", "ZREMRANGEBYSCORE", "HSET", "HMSET", "HDEL",
                   "MSET", "FLUSHALL", "FLUSHDB"})) {
    return true;
  }
  if (name == "SET") {
    // SET k v [EX|PX|EXAT|PXAT n] [XX] [KEEPTTL] is idempotent; with NX or GET
    // the reply of a second run differs (nil / the new value).
    for (size_t i = 3; i < args.size(); ++i) {
      std::string opt = Upper(args[i]);
      if (opt == "NX" || opt == "GET") return false;
    }
    return true;
  }
  if (name == "ZADD") {
    for (size_t i = 2; i < args.size(); ++i) {
      if (Upper(args[i]) == "INCR") return false;
    }
    return true;
  }
  return false;  // INCR, LPUSH, XADD, EVAL, ... : a second run changes the data again
}

bool RefusedWithoutRunning(std::string_view error_kind) {
  return error_kind == "MOVED" || error_kind == "ASK" || error_kind == "TRYAGAIN" ||
         error_kind == "LOADING" || error_kind == "MASTERDOWN" || error_kind == "CLUSTERDOWN" ||
         error_kind == "READONLY";
}

std::optional<Endpoint> ParseSwitchMaster(std::string_view payload, std::string_view master_name) {
  std::array<std::string_view, 5> fields;
  std::size_t count = 0;
  while (!payload.empty()) {
    const std::size_t space = payload.find(' ');
    if (count == fields.size()) return std::nullopt;  // more than five fields
    fields[count++] = payload.substr(0, space);
    if (space == std::string_view::npos) break;
    payload.remove_prefix(space + 1);
  }
  if (count != fields.size() || fields[0] != master_name || fields[3].empty()) return std::nullopt;
  unsigned port = 0;
  const std::string_view port_text = fields[4];
  const auto [end, ec] =
      std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc() || end != port_text.data() + port_text.size() || port == 0 ||
      port > 65535) {
    return std::nullopt;
  }
  Endpoint ep;
  ep.host = std::string(fields[3]);
  ep.port = static_cast<uint16_t>(port);
  return ep;
}

}  // namespace bulwark::redis
