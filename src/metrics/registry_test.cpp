#include "metrics/registry.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace bulwark::metrics {
namespace {

TEST(CounterTest, IncrementsAndIgnoresNegatives) {
  Counter c;
  EXPECT_EQ(c.Value(), 0);
  c.Inc();
  c.Inc(2.5);
  EXPECT_EQ(c.Value(), 3.5);
  c.Inc(-1);
  c.Inc(std::numeric_limits<double>::quiet_NaN());
  EXPECT_EQ(c.Value(), 3.5);
}

TEST(GaugeTest, SetAndAdd) {
  Gauge g;
  g.Set(5);
  g.Add(-2);
  g.Add(0.5);
  EXPECT_EQ(g.Value(), 3.5);
  g.Set(-1);
  EXPECT_EQ(g.Value(), -1);
}

TEST(HistogramTest, BucketsAreUpperBoundInclusiveAndCumulative) {
  Histogram h({1, 2, 5});
  for (double v : {0.5, 1.0, 1.5, 2.0, 3.0, 5.0, 7.0, 100.0}) h.Observe(v);
  EXPECT_EQ(h.CumulativeCounts(), (std::vector<uint64_t>{2, 4, 6, 8}));
  EXPECT_EQ(h.Count(), 8u);
  EXPECT_DOUBLE_EQ(h.Sum(), 120.0);
}

TEST(HistogramTest, EmptyBoundsHaveOnlyInf) {
  Histogram h({});
  h.Observe(3);
  EXPECT_EQ(h.CumulativeCounts(), (std::vector<uint64_t>{1}));
}

TEST(HistogramTest, ExplicitInfIsDroppedAndBadBoundsThrow) {
  Histogram h({1, std::numeric_limits<double>::infinity()});
  EXPECT_EQ(h.upper_bounds(), (std::vector<double>{1}));
  EXPECT_THROW(Histogram({2, 1}), std::invalid_argument);
  EXPECT_THROW(Histogram({1, 1}), std::invalid_argument);
  EXPECT_THROW(Histogram({std::nan("")}), std::invalid_argument);
}

TEST(HistogramTest, DefaultLatencyBucketsAreIncreasingFromHalfAMillisecondToTenSeconds) {
  const std::vector<double> b = DefaultLatencyBuckets();
  ASSERT_FALSE(b.empty());
  EXPECT_EQ(b.front(), 0.0005);
  EXPECT_EQ(b.back(), 10);
  for (std::size_t i = 1; i < b.size(); ++i) EXPECT_LT(b[i - 1], b[i]);
}

TEST(RegistryTest, SameNameAndLabelsReturnTheSameMetric) {
  Registry r;
  Counter& a = r.GetCounter("x_total", "help", {{"k", "1"}});
  Counter& b = r.GetCounter("x_total", "other help", {{"k", "1"}});
  Counter& c = r.GetCounter("x_total", "help", {{"k", "2"}});
  EXPECT_EQ(&a, &b);
  EXPECT_NE(&a, &c);
  // Label order does not make another series.
  Gauge& g1 = r.GetGauge("g", "h", {{"a", "1"}, {"b", "2"}});
  Gauge& g2 = r.GetGauge("g", "h", {{"b", "2"}, {"a", "1"}});
  EXPECT_EQ(&g1, &g2);
  Histogram& h1 = r.GetHistogram("h_seconds", "h");
  Histogram& h2 = r.GetHistogram("h_seconds", "h");
  EXPECT_EQ(&h1, &h2);
}

TEST(RegistryTest, ReferencesStayValidAsTheRegistryGrows) {
  Registry r;
  Counter& first = r.GetCounter("first_total", "h");
  first.Inc();
  for (int i = 0; i < 1000; ++i) {
    r.GetCounter("many_total", "h", {{"i", std::to_string(i)}}).Inc();
    r.GetGauge("gauge_" + std::to_string(i), "h").Set(i);
  }
  first.Inc();
  EXPECT_EQ(r.GetCounter("first_total", "h").Value(), 2);
}

TEST(RegistryTest, TypeClashThrows) {
  Registry r;
  r.GetCounter("m", "h");
  EXPECT_THROW(r.GetGauge("m", "h"), std::invalid_argument);
  EXPECT_THROW(r.GetHistogram("m", "h"), std::invalid_argument);
  r.GetGauge("g", "h");
  EXPECT_THROW(r.GetCounter("g", "h", {{"a", "b"}}), std::invalid_argument);
}

TEST(RegistryTest, InvalidNamesThrow) {
  Registry r;
  EXPECT_THROW(r.GetCounter("", "h"), std::invalid_argument);
  EXPECT_THROW(r.GetCounter("1abc", "h"), std::invalid_argument);
  EXPECT_THROW(r.GetCounter("a-b", "h"), std::invalid_argument);
  EXPECT_THROW(r.GetCounter("ok", "h", {{"bad-label", "v"}}), std::invalid_argument);
  EXPECT_THROW(r.GetCounter("ok", "h", {{"a", "1"}, {"a", "2"}}), std::invalid_argument);
  EXPECT_THROW(r.GetHistogram("hist", "h", {{"le", "1"}}), std::invalid_argument);
  EXPECT_THROW(r.GetHistogram("hist", "h", {}, {3, 2}), std::invalid_argument);
  // A failed registration leaves nothing behind.
  EXPECT_EQ(r.RenderPrometheus(), "");
}

TEST(RegistryTest, RendersTheTextExposition) {
  Registry r;
  r.GetCounter("bulwark_logins_total", "Login attempts.", {{"result", "ok"}}).Inc(3);
  r.GetCounter("bulwark_logins_total", "Login attempts.", {{"result", "failed"}}).Inc();
  r.GetGauge("bulwark_ready", "1 when ready.").Set(1);
  r.GetGauge("bulwark_temperature", "A fractional gauge.").Set(-0.25);
  Histogram& h = r.GetHistogram("bulwark_http_request_duration_seconds", "Request latency.",
                                {{"route", "/health"}}, {0.005, 0.5, 1});
  h.Observe(0.001);
  h.Observe(0.5);
  h.Observe(2);
  EXPECT_EQ(r.RenderPrometheus(),
            "# HELP bulwark_http_request_duration_seconds Request latency.\n"
            "# TYPE bulwark_http_request_duration_seconds histogram\n"
            "bulwark_http_request_duration_seconds_bucket{route=\"/health\",le=\"0.005\"} 1\n"
            "bulwark_http_request_duration_seconds_bucket{route=\"/health\",le=\"0.5\"} 2\n"
            "bulwark_http_request_duration_seconds_bucket{route=\"/health\",le=\"1\"} 2\n"
            "bulwark_http_request_duration_seconds_bucket{route=\"/health\",le=\"+Inf\"} 3\n"
            "bulwark_http_request_duration_seconds_sum{route=\"/health\"} 2.501\n"
            "bulwark_http_request_duration_seconds_count{route=\"/health\"} 3\n"
            "# HELP bulwark_logins_total Login attempts.\n"
            "# TYPE bulwark_logins_total counter\n"
            "bulwark_logins_total{result=\"failed\"} 1\n"
            "bulwark_logins_total{result=\"ok\"} 3\n"
            "# HELP bulwark_ready 1 when ready.\n"
            "# TYPE bulwark_ready gauge\n"
            "bulwark_ready 1\n"
            "# HELP bulwark_temperature A fractional gauge.\n"
            "# TYPE bulwark_temperature gauge\n"
            "bulwark_temperature -0.25\n");
}

TEST(RegistryTest, HistogramWithoutLabelsAndDefaultBuckets) {
  Registry r;
  r.GetHistogram("d_seconds", "h").Observe(0.0004);
  const std::string text = r.RenderPrometheus();
  EXPECT_NE(text.find("d_seconds_bucket{le=\"0.0005\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("d_seconds_bucket{le=\"0.0025\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("d_seconds_bucket{le=\"10\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("d_seconds_bucket{le=\"+Inf\"} 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("d_seconds_sum 0.0004\n"), std::string::npos) << text;
  EXPECT_NE(text.find("d_seconds_count 1\n"), std::string::npos) << text;
}

TEST(RegistryTest, EscapesLabelValuesAndHelp) {
  Registry r;
  r.GetCounter("e_total", "back\\slash and\nnewline \"quoted\"", {{"v", "a\\b\"c\nd"}}).Inc();
  EXPECT_EQ(r.RenderPrometheus(),
            "# HELP e_total back\\\\slash and\\nnewline \"quoted\"\n"
            "# TYPE e_total counter\n"
            "e_total{v=\"a\\\\b\\\"c\\nd\"} 1\n");
}

TEST(RegistryTest, NumberFormatting) {
  Registry r;
  r.GetGauge("big", "h").Set(1e20);
  r.GetGauge("int", "h").Set(123456789);
  r.GetGauge("nan", "h").Set(std::numeric_limits<double>::quiet_NaN());
  r.GetGauge("ninf", "h").Set(-std::numeric_limits<double>::infinity());
  r.GetGauge("small", "h").Set(1.5e-7);
  r.GetGauge("tenth", "h").Set(0.1);
  const std::string text = r.RenderPrometheus();
  EXPECT_NE(text.find("\nbig 1e+20\n"), std::string::npos) << text;
  EXPECT_NE(text.find("\nint 123456789\n"), std::string::npos) << text;
  EXPECT_NE(text.find("\nnan NaN\n"), std::string::npos) << text;
  EXPECT_NE(text.find("\nninf -Inf\n"), std::string::npos) << text;
  EXPECT_NE(text.find("\nsmall 1.5e-07\n"), std::string::npos) << text;
  EXPECT_NE(text.find("\ntenth 0.1\n"), std::string::npos) << text;
}

TEST(RegistryTest, ConcurrentIncrementsAreExact) {
  Registry r;
  constexpr int kThreads = 8;
  constexpr int kPerThread = 20000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&r, t] {
      // Half the threads look the metric up every time, half keep the reference.
      Counter& kept = r.GetCounter("c_total", "h", {{"k", "v"}});
      Histogram& h = r.GetHistogram("h_seconds", "h");
      for (int i = 0; i < kPerThread; ++i) {
        if (t % 2 == 0) {
          kept.Inc();
        } else {
          r.GetCounter("c_total", "h", {{"k", "v"}}).Inc();
        }
        h.Observe(0.001);
      }
      (void)r.RenderPrometheus();
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(r.GetCounter("c_total", "h", {{"k", "v"}}).Value(), kThreads * kPerThread);
  EXPECT_EQ(r.GetHistogram("h_seconds", "h").Count(), static_cast<uint64_t>(kThreads * kPerThread));
  EXPECT_EQ(r.GetHistogram("h_seconds", "h").CumulativeCounts().back(),
            static_cast<uint64_t>(kThreads * kPerThread));
}

}  // namespace
}  // namespace bulwark::metrics
