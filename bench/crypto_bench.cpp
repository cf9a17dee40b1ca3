// Micro-benchmarks of the per-request crypto: session tokens, their SHA-256
// (every verify hashes the presented token) and Argon2id password checks.
#include <benchmark/benchmark.h>

#include <string>

#include "crypto/password_hasher.hpp"
#include "crypto/tokens.hpp"

namespace {

void BM_NewSessionToken(benchmark::State& state) {
  bulwark::InitCrypto();
  for (auto _ : state) {
    std::string token = bulwark::NewSessionToken();
    benchmark::DoNotOptimize(token);
  }
}
BENCHMARK(BM_NewSessionToken);

void BM_Sha256HexOfToken(benchmark::State& state) {
  bulwark::InitCrypto();
  const std::string token = bulwark::NewSessionToken();
  for (auto _ : state) {
    std::string hash = bulwark::Sha256Hex(token);
    benchmark::DoNotOptimize(hash);
  }
}
BENCHMARK(BM_Sha256HexOfToken);

// What a login does to mint a session: a token and the hash that is stored.
void BM_NewSessionTokenAndSha256(benchmark::State& state) {
  bulwark::InitCrypto();
  for (auto _ : state) {
    std::string token = bulwark::NewSessionToken();
    std::string hash = bulwark::Sha256Hex(token);
    benchmark::DoNotOptimize(token);
    benchmark::DoNotOptimize(hash);
  }
}
BENCHMARK(BM_NewSessionTokenAndSha256);

// One login's password check at Bulwark's defaults (OWASP: Argon2id t=2, m=19 MiB, p=1).
void BM_PasswordHasherVerifyOwasp(benchmark::State& state) {
  bulwark::InitCrypto();
  const bulwark::PasswordHasher hasher(bulwark::Argon2Params{});  // t=2, m=19456 KiB
  const auto encoded = hasher.Hash("correct horse battery staple");
  if (!encoded.ok()) {
    state.SkipWithError("hashing failed");
    return;
  }
  bool ok = true;
  for (auto _ : state) {
    ok = ok && hasher.Verify(*encoded, "correct horse battery staple");
  }
  if (!ok) state.SkipWithError("verify returned false");
  state.counters["t"] = hasher.params().iterations;
  state.counters["m_kib"] = hasher.params().memory_kib;
}
BENCHMARK(BM_PasswordHasherVerifyOwasp)->Unit(benchmark::kMillisecond);

}  // namespace
