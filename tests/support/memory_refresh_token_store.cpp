#include "tests/support/memory_refresh_token_store.hpp"

#include "storage/refresh_rotation.hpp"

namespace bulwark::testing {

namespace {
Error Down() { return Error::Unavailable("memory store marked unavailable"); }
}  // namespace

Status MemoryRefreshTokenStore::CreateFamily(const RefreshFamily& family) {
  if (unavailable) return Down();
  std::lock_guard lock(mutex_);
  if (!families_.emplace(family.family_id, family).second) {
    return Error::AlreadyExists("refresh family exists");
  }
  return Status::Ok();
}

Result<RefreshFamily> MemoryRefreshTokenStore::GetFamily(const std::string& family_id,
                                                         int64_t now) {
  if (unavailable) return Down();
  std::lock_guard lock(mutex_);
  auto it = families_.find(family_id);
  if (it == families_.end() || !RefreshFamilyLive(it->second, now)) {
    return Error::NotFound("refresh family not found");
  }
  return it->second;
}

Result<RotateResult> MemoryRefreshTokenStore::Rotate(const RotateRequest& request) {
  if (unavailable) return Down();
  std::lock_guard lock(mutex_);
  auto it = families_.find(request.family_id);
  if (it == families_.end() || !RefreshFamilyLive(it->second, request.now)) {
    return Error::NotFound("refresh family not found");
  }
  RotateOutcome outcome = ApplyRotation(it->second, request);
  return RotateResult{outcome, it->second};
}

Status MemoryRefreshTokenStore::RevokeFamily(const std::string& family_id) {
  if (unavailable) return Down();
  std::lock_guard lock(mutex_);
  auto it = families_.find(family_id);
  if (it != families_.end()) it->second.revoked = true;
  return Status::Ok();
}

}  // namespace bulwark::testing
