// Registers the embedded SQLite back-end with the store contract suite.
#include <memory>
#include <stdexcept>
#include <string>

#include "core/result.hpp"
#include "storage/sqlite/sqlite_store.hpp"
#include "tests/contract/store_contract.hpp"
#include "tests/support/temp_dir.hpp"

namespace bulwark::testing {

namespace {

class SqliteBackend final : public StoreBackend {
 public:
  std::string Name() const override { return "Sqlite"; }

  Stores CreateFresh() override {
    // The directory must outlive the database: members are destroyed in
    // reverse order, so `stores` (closing the file) goes before `dir`.
    struct Owner {
      TempDir dir;
      Stores stores;
    };
    auto owner = std::make_shared<Owner>();
    SqliteOptions options;
    options.path = owner->dir.File("bulwark.db");
    Result<Stores> opened = OpenSqliteStores(options);
    if (!opened.ok()) {
      throw std::runtime_error("OpenSqliteStores: " + opened.error().message());
    }
    owner->stores = std::move(opened).value();

    // Hand out pointers that share ownership of `owner` (aliasing constructor),
    // so the temporary directory lives exactly as long as the stores.
    const Stores& inner = owner->stores;
    Stores stores;
    stores.users = std::shared_ptr<UserStore>(owner, inner.users.get());
    stores.roles = std::shared_ptr<RoleStore>(owner, inner.roles.get());
    stores.config = std::shared_ptr<ConfigStore>(owner, inner.config.get());
    stores.sessions = std::shared_ptr<SessionStore>(owner, inner.sessions.get());
    stores.signing_keys = std::shared_ptr<SigningKeyStore>(owner, inner.signing_keys.get());
    stores.revocations = std::shared_ptr<RevocationStore>(owner, inner.revocations.get());
    stores.refresh_tokens = std::shared_ptr<RefreshTokenStore>(owner, inner.refresh_tokens.get());
    stores.clients = std::shared_ptr<ClientStore>(owner, inner.clients.get());
    stores.logins = std::shared_ptr<LoginStore>(owner, inner.logins.get());
    stores.database = std::shared_ptr<HealthProbe>(owner, inner.database.get());
    stores.session_backend = std::shared_ptr<HealthProbe>(owner, inner.session_backend.get());
    stores.database_kind = inner.database_kind;
    stores.session_kind = inner.session_kind;
    return stores;
  }
};

[[maybe_unused]] const bool kSqliteRegistered =
    RegisterStoreBackend(std::make_shared<SqliteBackend>());

}  // namespace

}  // namespace bulwark::testing
