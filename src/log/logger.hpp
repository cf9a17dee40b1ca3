// Structured logging: one JSON object (or one text line) per event, written
// through spdlog. Never pass a password, token or key as a field.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace bulwark::log {

enum class Format { kJson, kText };
enum class Level { kDebug, kInfo, kWarn, kError };

using Value = std::variant<std::string_view, int64_t, double, bool>;
using Field = std::pair<std::string_view, Value>;

// Configures the process-wide logger (stderr). Safe to call again (tests).
// `replica` is added to every line.
void Init(Format format, std::string replica, Level min_level = Level::kInfo);
// Writes one line: {"time":..., "level":..., "replica":..., "msg":..., fields...}.
void Write(Level level, std::string_view message, std::initializer_list<Field> fields = {});
inline void Info(std::string_view m, std::initializer_list<Field> f = {}) {
  Write(Level::kInfo, m, f);
}
inline void Warn(std::string_view m, std::initializer_list<Field> f = {}) {
  Write(Level::kWarn, m, f);
}
inline void Error(std::string_view m, std::initializer_list<Field> f = {}) {
  Write(Level::kError, m, f);
}
// Like Write, but the line may wait (at most until Flush() or a 32 KiB batch)
// to be written together with others: for high-volume lines such as the
// access log. Write() lines go out at once, and take earlier batched ones along.
void WriteBatched(Level level, std::string_view message, std::initializer_list<Field> fields = {});
// Writes out buffered lines (called every second and before exit).
void Flush();

}  // namespace bulwark::log
