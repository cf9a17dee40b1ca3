#include "tests/contract/store_contract.hpp"

#include <utility>

namespace bulwark::testing {

namespace {

// Function-local so registration from other files' static initialisers is
// safe whatever the initialisation order.
std::vector<std::shared_ptr<StoreBackend>>& Registry() {
  static auto* registry = new std::vector<std::shared_ptr<StoreBackend>>();
  return *registry;
}

}  // namespace

bool RegisterStoreBackend(std::shared_ptr<StoreBackend> backend) {
  Registry().push_back(std::move(backend));
  return true;
}

const std::vector<std::shared_ptr<StoreBackend>>& StoreBackends() { return Registry(); }

void StoreContractTest::SetUp() {
  stores_ = GetParam()->CreateFresh();
  ASSERT_NE(stores_.users, nullptr);
  ASSERT_NE(stores_.roles, nullptr);
  ASSERT_NE(stores_.config, nullptr);
  ASSERT_NE(stores_.sessions, nullptr);
  ASSERT_NE(stores_.database, nullptr);
  ASSERT_NE(stores_.session_backend, nullptr);
}

std::string BackendName(const ::testing::TestParamInfo<std::shared_ptr<StoreBackend>>& info) {
  return info.param->Name();
}

void PrintTo(const std::shared_ptr<StoreBackend>& backend, std::ostream* os) {
  *os << (backend == nullptr ? std::string("null") : backend->Name());
}

}  // namespace bulwark::testing
