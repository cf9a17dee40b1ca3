// KeyService: the access-token signing keys and their rotation (SPEC §3,
// docs/keys.md). Keys live in the SigningKeyStore; every replica keeps an
// in-memory KeyRing (the signing key, the public keys, the JWKS document)
// that Refresh() rebuilds from the store every few seconds, so a rotation
// made by any replica or by `bulwark keys rotate` reaches all of them
// without a restart.
//
// Rotation timeline (no downtime):
//   Rotate():  a `next` key is created and published in the JWKS at once; it
//              may sign only after publish_delay() = JWKS cache lifetime +
//              refresh interval, so every client that caches the JWKS, and
//              every replica, has it before the first token it signs.
//   promotion: once its time has come, any replica's Refresh() retires the
//              active key (CAS active -> retired) and promotes the next one
//              (CAS next -> active); the store allows one active key, so the
//              race has one winner.
//   retired:   stays in the JWKS until every token it signed has expired
//              (retire_lifetime() = access-token TTL + leeway + refresh
//              interval, because other replicas may sign with it until they
//              refresh), then Refresh() deletes it.
//   bootstrap: no key at all -> Refresh() creates an active key; replicas
//              starting together race on the one-active rule, one wins.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.hpp"
#include "core/result.hpp"
#include "crypto/secret_box.hpp"
#include "jwt/jwt.hpp"
#include "storage/signing_key_store.hpp"

namespace bulwark {

struct KeyServiceOptions {
  jwt::Algorithm algorithm = jwt::Algorithm::kES256;  // of new keys
  int64_t jwks_max_age_seconds = 300;                 // Cache-Control max-age of the JWKS
  int64_t access_token_ttl_seconds = 300;
  int64_t leeway_seconds = 30;            // clock skew allowed when validating
  int64_t refresh_interval_seconds = 5;   // how often each replica reloads the keys
  int64_t rotation_interval_seconds = 0;  // automatic rotation; 0: manual only
};

// Seals private keys at rest (BULWARK_MASTER_KEY). Without a sealer, keys
// are stored as PEM text.
class KeySealer {
 public:
  virtual ~KeySealer() = default;
  virtual Result<std::string> Seal(const std::string& kid, std::string_view pem) const = 0;
  virtual Result<std::string> Open(const std::string& kid, std::string_view stored) const = 0;
};

// XChaCha20-Poly1305 under the master key (crypto/secret_box.hpp), bound to
// "signing-key:<kid>" so a sealed key cannot be moved to another row. Open
// also accepts a plain PEM key stored before a master key was configured.
std::shared_ptr<const KeySealer> MasterKeySealer(const MasterKey& key);

// An immutable snapshot of the keys, shared by readers.
struct KeyRing {
  std::optional<jwt::SigningKey> signer;  // the active key
  jwt::KeySet keys;                       // every published key (next, active, retired)
  std::string jwks;                       // {"keys":[...]}
  std::vector<SigningKeyRecord> records;  // without private_key
  int64_t loaded_at = 0;
};

// Thread-safe. Refresh(), Rotate() and List() block on the store; Current()
// and Sign() read memory only.
class KeyService {
 public:
  KeyService(SigningKeyStore& store, const Clock& clock, KeyServiceOptions options,
             std::shared_ptr<const KeySealer> sealer = nullptr);

  // Reloads the keys: deletes expired retired keys, bootstraps an active key
  // when there is none, promotes a due next key, starts an automatic rotation
  // when one is due, then rebuilds the ring. On a store error the previous
  // ring stays in use and the error is returned.
  Status Refresh();
  // Refresh() when the last one is older than a second: for a token whose
  // kid is unknown (a key created by another replica moments ago).
  void RefreshSoon();

  // Starts a rotation: creates the next key (published now, signing after
  // publish_delay()). When a next key already exists it is returned instead.
  Result<SigningKeyRecord> Rotate();
  // Every key in the store, without private material.
  Result<std::vector<SigningKeyRecord>> List();

  std::shared_ptr<const KeyRing> Current() const;
  // Signs with the active key; kUnavailable when there is none.
  Result<std::string> Sign(const jwt::Claims& claims) const;

  int64_t publish_delay() const;
  int64_t retire_lifetime() const;
  const KeyServiceOptions& options() const { return options_; }

 private:
  Status RefreshLocked();
  Result<SigningKeyRecord> CreateKey(KeyState state, int64_t now);
  Result<jwt::SigningKey> Signer(const SigningKeyRecord& record);

  SigningKeyStore& store_;
  const Clock& clock_;
  KeyServiceOptions options_;
  std::shared_ptr<const KeySealer> sealer_;

  std::mutex refresh_mutex_;                        // one Refresh/Rotate at a time
  std::map<std::string, jwt::SigningKey> signers_;  // parsed private keys by kid; refresh_mutex_
  std::chrono::steady_clock::time_point last_refresh_{};  // refresh_mutex_

  mutable std::mutex ring_mutex_;
  std::shared_ptr<const KeyRing> ring_;  // GUARDED_BY(ring_mutex_)
};

// A new kid: 16 random bytes, base64url.
std::string NewKid();

}  // namespace bulwark
