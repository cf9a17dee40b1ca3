#include "log/logger.hpp"

#include "core/json_escape.hpp"

#include <spdlog/logger.h>
#include <spdlog/sinks/base_sink.h>
#include <unistd.h>

#include <atomic>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <memory>
#include <string>

namespace bulwark::log {
namespace {

struct State {
  Format format = Format::kJson;
  std::string replica;
  std::shared_ptr<spdlog::logger> logger;
};

// Writes whole lines to stderr in batches: one write(2) per kBatchBytes (or per
// Flush) instead of one per line, which at tens of thousands of access-log
// lines a second is a visible share of the CPU. The base sink's mutex keeps
// lines from concurrent threads whole.
class BatchedStderrSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  static constexpr std::size_t kBatchBytes = 32 * 1024;

  ~BatchedStderrSink() override { WriteOut(); }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    buffer_.append(msg.payload.data(), msg.payload.size());
    buffer_.push_back('\n');
    if (buffer_.size() >= kBatchBytes) WriteOut();
  }
  void flush_() override { WriteOut(); }

 private:
  void WriteOut() {
    std::size_t done = 0;
    while (done < buffer_.size()) {
      ssize_t n = ::write(STDERR_FILENO, buffer_.data() + done, buffer_.size() - done);
      if (n <= 0) {
        if (n < 0 && errno == EINTR) continue;
        break;  // stderr is gone: drop the batch rather than block or spin
      }
      done += static_cast<std::size_t>(n);
    }
    buffer_.clear();
  }

  std::string buffer_;
};

std::shared_ptr<spdlog::logger> MakeLogger() {
  auto sink = std::make_shared<BatchedStderrSink>();
  auto logger = std::make_shared<spdlog::logger>("bulwark", std::move(sink));
  logger->set_pattern("%v");                // we build the whole line ourselves
  logger->set_level(spdlog::level::trace);  // filtering happens before formatting, in Write
  // Everything but per-request lines is rare and wanted at once.
  logger->flush_on(spdlog::level::info);
  return logger;
}

// Checked first by Write, without touching the state, so a filtered-out call costs
// one relaxed load.
std::atomic<int> min_level{static_cast<int>(Level::kInfo)};

std::shared_ptr<const State> DefaultState() {
  auto state = std::make_shared<State>();
  state->logger = MakeLogger();
  return state;
}

// Replaced wholesale by Init; writers keep the snapshot they loaded. Never destroyed,
// so that code running in static destructors can still log.
std::atomic<std::shared_ptr<const State>>& CurrentState() {
  static auto* state = new std::atomic<std::shared_ptr<const State>>(DefaultState());
  return *state;
}

const char* LevelName(Level level, Format format) {
  const bool upper = format == Format::kText;
  switch (level) {
    case Level::kDebug:
      return upper ? "DEBUG" : "debug";
    case Level::kInfo:
      return upper ? "INFO" : "info";
    case Level::kWarn:
      return upper ? "WARN" : "warn";
    case Level::kError:
      return upper ? "ERROR" : "error";
  }
  return "info";
}

spdlog::level::level_enum SpdlogLevel(Level level) {
  switch (level) {
    case Level::kDebug:
      return spdlog::level::debug;
    case Level::kInfo:
      return spdlog::level::info;
    case Level::kWarn:
      return spdlog::level::warn;
    case Level::kError:
      return spdlog::level::err;
  }
  return spdlog::level::info;
}

// RFC 3339, UTC, milliseconds: 2026-11-22T02:05:53.123Z. The date and time
// up to the second are formatted once per second and thread: the access log
// writes a line per request.
void AppendRfc3339Now(std::string& out) {
  thread_local std::time_t cached_second = -1;
  thread_local char cached_text[64];  // "YYYY-MM-DDTHH:MM:SS"; ample for any int fields
  const auto now = std::chrono::system_clock::now();
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch());
  const std::time_t secs = static_cast<std::time_t>(ms.count() / 1000);
  if (secs != cached_second) {
    std::tm tm{};
    gmtime_r(&secs, &tm);
    std::snprintf(cached_text, sizeof cached_text, "%04d-%02d-%02dT%02d:%02d:%02d",
                  tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    cached_second = secs;
  }
  out.append(cached_text);
  const auto millis = static_cast<int>(ms.count() % 1000);
  const char fraction[] = {'.', static_cast<char>('0' + millis / 100),
                           static_cast<char>('0' + millis / 10 % 10),
                           static_cast<char>('0' + millis % 10), 'Z'};
  out.append(fraction, sizeof fraction);
}

std::string Rfc3339Now() {
  std::string out;
  AppendRfc3339Now(out);
  return out;
}

// Length of the valid UTF-8 sequence at s[i], or 0 when it is not one.
std::size_t Utf8SequenceLength(std::string_view s, std::size_t i) {
  const auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = b(i);
  std::size_t n;
  uint32_t cp;
  if (c < 0x80) return 1;
  if (c >= 0xc2 && c <= 0xdf) {
    n = 2;
    cp = c & 0x1f;
  } else if (c >= 0xe0 && c <= 0xef) {
    n = 3;
    cp = c & 0x0f;
  } else if (c >= 0xf0 && c <= 0xf4) {
    n = 4;
    cp = c & 0x07;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  for (std::size_t k = 1; k < n; ++k) {
    if ((b(i + k) & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (b(i + k) & 0x3f);
  }
  // Overlong forms, surrogates and code points past U+10FFFF.
  if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10ffff ||
      (cp >= 0xd800 && cp <= 0xdfff)) {
    return 0;
  }
  return n;
}

// Untrusted bytes (user agents, usernames) must not make the line unparsable:
// invalid UTF-8 becomes U+FFFD.
std::string ValidUtf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size();) {
    const std::size_t n = Utf8SequenceLength(s, i);
    if (n == 0) {
      out += "\xef\xbf\xbd";
      ++i;
    } else {
      out.append(s, i, n);
      i += n;
    }
  }
  return out;
}

// Shortest text that reads back to the same double; JSON has no NaN or infinity.
std::string NumberText(double v, bool json) {
  if (!std::isfinite(v)) {
    if (json) return "null";
    return std::isnan(v) ? "NaN" : (v > 0 ? "+Inf" : "-Inf");
  }
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  return ec == std::errc() ? std::string(buf, end) : std::string("null");
}

void AppendJsonValue(std::string& out, const Value& value) {
  if (const auto* s = std::get_if<std::string_view>(&value)) {
    AppendJsonString(out, *s);
  } else if (const auto* i = std::get_if<int64_t>(&value)) {
    char buf[24];
    const auto end = std::to_chars(buf, buf + sizeof buf, *i).ptr;
    out.append(buf, static_cast<std::size_t>(end - buf));
  } else if (const auto* d = std::get_if<double>(&value)) {
    out.append(NumberText(*d, /*json=*/true));
  } else {
    out.append(std::get<bool>(value) ? "true" : "false");
  }
}

// Text lines stay one line: control characters are escaped.
std::string EscapeControls(std::string_view s) {
  std::string out;
  for (char c : ValidUtf8(s)) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (u < 0x20 || u == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", u);
      out += buf;
    } else {
      out += c;
    }
  }
  return out;
}

// logfmt-style: quoted when empty or holding spaces, quotes, '=' or escapes.
std::string TextValue(const Value& value) {
  if (const auto* i = std::get_if<int64_t>(&value)) return std::to_string(*i);
  if (const auto* d = std::get_if<double>(&value)) return NumberText(*d, /*json=*/false);
  if (const auto* b = std::get_if<bool>(&value)) return *b ? "true" : "false";
  const std::string_view s = std::get<std::string_view>(value);
  std::string escaped = EscapeControls(s);
  bool quote = escaped.empty();
  for (char c : escaped) quote = quote || c == ' ' || c == '"' || c == '=' || c == '\\';
  if (!quote) return escaped;
  std::string out = "\"";
  for (char c : escaped) {
    if (c == '"') out += '\\';
    out += c;
  }
  out += '"';
  return out;
}

bool IsReservedKey(std::string_view key) {
  return key == "time" || key == "level" || key == "replica" || key == "msg";
}

// Into `line` (cleared first), to reuse its capacity line after line.
void JsonLine(std::string& line, const State& state, Level level, std::string_view message,
              std::initializer_list<Field> fields) {
  line.clear();
  line.append("{\"time\":\"");
  AppendRfc3339Now(line);
  line.append("\",\"level\":\"").append(LevelName(level, Format::kJson)).append("\",\"replica\":");
  AppendJsonString(line, state.replica);
  line.append(",\"msg\":");
  AppendJsonString(line, message);
  for (const auto& [key, value] : fields) {
    line += ',';
    // A field may not shadow the envelope (a duplicate key breaks many parsers).
    if (IsReservedKey(key)) {
      AppendJsonString(line, "field_" + std::string(key));
    } else {
      AppendJsonString(line, key);
    }
    line += ':';
    AppendJsonValue(line, value);
  }
  line += '}';
}

std::string TextLine(Level level, std::string_view message, std::initializer_list<Field> fields) {
  std::string line =
      Rfc3339Now() + " " + LevelName(level, Format::kText) + " " + EscapeControls(message);
  for (const auto& [key, value] : fields) {
    line += ' ';
    line += EscapeControls(key);
    line += '=';
    line += TextValue(value);
  }
  return line;
}

}  // namespace

void Init(Format format, std::string replica, Level min_level_value) {
  auto state = std::make_shared<State>();
  state->format = format;
  state->replica = std::move(replica);
  state->logger = MakeLogger();
  std::shared_ptr<const State> old = CurrentState().exchange(std::move(state));
  if (old) old->logger->flush();
  min_level.store(static_cast<int>(min_level_value), std::memory_order_relaxed);
}

namespace {

void WriteLine(Level level, std::string_view message, std::initializer_list<Field> fields,
               bool batched) {
  if (static_cast<int>(level) < min_level.load(std::memory_order_relaxed)) return;
  try {
    const std::shared_ptr<const State> state = CurrentState().load();
    thread_local std::string line;
    if (state->format == Format::kJson) {
      JsonLine(line, *state, level, message, fields);
    } else {
      line = TextLine(level, message, fields);
    }
    // spdlog's trace level is below flush_on(): the line waits for the batch.
    state->logger->log(batched ? spdlog::level::trace : SpdlogLevel(level),
                       spdlog::string_view_t(line.data(), line.size()));
    // A rare huge line does not pin its memory to the thread.
    if (line.capacity() > 64 * 1024) std::string().swap(line);
  } catch (...) {
    // Logging never takes the caller down (e.g. out of memory while formatting).
  }
}

}  // namespace

void Write(Level level, std::string_view message, std::initializer_list<Field> fields) {
  WriteLine(level, message, fields, false);
}

void WriteBatched(Level level, std::string_view message, std::initializer_list<Field> fields) {
  WriteLine(level, message, fields, true);
}

void Flush() { CurrentState().load()->logger->flush(); }

}  // namespace bulwark::log
