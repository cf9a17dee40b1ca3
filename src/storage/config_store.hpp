// ConfigStore: the `configuration` table (key -> JSON value).
#pragma once

#include <string>
#include <vector>

#include "core/result.hpp"
#include "domain/model.hpp"

namespace bulwark {

// Thread-safe, blocking; see UserStore for the kUnavailable rule.
class ConfigStore {
 public:
  virtual ~ConfigStore() = default;
  ConfigStore() = default;
  ConfigStore(const ConfigStore&) = delete;
  ConfigStore& operator=(const ConfigStore&) = delete;

  // kNotFound when absent.
  virtual Result<ConfigEntry> GetConfig(const std::string& key) = 0;
  // Inserts or replaces. value_json must already be valid JSON (checked by callers).
  virtual Status PutConfig(const ConfigEntry& entry) = 0;
  // kNotFound when absent.
  virtual Status DeleteConfig(const std::string& key) = 0;
  // Ordered by key.
  virtual Result<std::vector<ConfigEntry>> ListConfig() = 0;
};

}  // namespace bulwark
