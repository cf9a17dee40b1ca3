#include "service/key_service.hpp"

#include <algorithm>
#include <utility>

#include "crypto/tokens.hpp"
#include "log/logger.hpp"

namespace bulwark {
namespace {

SigningKeyRecord WithoutPrivateKey(SigningKeyRecord record) {
  record.private_key.clear();
  return record;
}

const SigningKeyRecord* FindState(const std::vector<SigningKeyRecord>& keys, KeyState state) {
  for (const auto& k : keys) {
    if (k.state == state) return &k;
  }
  return nullptr;
}

constexpr std::string_view kPemPrefix = "-----BEGIN";

class SecretBoxSealer final : public KeySealer {
 public:
  explicit SecretBoxSealer(const MasterKey& key) : key_(key) {}
  Result<std::string> Seal(const std::string& kid, std::string_view pem) const override {
    return bulwark::Seal(key_, pem, "signing-key:" + kid);
  }
  Result<std::string> Open(const std::string& kid, std::string_view stored) const override {
    if (stored.starts_with(kPemPrefix)) return std::string(stored);  // stored before sealing
    auto pem = bulwark::Open(key_, stored, "signing-key:" + kid);
    if (!pem.ok()) {
      return Error::Unauthorized("signing key " + kid +
                                 ": cannot open with BULWARK_MASTER_KEY (another master key?)");
    }
    return pem;
  }

 private:
  MasterKey key_;
};

}  // namespace

std::shared_ptr<const KeySealer> MasterKeySealer(const MasterKey& key) {
  return std::make_shared<SecretBoxSealer>(key);
}

std::string NewKid() { return RandomHex(16); }

KeyService::KeyService(SigningKeyStore& store, const Clock& clock, KeyServiceOptions options,
                       std::shared_ptr<const KeySealer> sealer)
    : store_(store),
      clock_(clock),
      options_(options),
      sealer_(std::move(sealer)),
      ring_(std::make_shared<const KeyRing>()) {}

int64_t KeyService::publish_delay() const {
  return options_.jwks_max_age_seconds + options_.refresh_interval_seconds;
}

int64_t KeyService::retire_lifetime() const {
  return options_.access_token_ttl_seconds + options_.leeway_seconds +
         options_.refresh_interval_seconds;
}

std::shared_ptr<const KeyRing> KeyService::Current() const {
  std::lock_guard lock(ring_mutex_);
  return ring_;
}

Result<std::string> KeyService::Sign(const jwt::Claims& claims) const {
  std::shared_ptr<const KeyRing> ring = Current();
  if (!ring->signer) return Error::Unavailable("no active signing key");
  return ring->signer->Sign(claims);
}

Result<SigningKeyRecord> KeyService::CreateKey(KeyState state, int64_t now) {
  auto key = jwt::SigningKey::Generate(options_.algorithm, NewKid());
  if (!key.ok()) return key.error();
  SigningKeyRecord record;
  record.kid = key->kid();
  record.algorithm = jwt::AlgorithmName(options_.algorithm);
  std::string pem = key->PrivateKeyPem();
  if (sealer_) {
    auto sealed = sealer_->Seal(record.kid, pem);
    if (!sealed.ok()) return sealed.error();
    record.private_key = std::move(*sealed);
  } else {
    record.private_key = std::move(pem);
  }
  record.public_jwk = key->PublicJwk();
  record.state = state;
  record.created_at = now;
  record.activated_at = state == KeyState::kNext ? now + publish_delay() : now;
  if (Status st = store_.CreateSigningKey(record); !st.ok()) return st.error();
  signers_.emplace(record.kid, std::move(*key));
  return record;
}

Result<jwt::SigningKey> KeyService::Signer(const SigningKeyRecord& record) {
  if (auto it = signers_.find(record.kid); it != signers_.end()) return it->second;
  auto alg = jwt::ParseAlgorithm(record.algorithm);
  if (!alg) return Error::Internal("signing key " + record.kid + ": unknown algorithm");
  std::string pem;
  if (sealer_) {
    auto opened = sealer_->Open(record.kid, record.private_key);
    if (!opened.ok()) return opened.error();
    pem = std::move(*opened);
  } else if (record.private_key.starts_with(kPemPrefix)) {
    pem = record.private_key;
  } else {
    return Error::Unavailable("signing key " + record.kid +
                              " is sealed: BULWARK_MASTER_KEY is required to use it");
  }
  auto key = jwt::SigningKey::FromPrivateKeyPem(*alg, record.kid, pem);
  std::fill(pem.begin(), pem.end(), '\0');
  if (!key.ok()) return key.error();
  signers_.emplace(record.kid, *key);
  return key;
}

Status KeyService::Refresh() {
  std::lock_guard lock(refresh_mutex_);
  return RefreshLocked();
}

void KeyService::RefreshSoon() {
  std::lock_guard lock(refresh_mutex_);
  if (clock_.Monotonic() - last_refresh_ < std::chrono::seconds(1)) return;
  if (Status st = RefreshLocked(); !st.ok()) {
    log::Warn("signing keys: refresh failed", {{"error", st.error().message()}});
  }
}

Status KeyService::RefreshLocked() {
  last_refresh_ = clock_.Monotonic();
  const int64_t now = clock_.NowUnix();
  // A few passes at most: each change (bootstrap, promotion, expiry) is
  // followed by a fresh read so that the ring reflects the store.
  std::vector<SigningKeyRecord> keys;
  for (int pass = 0; pass < 4; ++pass) {
    auto listed = store_.ListSigningKeys();
    if (!listed.ok()) return listed.error();
    keys = std::move(*listed);
    bool changed = false;

    for (const auto& k : keys) {
      if (k.state == KeyState::kRetired && k.expires_at <= now) {
        if (Status st = store_.DeleteSigningKey(k.kid); !st.ok()) return st;
        log::Info("signing key deleted", {{"kid", k.kid}});
        changed = true;
      }
    }
    const SigningKeyRecord* active = FindState(keys, KeyState::kActive);
    const SigningKeyRecord* next = FindState(keys, KeyState::kNext);

    if (active == nullptr && next == nullptr) {
      auto created = CreateKey(KeyState::kActive, now);
      if (created.ok()) {
        log::Info("signing key bootstrapped", {{"kid", created->kid}});
      } else if (!created.error().IsAlreadyExists()) {
        return created.error();
      }
      changed = true;  // ours or another replica's: read again
    } else if (next != nullptr &&
               (active == nullptr || next->created_at + publish_delay() <= now)) {
      // Promotion, once this replica's own JWKS cache lifetime (the max-age
      // it serves) has passed since the key was published, whatever the
      // rotating process configured. Retire first: the store allows one active key. With no
      // active key at all (a promotion interrupted between its two steps)
      // the next key is promoted at once.
      if (active != nullptr) {
        auto retired = store_.UpdateSigningKeyState(
            active->kid, KeyState::kActive, KeyState::kRetired, now, now + retire_lifetime());
        if (!retired.ok() && !retired.error().IsNotFound()) return retired.error();
        if (retired.ok() && *retired) log::Info("signing key retired", {{"kid", active->kid}});
      }
      auto promoted =
          store_.UpdateSigningKeyState(next->kid, KeyState::kNext, KeyState::kActive, now, 0);
      if (!promoted.ok() && !promoted.error().IsNotFound() && !promoted.error().IsAlreadyExists()) {
        return promoted.error();
      }
      if (promoted.ok() && *promoted) log::Info("signing key activated", {{"kid", next->kid}});
      changed = true;
    } else if (active != nullptr && next == nullptr && options_.rotation_interval_seconds > 0 &&
               active->activated_at + options_.rotation_interval_seconds <= now) {
      auto created = CreateKey(KeyState::kNext, now);
      if (created.ok()) {
        log::Info("signing key rotation started",
                  {{"kid", created->kid}, {"activates_at", created->activated_at}});
      } else if (!created.error().IsAlreadyExists()) {
        return created.error();
      }
      changed = true;
    }
    if (!changed) break;
  }

  auto ring = std::make_shared<KeyRing>();
  ring->loaded_at = now;
  for (const auto& k : keys) {
    if (k.state == KeyState::kRetired && k.expires_at <= now) continue;
    if (Status st = ring->keys.AddJwk(k.public_jwk); !st.ok()) {
      log::Error("signing key: unusable public key", {{"kid", k.kid}});
      continue;
    }
    if (k.state == KeyState::kActive) {
      auto signer = Signer(k);
      if (signer.ok()) {
        ring->signer = std::move(*signer);
      } else {
        log::Error("signing key: cannot load the private key",
                   {{"kid", k.kid}, {"error", signer.error().message()}});
      }
    }
    ring->records.push_back(WithoutPrivateKey(k));
  }
  ring->jwks = ring->keys.ToJwks();
  // Forget parsed private keys that are no longer active or next.
  std::erase_if(signers_, [&](const auto& entry) {
    return std::none_of(keys.begin(), keys.end(), [&](const SigningKeyRecord& k) {
      return k.kid == entry.first && k.state != KeyState::kRetired;
    });
  });
  std::lock_guard lock(ring_mutex_);
  ring_ = std::move(ring);
  return Status::Ok();
}

Result<SigningKeyRecord> KeyService::Rotate() {
  std::lock_guard lock(refresh_mutex_);
  const int64_t now = clock_.NowUnix();
  auto created = CreateKey(KeyState::kNext, now);
  if (!created.ok()) {
    if (!created.error().IsAlreadyExists()) return created.error();
  } else {
    log::Info("signing key rotation started",
              {{"kid", created->kid}, {"activates_at", created->activated_at}});
  }
  if (Status st = RefreshLocked(); !st.ok()) return st.error();
  std::shared_ptr<const KeyRing> ring = Current();
  for (const auto& k : ring->records) {
    if (k.state == KeyState::kNext) return k;
  }
  // Promoted already (a zero publish delay): report the active key.
  for (const auto& k : ring->records) {
    if (k.state == KeyState::kActive) return k;
  }
  return Error::Internal("rotation left no next or active key");
}

Result<std::vector<SigningKeyRecord>> KeyService::List() {
  auto keys = store_.ListSigningKeys();
  if (!keys.ok()) return keys.error();
  std::vector<SigningKeyRecord> out;
  for (auto& k : *keys) out.push_back(WithoutPrivateKey(std::move(k)));
  return out;
}

}  // namespace bulwark
