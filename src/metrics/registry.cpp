#include "metrics/registry.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <map>
#include <shared_mutex>
#include <stdexcept>

namespace bulwark::metrics {

// ---------------------------------------------------------------------------
// Counter, Gauge

void Counter::Inc(double v) {
  // Counters only go up; a negative or NaN increment is a caller bug that must not
  // corrupt the series (and must not throw on a request path).
  if (!(v >= 0)) return;
  value_.fetch_add(v, std::memory_order_relaxed);
}

double Counter::Value() const { return value_.load(std::memory_order_relaxed); }

void Gauge::Set(double v) { value_.store(v, std::memory_order_relaxed); }
void Gauge::Add(double v) { value_.fetch_add(v, std::memory_order_relaxed); }
double Gauge::Value() const { return value_.load(std::memory_order_relaxed); }

// ---------------------------------------------------------------------------
// Histogram

namespace {

std::vector<double> CheckedBounds(std::vector<double> bounds) {
  // +Inf is always implied; accept it spelled out too.
  if (!bounds.empty() && std::isinf(bounds.back()) && bounds.back() > 0) bounds.pop_back();
  for (std::size_t i = 0; i < bounds.size(); ++i) {
    if (!std::isfinite(bounds[i])) {
      throw std::invalid_argument("histogram bucket bounds must be finite");
    }
    if (i > 0 && !(bounds[i - 1] < bounds[i])) {
      throw std::invalid_argument("histogram bucket bounds must be strictly increasing");
    }
  }
  return bounds;
}

}  // namespace

Histogram::Histogram(std::vector<double> upper_bounds)
    : bounds_(CheckedBounds(std::move(upper_bounds))),
      counts_(std::make_unique<std::atomic<uint64_t>[]>(bounds_.size() + 1)) {}

void Histogram::Observe(double v) {
  // Buckets are upper-bound inclusive (`le`); NaN only lands in +Inf.
  std::size_t i = bounds_.size();
  if (!std::isnan(v)) {
    i = static_cast<std::size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), v) -
                                 bounds_.begin());
  }
  counts_[i].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(v, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
}

std::vector<uint64_t> Histogram::CumulativeCounts() const {
  std::vector<uint64_t> out(bounds_.size() + 1);
  uint64_t total = 0;
  for (std::size_t i = 0; i < out.size(); ++i) {
    total += counts_[i].load(std::memory_order_relaxed);
    out[i] = total;
  }
  return out;
}

double Histogram::Sum() const { return sum_.load(std::memory_order_relaxed); }
uint64_t Histogram::Count() const { return count_.load(std::memory_order_relaxed); }

std::vector<double> DefaultLatencyBuckets() {
  return {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
}

// ---------------------------------------------------------------------------
// Registry

namespace {

enum class Type { kCounter, kGauge, kHistogram };

const char* TypeName(Type t) {
  switch (t) {
    case Type::kCounter:
      return "counter";
    case Type::kGauge:
      return "gauge";
    case Type::kHistogram:
      return "histogram";
  }
  return "untyped";
}

bool IsNameStart(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool IsNameChar(char c) { return IsNameStart(c) || (c >= '0' && c <= '9'); }

void CheckMetricName(const std::string& name) {
  bool ok = !name.empty() && (IsNameStart(name[0]) || name[0] == ':');
  for (char c : name) ok = ok && (IsNameChar(c) || c == ':');
  if (!ok) throw std::invalid_argument("invalid metric name '" + name + "'");
}

// Sorted by label name, so that the same set in another order is the same series.
Labels CanonicalLabels(const std::string& metric, const Labels& labels, Type type) {
  Labels sorted = labels;
  std::sort(sorted.begin(), sorted.end());
  for (std::size_t i = 0; i < sorted.size(); ++i) {
    const std::string& key = sorted[i].first;
    bool ok = !key.empty() && IsNameStart(key[0]) && !key.starts_with("__");
    for (char c : key) ok = ok && IsNameChar(c);
    if (!ok) throw std::invalid_argument(metric + ": invalid label name '" + key + "'");
    if (i > 0 && sorted[i - 1].first == key) {
      throw std::invalid_argument(metric + ": duplicate label '" + key + "'");
    }
    if (type == Type::kHistogram && key == "le") {
      throw std::invalid_argument(metric + ": 'le' is reserved for histogram buckets");
    }
  }
  return sorted;
}

struct Family {
  Type type;
  std::string help;
  // Exactly one of these is used, per `type`. unique_ptr keeps references stable.
  std::map<Labels, std::unique_ptr<Counter>> counters;
  std::map<Labels, std::unique_ptr<Gauge>> gauges;
  std::map<Labels, std::unique_ptr<Histogram>> histograms;
};

template <typename T>
std::map<Labels, std::unique_ptr<T>>& Children(Family& f);
template <>
std::map<Labels, std::unique_ptr<Counter>>& Children<Counter>(Family& f) {
  return f.counters;
}
template <>
std::map<Labels, std::unique_ptr<Gauge>>& Children<Gauge>(Family& f) {
  return f.gauges;
}
template <>
std::map<Labels, std::unique_ptr<Histogram>>& Children<Histogram>(Family& f) {
  return f.histograms;
}

// Prometheus numbers: integers without exponent, everything else the shortest
// text that reads back to the same double.
std::string FormatNumber(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (v == std::trunc(v) && std::fabs(v) < 9.0e15) {
    return std::to_string(static_cast<int64_t>(v));
  }
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::general);
  if (ec != std::errc()) return "NaN";  // cannot happen with 64 bytes
  return std::string(buf, end);
}

void AppendEscaped(std::string& out, const std::string& s, bool escape_quotes) {
  for (char c : s) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '"' && escape_quotes) {
      out += "\\\"";
    } else {
      out += c;
    }
  }
}

// `{a="1",b="2"}` (with `extra` appended last), or nothing when there are no labels.
std::string LabelText(const Labels& labels, const std::string& extra_key = "",
                      const std::string& extra_value = "") {
  if (labels.empty() && extra_key.empty()) return "";
  std::string out = "{";
  bool first = true;
  auto add = [&](const std::string& k, const std::string& v) {
    if (!first) out += ',';
    first = false;
    out += k;
    out += "=\"";
    AppendEscaped(out, v, /*escape_quotes=*/true);
    out += '"';
  };
  for (const auto& [k, v] : labels) add(k, v);
  if (!extra_key.empty()) add(extra_key, extra_value);
  out += '}';
  return out;
}

}  // namespace

struct Registry::Impl {
  mutable std::shared_mutex mu;
  std::map<std::string, Family> families;  // sorted by name, as rendered

  template <typename T, typename Make>
  T& Get(Type type, const std::string& name, const std::string& help, const Labels& labels,
         Make make) {
    CheckMetricName(name);
    Labels key = CanonicalLabels(name, labels, type);
    {
      std::shared_lock lock(mu);
      if (T* found = Find<T>(type, name, key)) return *found;
    }
    std::unique_lock lock(mu);
    if (T* found = Find<T>(type, name, key)) return *found;  // lost a race: someone added it
    std::unique_ptr<T> made = make();  // may throw: before anything is inserted
    auto it = families.try_emplace(name, Family{type, help, {}, {}, {}}).first;
    T& ref = *made;
    Children<T>(it->second).emplace(std::move(key), std::move(made));
    return ref;
  }

  // REQUIRES: mu held (shared or exclusive).
  template <typename T>
  T* Find(Type type, const std::string& name, const Labels& key) {
    auto it = families.find(name);
    if (it == families.end()) return nullptr;
    if (it->second.type != type) {
      throw std::invalid_argument("metric '" + name + "' is already registered as a " +
                                  TypeName(it->second.type) + ", not a " + TypeName(type));
    }
    auto& children = Children<T>(it->second);
    auto child = children.find(key);
    return child == children.end() ? nullptr : child->second.get();
  }
};

Registry::Registry() : impl_(std::make_unique<Impl>()) {}
Registry::~Registry() = default;

Counter& Registry::GetCounter(const std::string& name, const std::string& help,
                              const Labels& labels) {
  return impl_->Get<Counter>(Type::kCounter, name, help, labels,
                             [] { return std::make_unique<Counter>(); });
}

Gauge& Registry::GetGauge(const std::string& name, const std::string& help, const Labels& labels) {
  return impl_->Get<Gauge>(Type::kGauge, name, help, labels,
                           [] { return std::make_unique<Gauge>(); });
}

Histogram& Registry::GetHistogram(const std::string& name, const std::string& help,
                                  const Labels& labels, std::vector<double> upper_bounds) {
  return impl_->Get<Histogram>(Type::kHistogram, name, help, labels, [&] {
    return std::make_unique<Histogram>(std::move(upper_bounds));
  });
}

std::string Registry::RenderPrometheus() const {
  std::shared_lock lock(impl_->mu);
  std::string out;
  for (const auto& [name, family] : impl_->families) {
    out += "# HELP " + name + " ";
    AppendEscaped(out, family.help, /*escape_quotes=*/false);
    out += "\n# TYPE " + name + " " + TypeName(family.type) + "\n";
    switch (family.type) {
      case Type::kCounter:
        for (const auto& [labels, c] : family.counters) {
          out += name + LabelText(labels) + " " + FormatNumber(c->Value()) + "\n";
        }
        break;
      case Type::kGauge:
        for (const auto& [labels, g] : family.gauges) {
          out += name + LabelText(labels) + " " + FormatNumber(g->Value()) + "\n";
        }
        break;
      case Type::kHistogram:
        for (const auto& [labels, h] : family.histograms) {
          const std::vector<uint64_t> cumulative = h->CumulativeCounts();
          const std::vector<double>& bounds = h->upper_bounds();
          for (std::size_t i = 0; i < cumulative.size(); ++i) {
            const std::string le = i < bounds.size() ? FormatNumber(bounds[i]) : "+Inf";
            out += name + "_bucket" + LabelText(labels, "le", le) + " " +
                   std::to_string(cumulative[i]) + "\n";
          }
          out += name + "_sum" + LabelText(labels) + " " + FormatNumber(h->Sum()) + "\n";
          // The +Inf bucket, so that _count always equals it even mid-update.
          out +=
              name + "_count" + LabelText(labels) + " " + std::to_string(cumulative.back()) + "\n";
        }
        break;
    }
  }
  return out;
}

}  // namespace bulwark::metrics
