// Per-request metrics and the access log (one JSON line per request).
#pragma once

#include "http/server.hpp"
#include "metrics/registry.hpp"

namespace bulwark {

class AccessObserver final : public http::RequestObserver {
 public:
  explicit AccessObserver(metrics::Registry& metrics);
  void OnRequest(const http::RequestRecord& record) override;

 private:
  metrics::Registry& metrics_;
};

}  // namespace bulwark
