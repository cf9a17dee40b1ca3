// The production relational back-end: users, roles, configuration and the
// write-through record of sessions in PostgreSQL (SPEC §1, §2), over libpq.
//
// Every call is BLOCKING (network round trips, waits for a pooled connection):
// make them from Bulwark's store worker pool, never from an HTTP I/O thread.
//
// Behaviour (docs/postgres.md):
//   - a pool of at most `pool_size` connections, opened lazily; a caller
//     waits at most `acquire_timeout` for one (then kUnavailable);
//   - `connect_timeout` bounds opening a connection (TCP, TLS, authentication),
//     `statement_timeout` is set on every connection (server side) and also
//     bounds the wait for an answer (client side, plus a second of grace);
//   - a connection that broke (server restart, network) is discarded and the
//     next call opens a new one, so Bulwark survives a PostgreSQL restart;
//   - a circuit breaker opens after `breaker.failure_threshold` consecutive
//     connectivity failures or timeouts; while open, calls fail at once with
//     kUnavailable ("postgres: circuit open");
//   - unique violations are kAlreadyExists; connection failures, timeouts and
//     server shutdowns are kUnavailable. Error messages never contain values
//     (passwords, hashes) or the connection string.
#pragma once

#include <chrono>
#include <string>

#include "core/result.hpp"
#include "metrics/registry.hpp"
#include "resilience/circuit_breaker.hpp"
#include "storage/stores.hpp"

namespace bulwark {

struct PostgresOptions {
  // libpq keyword/value string ("host=db port=5432 dbname=bulwark sslmode=verify-full
  // sslrootcert=/ca.pem") or URI ("postgres://user:pass@db:5432/bulwark?sslmode=require").
  // Whatever it leaves out comes from libpq's PG* environment variables.
  std::string conninfo;
  int pool_size = 8;
  std::chrono::milliseconds connect_timeout{2000};
  std::chrono::milliseconds statement_timeout{2000};
  std::chrono::milliseconds acquire_timeout{2000};
  resilience::BreakerOptions breaker;
  // When set, feeds resilience::DependencyMetrics(*metrics, "postgres"). Must outlive the stores.
  metrics::Registry* metrics = nullptr;
};

// Connects, applies pending migrations and returns stores that all share one
// PostgresStore (database_kind and session_kind "postgres"). kInvalidArgument
// for bad options or a malformed conninfo, kUnavailable when the server
// cannot be reached, kInternal when a migration fails.
Result<Stores> OpenPostgresStores(const PostgresOptions& options);

// Applies pending migrations only (`bulwark migrate`); returns the schema
// version reached (may be newer than this binary knows). Safe to run from
// several replicas at once: migrations are serialised by an advisory lock.
Result<int> MigratePostgres(const PostgresOptions& options);

// The conninfo for SPEC §4's variables. A non-empty DATABASE_URL wins and is
// returned as is (after checking that libpq can parse it). Otherwise DB_HOST is
// `host[:port]` (`[v6]:port` for IPv6, a comma-separated list for several hosts)
// and becomes "host=... port=..."; dbname and user default to "bulwark" unless
// PGDATABASE / PGUSER are set, and the password, sslmode etc. come from libpq's
// environment (PGPASSWORD, PGSSLMODE, PGSSLROOTCERT, ~/.pgpass).
// kInvalidArgument naming the variable for a malformed value or when both are empty.
Result<std::string> PostgresConninfo(const std::string& db_host, const std::string& database_url);

}  // namespace bulwark
