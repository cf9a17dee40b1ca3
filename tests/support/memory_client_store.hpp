// In-memory ClientStore for unit tests, with the same fault flag as MemoryStore.
#pragma once

#include <atomic>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "storage/client_store.hpp"

namespace bulwark::testing {

class MemoryClientStore final : public ClientStore {
 public:
  std::atomic<bool> unavailable{false};

  Status CreateClient(const OAuthClient& client) override;
  Result<OAuthClient> GetClient(const std::string& id) override;
  Result<std::vector<OAuthClient>> ListClients() override;
  Status DeleteClient(const std::string& id) override;

 private:
  std::mutex mutex_;
  std::map<std::string, OAuthClient> clients_;
};

}  // namespace bulwark::testing
