// SqliteStore's ClientStore: the `clients` table.
#include "storage/sqlite/sqlite_store_impl.hpp"

namespace bulwark {

namespace {

using sqlite::Connection;
using sqlite::Statement;

constexpr char kColumns[] = "id, secret_hash, grants, scopes, certificate, disabled, created_at";

OAuthClient ReadClient(const Statement& st) {
  OAuthClient c;
  c.id = st.Text(0);
  c.secret_hash = st.Text(1);
  c.grants = SplitTokens(st.Text(2));
  c.scopes = SplitTokens(st.Text(3));
  c.certificate = st.Text(4);
  c.disabled = st.Int(5) != 0;
  c.created_at = st.Int(6);
  return c;
}

}  // namespace

Status SqliteStore::CreateClient(const OAuthClient& c) {
  if (Status s = CheckClientTokens(c); !s.ok()) return s;
  Result<sqlite::ConnectionPool::Lease> lease = pool_->Acquire();
  if (!lease.ok()) return lease.error();
  Result<Statement> st = (**lease).Prepare(std::string("INSERT INTO clients (") + kColumns +
                                           ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)");
  if (!st.ok()) return st.error();
  st->Bind(1, c.id);
  st->Bind(2, c.secret_hash);
  st->Bind(3, JoinTokens(c.grants));
  st->Bind(4, JoinTokens(c.scopes));
  st->Bind(5, c.certificate);
  st->Bind(6, int64_t{c.disabled ? 1 : 0});
  st->Bind(7, c.created_at);
  return st->Run();
}

Result<OAuthClient> SqliteStore::GetClient(const std::string& id) {
  Result<sqlite::ConnectionPool::Lease> lease = pool_->Acquire();
  if (!lease.ok()) return lease.error();
  Result<Statement> st =
      (**lease).Prepare(std::string("SELECT ") + kColumns + " FROM clients WHERE id = ?1");
  if (!st.ok()) return st.error();
  st->Bind(1, id);
  Result<bool> row = st->Step();
  if (!row.ok()) return row.error();
  if (!*row) return Error::NotFound("client not found");
  return ReadClient(*st);
}

Result<std::vector<OAuthClient>> SqliteStore::ListClients() {
  Result<sqlite::ConnectionPool::Lease> lease = pool_->Acquire();
  if (!lease.ok()) return lease.error();
  Result<Statement> st =
      (**lease).Prepare(std::string("SELECT ") + kColumns + " FROM clients ORDER BY id");
  if (!st.ok()) return st.error();
  std::vector<OAuthClient> out;
  for (;;) {
    Result<bool> row = st->Step();
    if (!row.ok()) return row.error();
    if (!*row) return out;
    out.push_back(ReadClient(*st));
  }
}

Status SqliteStore::DeleteClient(const std::string& id) {
  Result<sqlite::ConnectionPool::Lease> lease = pool_->Acquire();
  if (!lease.ok()) return lease.error();
  Result<Statement> st = (**lease).Prepare("DELETE FROM clients WHERE id = ?1");
  if (!st.ok()) return st.error();
  st->Bind(1, id);
  if (Status s = st->Run(); !s.ok()) return s;
  if (st->Changes() == 0) return Error::NotFound("client not found");
  return Status::Ok();
}

}  // namespace bulwark
