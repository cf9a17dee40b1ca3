// In-memory RefreshTokenStore for unit tests, with the same fault flag as MemoryStore.
#pragma once

#include <atomic>
#include <map>
#include <mutex>
#include <string>

#include "storage/refresh_token_store.hpp"

namespace bulwark::testing {

class MemoryRefreshTokenStore final : public RefreshTokenStore {
 public:
  std::atomic<bool> unavailable{false};

  Status CreateFamily(const RefreshFamily& family) override;
  Result<RefreshFamily> GetFamily(const std::string& family_id, int64_t now) override;
  Result<RotateResult> Rotate(const RotateRequest& request) override;
  Status RevokeFamily(const std::string& family_id) override;

 private:
  std::mutex mutex_;
  std::map<std::string, RefreshFamily> families_;
};

}  // namespace bulwark::testing
