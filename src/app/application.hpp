// Composition root of `bulwark serve`: configuration -> stores -> services ->
// HTTP server, started in that order and stopped in reverse (SPEC §5).
#pragma once

#include "config/config.hpp"
#include "service/key_service.hpp"

namespace bulwark {

// The signing-key settings of a configuration (serve and `bulwark keys`).
KeyServiceOptions KeyOptionsFrom(const ServeConfig& config);
// The sealer of private keys: null without BULWARK_MASTER_KEY; kInvalidArgument
// (exit 2) for a master key that does not parse.
Result<std::shared_ptr<const KeySealer>> KeySealerFrom(const ServeConfig& config);

// REQUIRES: no other thread has been started yet when Run() is called (it
// blocks SIGTERM/SIGINT process-wide and waits for them itself).
class Application {
 public:
  explicit Application(ServeConfig config);

  // Starts, serves until SIGTERM/SIGINT, drains and stops. Returns the exit
  // code: 0 after a clean drain, 1 when start-up failed, 2 for a configuration error.
  int Run();

 private:
  ServeConfig config_;
};

}  // namespace bulwark
