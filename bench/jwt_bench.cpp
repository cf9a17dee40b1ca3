// Access-token signing and validation (src/jwt): tokens/s of one thread, for
// ES256 and EdDSA. bench/run compares them with `openssl speed ecdsap256
// ed25519` measured in the same run (bench/jwt_vs_openssl.py; target >= 0.8).
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <ctime>
#include <string>

#include "jwt/jwt.hpp"

namespace {

using bulwark::jwt::Algorithm;

bulwark::jwt::Claims SampleClaims() {
  bulwark::jwt::Claims c;
  const int64_t now = static_cast<int64_t>(std::time(nullptr));
  c.iss = "https://bulwark.bench";
  c.sub = "0b5c5e4e-6a57-4d4a-9d0e-0c2f2d4f6a11";
  c.aud = {"api"};
  c.iat = now;
  c.exp = now + 300;
  c.jti = "3f2b8c1e-9d4a-4e7b-8a6f-1c2d3e4f5a6b";
  c.roles = {"user"};
  c.username = "alice";
  return c;
}

bulwark::jwt::SigningKey MustGenerate(Algorithm alg) {
  auto key = bulwark::jwt::SigningKey::Generate(alg, "bench-key");
  if (!key.ok()) std::abort();
  return std::move(key).value();
}

void BM_JwtSign(benchmark::State& state) {
  const auto alg = static_cast<Algorithm>(state.range(0));
  const auto key = MustGenerate(alg);
  const auto claims = SampleClaims();
  for (auto _ : state) {
    auto token = key.Sign(claims);
    if (!token.ok()) state.SkipWithError("sign failed");
    benchmark::DoNotOptimize(token);
  }
  state.SetItemsProcessed(state.iterations());
  state.SetLabel(bulwark::jwt::AlgorithmName(alg));
}
BENCHMARK(BM_JwtSign)
    ->Arg(static_cast<int>(Algorithm::kES256))
    ->Arg(static_cast<int>(Algorithm::kEdDSA));

// The full Validate: split, base64url, header JSON, key lookup, signature,
// payload JSON and every claim check.
void BM_JwtValidate(benchmark::State& state) {
  const auto alg = static_cast<Algorithm>(state.range(0));
  const auto key = MustGenerate(alg);
  bulwark::jwt::KeySet keys;
  keys.Add(key);
  const auto claims = SampleClaims();
  const std::string token = key.Sign(claims).value();
  bulwark::jwt::ValidationOptions options;
  options.issuer = claims.iss;
  options.audience = "api";
  options.now = claims.iat;
  for (auto _ : state) {
    auto c = bulwark::jwt::Validate(token, keys, options);
    if (!c.ok()) state.SkipWithError("validate failed");
    benchmark::DoNotOptimize(c);
  }
  state.SetItemsProcessed(state.iterations());
  state.SetLabel(bulwark::jwt::AlgorithmName(alg));
}
BENCHMARK(BM_JwtValidate)
    ->Arg(static_cast<int>(Algorithm::kES256))
    ->Arg(static_cast<int>(Algorithm::kEdDSA));

}  // namespace
