// Argon2id ceiling: how many crypto_pwhash_str_alg(ARGON2ID13) calls per second
// this machine can do at given parameters with N threads, libsodium called
// directly (no HTTP, no store, no Bulwark code). bench/run compares Bulwark's
// login rate against it: a login costs one crypto_pwhash_str_verify, which
// recomputes the hash at the stored parameters, i.e. the same work as a hash.
//
// Usage: argon2_ceiling [--threads N] [--seconds S] [--iterations T] [--memory-kib M]
//                       [--mode hash|verify]
// Prints one JSON object on stdout.
#include <sodium.h>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

struct Options {
  unsigned threads = 0;  // 0: std::thread::hardware_concurrency()
  double seconds = 5.0;
  unsigned long long iterations = 2;
  std::size_t memory_kib = 19456;
  bool verify = false;
};

[[noreturn]] void Usage(const char* why) {
  std::fprintf(stderr,
               "argon2_ceiling: %s\nusage: argon2_ceiling [--threads N] [--seconds S] "
               "[--iterations T] [--memory-kib M] [--mode hash|verify]\n",
               why);
  std::exit(2);
}

Options Parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (i + 1 >= argc) Usage(("missing value for " + arg).c_str());
    const char* v = argv[++i];
    if (arg == "--threads") {
      o.threads = static_cast<unsigned>(std::strtoul(v, nullptr, 10));
    } else if (arg == "--seconds") {
      o.seconds = std::strtod(v, nullptr);
    } else if (arg == "--iterations") {
      o.iterations = std::strtoull(v, nullptr, 10);
    } else if (arg == "--memory-kib") {
      o.memory_kib = std::strtoull(v, nullptr, 10);
    } else if (arg == "--mode") {
      if (std::strcmp(v, "hash") == 0) {
        o.verify = false;
      } else if (std::strcmp(v, "verify") == 0) {
        o.verify = true;
      } else {
        Usage("--mode is hash or verify");
      }
    } else {
      Usage(("unknown argument " + arg).c_str());
    }
  }
  if (o.threads == 0) o.threads = std::max(1u, std::thread::hardware_concurrency());
  if (!(o.seconds > 0 && o.seconds <= 120)) Usage("--seconds must be in (0, 120]");
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = Parse(argc, argv);
  if (sodium_init() < 0) {
    std::fprintf(stderr, "argon2_ceiling: sodium_init failed\n");
    return 1;
  }
  const char kPassword[] = "bench-password-0123456789";
  const std::size_t memlimit = o.memory_kib * 1024;

  // The hash every verifying thread checks (made once, outside the timed part).
  char reference[crypto_pwhash_STRBYTES];
  if (crypto_pwhash_str_alg(reference, kPassword, sizeof kPassword - 1, o.iterations, memlimit,
                            crypto_pwhash_ALG_ARGON2ID13) != 0) {
    std::fprintf(stderr, "argon2_ceiling: hashing failed (out of memory?)\n");
    return 1;
  }

  using Clock = std::chrono::steady_clock;
  std::atomic<bool> stop{false};
  std::atomic<bool> failed{false};
  std::vector<uint64_t> counts(o.threads, 0);
  std::vector<std::thread> workers;
  const auto begin = Clock::now();
  const auto deadline =
      begin + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.seconds));
  for (unsigned t = 0; t < o.threads; ++t) {
    workers.emplace_back([&, t] {
      char out[crypto_pwhash_STRBYTES];
      // Bounded by time: each call takes milliseconds, so the loop ends at most
      // one hash after the deadline.
      while (!stop.load(std::memory_order_relaxed) && Clock::now() < deadline) {
        int rc;
        if (o.verify) {
          rc = crypto_pwhash_str_verify(reference, kPassword, sizeof kPassword - 1);
        } else {
          rc = crypto_pwhash_str_alg(out, kPassword, sizeof kPassword - 1, o.iterations, memlimit,
                                     crypto_pwhash_ALG_ARGON2ID13);
        }
        if (rc != 0) {
          failed = true;
          stop = true;
          break;
        }
        ++counts[t];
      }
    });
  }
  for (auto& w : workers) w.join();
  const double elapsed = std::chrono::duration<double>(Clock::now() - begin).count();
  if (failed) {
    std::fprintf(stderr, "argon2_ceiling: a libsodium call failed\n");
    return 1;
  }
  uint64_t total = 0;
  std::string per_thread;
  for (unsigned t = 0; t < o.threads; ++t) {
    total += counts[t];
    per_thread += (t ? "," : "") + std::to_string(counts[t]);
  }
  const double rate = static_cast<double>(total) / elapsed;
  // User vs kernel time of the whole process: libsodium maps fresh memory for
  // every hash, so part of the cost is page faults (kernel time).
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  const auto secs = [](const timeval& tv) { return tv.tv_sec + tv.tv_usec / 1e6; };
  std::printf(
      "{\"mode\":\"%s\",\"alg\":\"argon2id13\",\"iterations\":%llu,\"memory_kib\":%zu,"
      "\"threads\":%u,\"seconds\":%.3f,\"ops\":%llu,\"per_thread\":[%s],\"ops_per_s\":%.3f,"
      "\"ms_per_op_per_thread\":%.3f,\"user_s\":%.3f,\"sys_s\":%.3f,\"minor_faults\":%ld}\n",
      o.verify ? "verify" : "hash", o.iterations, o.memory_kib, o.threads, elapsed,
      static_cast<unsigned long long>(total), per_thread.c_str(), rate,
      total ? 1000.0 * elapsed * o.threads / static_cast<double>(total) : 0.0, secs(usage.ru_utime),
      secs(usage.ru_stime), usage.ru_minflt);
  return 0;
}
