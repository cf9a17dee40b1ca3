// Command classification for routing and retries. Internal to src/redis.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace bulwark::redis {

struct Endpoint;

// The keys of a command, for Cluster routing: none for keyless commands
// (PING, WAIT, INFO, ROLE, ...), every argument for DEL/EXISTS/MGET-like
// commands, every other argument for MSET, otherwise args[1].
std::vector<std::string_view> CommandKeys(const std::vector<std::string>& args);

// True when sending the command twice has the same effect on the data as
// sending it once, so it may be re-sent after a connection was lost or timed
// out while the command may already have run (docs/redis.md, "Retries").
bool IsIdempotent(const std::vector<std::string>& args);

// True for commands that only read data (GET, HGETALL, SMEMBERS, ...).
bool IsReadOnly(const std::vector<std::string>& args);

// Upper-cased command name (args[0]).
std::string CommandName(const std::vector<std::string>& args);

// Error replies (by ErrorKind) with which a node refuses a command without
// running it: MOVED and ASK (another node serves the slot), TRYAGAIN,
// LOADING, MASTERDOWN, CLUSTERDOWN, READONLY (not now, or not here). Sending
// the command again elsewhere or later is safe, whatever it does.
bool RefusedWithoutRunning(std::string_view error_kind);

// The new primary a sentinel announces on its +switch-master channel
// ("<master-name> <old-ip> <old-port> <new-ip> <new-port>"); nullopt when the
// message is about another master or malformed.
std::optional<Endpoint> ParseSwitchMaster(std::string_view payload, std::string_view master_name);

}  // namespace bulwark::redis
