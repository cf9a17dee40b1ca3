// Runs the contract suite against DurableSessionStore composed of two fakes,
// so the composition itself keeps every session-store promise.
#include <memory>

#include "storage/durable_session_store.hpp"
#include "tests/contract/store_contract.hpp"
#include "tests/support/memory_client_store.hpp"
#include "tests/support/memory_refresh_token_store.hpp"
#include "tests/support/memory_store.hpp"

namespace bulwark::testing {
namespace {

class DurableMemoryBackend final : public StoreBackend {
 public:
  std::string Name() const override { return "DurableMemory"; }
  Stores CreateFresh() override {
    auto record = std::make_shared<MemoryStore>();
    auto cache = std::make_shared<MemoryStore>();
    Stores stores = MemoryStore::AsStores(record);
    stores.refresh_tokens = std::make_shared<MemoryRefreshTokenStore>();
    stores.clients = std::make_shared<MemoryClientStore>();
    DurableSessionStore::CacheHooks hooks;
    hooks.restore = [cache](const Session& s) {
      Status st = cache->DeleteSession(s.token_hash);
      return st.ok() ? cache->CreateSession(s) : st;
    };
    stores.sessions = std::make_shared<DurableSessionStore>(cache, record, std::move(hooks));
    stores.logins = std::make_shared<SequentialLoginStore>(stores.sessions, stores.refresh_tokens);
    return stores;
  }
};

[[maybe_unused]] const bool kDurableMemoryRegistered =
    RegisterStoreBackend(std::make_shared<DurableMemoryBackend>());

}  // namespace
}  // namespace bulwark::testing
