// The store contract suite: one set of tests, written only against the
// interfaces in storage/stores.hpp, run unchanged against every back-end that
// registers itself here. See tests/contract/README.md.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "core/result.hpp"
#include "storage/stores.hpp"

namespace bulwark::testing {

class StoreBackend {
 public:
  virtual ~StoreBackend() = default;
  // Appears in test names (Stores/StoreContractTest.Foo/Sqlite): letters, digits and '_' only.
  virtual std::string Name() const = 0;
  // An empty, migrated set of stores, independent of every earlier one.
  // Whatever they need (a temporary directory, a database schema) must stay
  // alive as long as any of the returned pointers. Throws when it cannot.
  virtual Stores CreateFresh() = 0;
};

// Adds a back-end to the suite. Call it from a namespace-scope initialiser in
// the back-end's own file (see sqlite_backend.cpp); returns true.
bool RegisterStoreBackend(std::shared_ptr<StoreBackend> backend);

// Every registered back-end, in registration order.
const std::vector<std::shared_ptr<StoreBackend>>& StoreBackends();

// One instance per back-end; each test starts from CreateFresh().
class StoreContractTest : public ::testing::TestWithParam<std::shared_ptr<StoreBackend>> {
 protected:
  void SetUp() override;

  Stores stores_;
};

// Test-name suffix for INSTANTIATE_TEST_SUITE_P.
std::string BackendName(const ::testing::TestParamInfo<std::shared_ptr<StoreBackend>>& info);

// So gtest prints "Sqlite" rather than a pointer when a test fails.
void PrintTo(const std::shared_ptr<StoreBackend>& backend, std::ostream* os);

// EXPECT_TRUE(IsOk(store->Foo())) prints the error code and message on failure.
template <typename R>
::testing::AssertionResult IsOk(const R& result) {
  if (result.ok()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << ErrorCodeName(result.error().code()) << ": " << result.error().message();
}

// EXPECT_TRUE(IsError(store->Foo(), ErrorCode::kNotFound)).
template <typename R>
::testing::AssertionResult IsError(const R& result, ErrorCode code) {
  if (result.ok()) {
    return ::testing::AssertionFailure() << "expected " << ErrorCodeName(code) << ", got OK";
  }
  if (result.error().code() != code) {
    return ::testing::AssertionFailure()
           << "expected " << ErrorCodeName(code) << ", got " << ErrorCodeName(result.error().code())
           << ": " << result.error().message();
  }
  return ::testing::AssertionSuccess();
}

}  // namespace bulwark::testing
