// Registers the PostgreSQL back-end with the store contract suite. The server
// (tests/support/postgres_server) is started lazily, once per process, by the
// first test that needs it, and stops at exit; each test gets a fresh schema.
#include <memory>
#include <stdexcept>
#include <string>

#include "core/result.hpp"
#include "storage/postgres/postgres_store.hpp"
#include "tests/contract/store_contract.hpp"
#include "tests/support/postgres_server.hpp"

namespace bulwark::testing {

namespace {

PostgresServer& Server() {
  // Started from the test's (main) thread, which lives until exit.
  static PostgresServer server;
  return server;
}

class PostgresBackend final : public StoreBackend {
 public:
  std::string Name() const override { return "Postgres"; }

  Stores CreateFresh() override {
    PostgresOptions options;
    options.conninfo = Server().CreateFreshSchema();  // search_path = a new, empty schema
    Result<Stores> opened = OpenPostgresStores(options);
    if (!opened.ok()) {
      throw std::runtime_error("OpenPostgresStores: " + opened.error().message());
    }
    return std::move(opened).value();
  }
};

[[maybe_unused]] const bool kPostgresRegistered =
    RegisterStoreBackend(std::make_shared<PostgresBackend>());

}  // namespace

}  // namespace bulwark::testing
