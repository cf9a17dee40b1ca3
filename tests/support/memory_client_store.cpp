#include "tests/support/memory_client_store.hpp"

namespace bulwark::testing {

namespace {
Error Down() { return Error::Unavailable("memory store marked unavailable"); }
}  // namespace

Status MemoryClientStore::CreateClient(const OAuthClient& client) {
  if (unavailable) return Down();
  if (Status s = CheckClientTokens(client); !s.ok()) return s;
  std::lock_guard lock(mutex_);
  if (!clients_.emplace(client.id, client).second) return Error::AlreadyExists("client exists");
  return Status::Ok();
}

Result<OAuthClient> MemoryClientStore::GetClient(const std::string& id) {
  if (unavailable) return Down();
  std::lock_guard lock(mutex_);
  auto it = clients_.find(id);
  if (it == clients_.end()) return Error::NotFound("client not found");
  return it->second;
}

Result<std::vector<OAuthClient>> MemoryClientStore::ListClients() {
  if (unavailable) return Down();
  std::lock_guard lock(mutex_);
  std::vector<OAuthClient> out;
  for (const auto& [id, client] : clients_) out.push_back(client);
  return out;
}

Status MemoryClientStore::DeleteClient(const std::string& id) {
  if (unavailable) return Down();
  std::lock_guard lock(mutex_);
  if (clients_.erase(id) == 0) return Error::NotFound("client not found");
  return Status::Ok();
}

}  // namespace bulwark::testing
