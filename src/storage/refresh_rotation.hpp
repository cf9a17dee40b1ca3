// The rotation rule of RefreshTokenStore as a pure function, so that every
// back-end that can lock a family record (memory, SQLite, PostgreSQL) applies
// exactly the same rule; Redis runs the same steps in a Lua script.
#pragma once

#include "storage/refresh_token_store.hpp"

namespace bulwark {

// True when the family can be used at `now`.
bool RefreshFamilyLive(const RefreshFamily& family, int64_t now);

// Applies `request` to a live family (REQUIRES: RefreshFamilyLive) in place
// and says what happened. Hashes are compared in constant time. kWrongClient
// leaves the family untouched (callers then write nothing).
RotateOutcome ApplyRotation(RefreshFamily& family, const RotateRequest& request);

}  // namespace bulwark
