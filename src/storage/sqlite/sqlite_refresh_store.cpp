// SqliteStore's RefreshTokenStore: one row per family; Rotate reads and
// rewrites it under BEGIN IMMEDIATE, so concurrent rotations serialise.
#include <future>
#include <iterator>

#include "core/thread_name.hpp"
#include "storage/refresh_rotation.hpp"
#include "storage/sqlite/sqlite_store_impl.hpp"

namespace bulwark {

namespace {

using sqlite::Connection;
using sqlite::Statement;
using sqlite::Transaction;

constexpr char kColumns[] =
    "family_id, user_id, client_id, session_hash, scope, current_hash, previous_hash, "
    "generation, created_at, rotated_at, idle_expires_at, absolute_expires_at, revoked";

RefreshFamily ReadFamily(const Statement& st) {
  RefreshFamily f;
  f.family_id = st.Text(0);
  f.user_id = st.Text(1);
  f.client_id = st.Text(2);
  f.session_hash = st.Text(3);
  f.scope = st.Text(4);
  f.current_hash = st.Text(5);
  f.previous_hash = st.Text(6);
  f.generation = st.Int(7);
  f.created_at = st.Int(8);
  f.rotated_at = st.Int(9);
  f.idle_expires_at = st.Int(10);
  f.absolute_expires_at = st.Int(11);
  f.revoked = st.Int(12) != 0;
  return f;
}

// The family row, or kNotFound.
Result<RefreshFamily> Load(Connection& conn, const std::string& family_id) {
  Result<Statement> st = conn.Prepare(std::string("SELECT ") + kColumns +
                                      " FROM refresh_families WHERE family_id = ?1");
  if (!st.ok()) return st.error();
  st->Bind(1, family_id);
  Result<bool> row = st->Step();
  if (!row.ok()) return row.error();
  if (!*row) return Error::NotFound("refresh family not found");
  return ReadFamily(*st);
}

}  // namespace

Status SqliteStore::CreateFamily(const RefreshFamily& f) {
  Result<sqlite::ConnectionPool::Lease> lease = pool_->Acquire();
  if (!lease.ok()) return lease.error();
  return InsertFamily(**lease, f);
}

Status SqliteStore::InsertFamily(Connection& conn, const RefreshFamily& f) {
  Result<Statement> st =
      conn.Prepare(std::string("INSERT INTO refresh_families (") + kColumns +
                   ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)");
  if (!st.ok()) return st.error();
  st->Bind(1, f.family_id);
  st->Bind(2, f.user_id);
  st->Bind(3, f.client_id);
  st->Bind(4, f.session_hash);
  st->Bind(5, f.scope);
  st->Bind(6, f.current_hash);
  st->Bind(7, f.previous_hash);
  st->Bind(8, f.generation);
  st->Bind(9, f.created_at);
  st->Bind(10, f.rotated_at);
  st->Bind(11, f.idle_expires_at);
  st->Bind(12, f.absolute_expires_at);
  st->Bind(13, int64_t{f.revoked ? 1 : 0});
  return st->Run();
}

Result<RefreshFamily> SqliteStore::GetFamily(const std::string& family_id, int64_t now) {
  Result<sqlite::ConnectionPool::Lease> lease = pool_->Acquire();
  if (!lease.ok()) return lease.error();
  Result<RefreshFamily> f = Load(**lease, family_id);
  if (!f.ok()) return f;
  if (!RefreshFamilyLive(*f, now)) return Error::NotFound("refresh family not found");
  return f;
}

// Group commit: a rotation is a durable commit (one fsync, serialised by the
// write lock), so one writer thread takes every rotation queued while it was
// committing and runs them together in the next transaction: one fsync for
// the whole batch. Callers that complete asynchronously (RotateAsync) hold no
// thread while they wait, so a batch grows with the number of concurrent
// refreshes rather than with the store pool. Rotations of one family within
// a batch apply in arrival order, exactly as if sequential.
namespace {
// Bounds one transaction's length (and so the wait of the batch behind it).
constexpr std::size_t kMaxRotationBatch = 256;
}  // namespace

SqliteStore::~SqliteStore() {
  {
    std::lock_guard lock(rotation_mutex_);
    rotation_stopping_ = true;
  }
  rotation_cv_.notify_all();
  if (rotation_writer_.joinable()) rotation_writer_.join();
}

Result<RotateResult> SqliteStore::Rotate(const RotateRequest& request) {
  std::promise<Result<RotateResult>> promise;
  std::future<Result<RotateResult>> future = promise.get_future();
  RotateAsync(request, [&promise](Result<RotateResult> r) { promise.set_value(std::move(r)); });
  return future.get();
}

void SqliteStore::RotateAsync(RotateRequest request, RotateCallback done) {
  {
    std::lock_guard lock(rotation_mutex_);
    if (!rotation_stopping_) {
      if (!rotation_writer_.joinable()) {
        rotation_writer_ = std::thread([this] {
          NameThisThread("sqlite-refresh");
          RotationWriterLoop();
        });
      }
      rotation_queue_.push_back({std::move(request), std::move(done)});
      rotation_cv_.notify_one();
      return;
    }
  }
  done(Error::Unavailable("sqlite: the store is shutting down"));
}

void SqliteStore::RotationWriterLoop() {
  std::unique_lock lock(rotation_mutex_);
  for (;;) {
    rotation_cv_.wait(lock, [this] { return rotation_stopping_ || !rotation_queue_.empty(); });
    if (rotation_queue_.empty()) return;  // stopping, and everything queued is done
    std::vector<PendingRotation> batch;
    if (rotation_queue_.size() <= kMaxRotationBatch) {
      batch.swap(rotation_queue_);
    } else {
      auto split = rotation_queue_.begin() + static_cast<std::ptrdiff_t>(kMaxRotationBatch);
      batch.assign(std::make_move_iterator(rotation_queue_.begin()),
                   std::make_move_iterator(split));
      rotation_queue_.erase(rotation_queue_.begin(), split);
    }
    lock.unlock();
    std::vector<Result<RotateResult>> results = RunRotations(batch);
    for (std::size_t i = 0; i < batch.size(); ++i) batch[i].done(std::move(results[i]));
    batch.clear();  // callbacks' captures die outside the lock
    lock.lock();
  }
}

std::vector<Result<RotateResult>> SqliteStore::RunRotations(
    const std::vector<PendingRotation>& batch) {
  // A failed statement or commit fails the whole batch: the transaction rolls
  // back, so none of it happened, and each caller sees the error.
  std::vector<Result<RotateResult>> results(batch.size(),
                                            Error::Internal("sqlite: rotation not run"));
  auto fail_all = [&results](const Error& e) {
    for (Result<RotateResult>& r : results) r = e;
    return std::move(results);
  };
  Result<sqlite::ConnectionPool::Lease> lease = pool_->Acquire();
  if (!lease.ok()) return fail_all(lease.error());
  Connection& conn = **lease;
  Transaction txn(conn);
  if (Status s = txn.Begin(); !s.ok()) return fail_all(s.error());
  for (std::size_t i = 0; i < batch.size(); ++i) {
    const RotateRequest& request = batch[i].request;
    Result<RefreshFamily> f = Load(conn, request.family_id);
    if (!f.ok()) {
      if (!f.error().IsNotFound()) return fail_all(f.error());
      results[i] = f.error();
      continue;
    }
    if (!RefreshFamilyLive(*f, request.now)) {
      results[i] = Error::NotFound("refresh family not found");
      continue;
    }
    RotateOutcome outcome = ApplyRotation(*f, request);
    if (outcome != RotateOutcome::kWrongClient) {
      Result<Statement> st = conn.Prepare(
          "UPDATE refresh_families SET current_hash = ?2, previous_hash = ?3, generation = ?4, "
          "rotated_at = ?5, idle_expires_at = ?6, revoked = ?7 WHERE family_id = ?1");
      if (!st.ok()) return fail_all(st.error());
      st->Bind(1, f->family_id);
      st->Bind(2, f->current_hash);
      st->Bind(3, f->previous_hash);
      st->Bind(4, f->generation);
      st->Bind(5, f->rotated_at);
      st->Bind(6, f->idle_expires_at);
      st->Bind(7, int64_t{f->revoked ? 1 : 0});
      if (Status s = st->Run(); !s.ok()) return fail_all(s.error());
    }
    results[i] = RotateResult{outcome, std::move(*f)};
  }
  if (Status s = txn.Commit(); !s.ok()) return fail_all(s.error());
  return results;
}

Status SqliteStore::RevokeFamily(const std::string& family_id) {
  Result<sqlite::ConnectionPool::Lease> lease = pool_->Acquire();
  if (!lease.ok()) return lease.error();
  Result<Statement> st =
      (**lease).Prepare("UPDATE refresh_families SET revoked = 1 WHERE family_id = ?1");
  if (!st.ok()) return st.error();
  st->Bind(1, family_id);
  return st->Run();
}

}  // namespace bulwark
