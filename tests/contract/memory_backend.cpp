// Runs the contract suite against the unit tests' fake (tests/support/memory_store),
// so the fake the service tests rely on behaves like a real store.
#include <memory>

#include "tests/contract/store_contract.hpp"
#include "tests/support/memory_client_store.hpp"
#include "tests/support/memory_refresh_token_store.hpp"
#include "tests/support/memory_store.hpp"

namespace bulwark::testing {
namespace {

class MemoryBackend final : public StoreBackend {
 public:
  std::string Name() const override { return "Memory"; }
  Stores CreateFresh() override {
    Stores stores = MemoryStore::AsStores(std::make_shared<MemoryStore>());
    stores.refresh_tokens = std::make_shared<MemoryRefreshTokenStore>();
    stores.clients = std::make_shared<MemoryClientStore>();
    stores.logins = std::make_shared<SequentialLoginStore>(stores.sessions, stores.refresh_tokens);
    return stores;
  }
};

[[maybe_unused]] const bool kMemoryRegistered =
    RegisterStoreBackend(std::make_shared<MemoryBackend>());

}  // namespace
}  // namespace bulwark::testing
