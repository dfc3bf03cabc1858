// The metrics endpoint: Stats snapshot → prometheus MetricFamily objects
// (types, labels, histogram buckets, escaping in the text format), and the
// HTTP side (serving, bind errors that name the address and errno).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmath>
#include <gtest/gtest.h>
#include <prometheus/text_serializer.h>
#include <thread>

#include "portsentry/base/unique_fd.hpp"
#include "portsentry/config/keys.hpp"
#include "portsentry/daemon/metrics_http.hpp"
#include "portsentry/daemon/stats.hpp"

using namespace portsentry;
using daemon::Stats;

namespace {

bool has(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

std::string text_of(const Stats& st) {
    return prometheus::TextSerializer().Serialize(daemon::to_families(st.snapshot()));
}

config::ListenAddress loopback(uint16_t port) { return {*net::IpAddr::parse("127.0.0.1"), port}; }

// One HTTP/1.0 GET on 127.0.0.1:port; the whole answer, headers included.
std::string http_get(uint16_t port, const std::string& path) {
    base::UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) < 0) return "connect failed";
    const std::string req = "GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    if (::write(fd.get(), req.data(), req.size()) != static_cast<ssize_t>(req.size())) return "write failed";
    std::string out;
    char buf[4096];
    ssize_t n;
    while ((n = ::read(fd.get(), buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
    return out;
}

}  // namespace

TEST(MetricFamilies, CountersGaugesAndLabelsKeepTheirTypeAndOrder) {
    Stats st;
    base::Counter detector, admin, probes;
    base::Gauge level;
    st.add("portsentry_bans_total", {{"origin", "detector"}}, "bans added", detector);
    st.add("portsentry_level", {}, "a level", level);
    st.add("portsentry_probes_total", {{"proto", "tcp"}, {"type", "syn"}}, "probes", probes);
    // The same name registered again later joins its family.
    st.add("portsentry_bans_total", {{"origin", "admin"}}, "bans added", admin);
    detector += 5;
    admin += 2;
    probes += 7;
    level.set(1.5);
    const auto f = daemon::to_families(st.snapshot());
    ASSERT_EQ(f.size(), 3u);
    EXPECT_EQ(f[0].name, "portsentry_bans_total");
    EXPECT_EQ(f[0].help, "bans added");
    EXPECT_EQ(f[0].type, prometheus::MetricType::Counter);
    ASSERT_EQ(f[0].metric.size(), 2u);
    ASSERT_EQ(f[0].metric[0].label.size(), 1u);
    EXPECT_EQ(f[0].metric[0].label[0].name, "origin");
    EXPECT_EQ(f[0].metric[0].label[0].value, "detector");
    EXPECT_EQ(f[0].metric[0].counter.value, 5);
    EXPECT_EQ(f[0].metric[1].label[0].value, "admin");
    EXPECT_EQ(f[0].metric[1].counter.value, 2);
    EXPECT_EQ(f[1].type, prometheus::MetricType::Gauge);
    EXPECT_TRUE(f[1].metric[0].label.empty());
    EXPECT_EQ(f[1].metric[0].gauge.value, 1.5);
    ASSERT_EQ(f[2].metric[0].label.size(), 2u);
    EXPECT_EQ(f[2].metric[0].label[0].name, "proto");
    EXPECT_EQ(f[2].metric[0].label[1].name, "type");

    const std::string text = text_of(st);
    EXPECT_TRUE(has(text, "# HELP portsentry_bans_total bans added\n")) << text;
    EXPECT_TRUE(has(text, "# TYPE portsentry_bans_total counter\n")) << text;
    EXPECT_TRUE(has(text, "portsentry_bans_total{origin=\"detector\"} 5\n")) << text;
    EXPECT_TRUE(has(text, "portsentry_bans_total{origin=\"admin\"} 2\n")) << text;
    EXPECT_TRUE(has(text, "# TYPE portsentry_level gauge\nportsentry_level 1.5\n")) << text;
    EXPECT_TRUE(has(text, "portsentry_probes_total{proto=\"tcp\",type=\"syn\"} 7\n")) << text;
    EXPECT_EQ(std::count(text.begin(), text.end(), '#'), 6) << "one HELP and one TYPE per family:\n" << text;
}

TEST(MetricFamilies, HistogramBucketsAreCumulativeWithInf) {
    Stats st;
    base::Histogram h({0.001, 0.01, 0.1});
    st.add("portsentry_probe_to_ban_seconds", {}, "probe to ban", h);
    h.observe(0.0005);  // <= 0.001
    h.observe(0.005);   // <= 0.01
    h.observe(0.5);     // +Inf only
    const auto f = daemon::to_families(st.snapshot());
    ASSERT_EQ(f.size(), 1u);
    EXPECT_EQ(f[0].type, prometheus::MetricType::Histogram);
    const auto& m = f[0].metric.at(0).histogram;
    EXPECT_EQ(m.sample_count, 3u);
    EXPECT_DOUBLE_EQ(m.sample_sum, 0.5055);
    ASSERT_EQ(m.bucket.size(), 4u);
    EXPECT_EQ(m.bucket[0].upper_bound, 0.001);
    EXPECT_EQ(m.bucket[0].cumulative_count, 1u);
    EXPECT_EQ(m.bucket[1].cumulative_count, 2u);
    EXPECT_EQ(m.bucket[2].cumulative_count, 2u);
    EXPECT_TRUE(std::isinf(m.bucket[3].upper_bound));
    EXPECT_EQ(m.bucket[3].cumulative_count, 3u);

    const std::string text = text_of(st);
    EXPECT_TRUE(has(text, "# TYPE portsentry_probe_to_ban_seconds histogram\n")) << text;
    EXPECT_TRUE(has(text, "portsentry_probe_to_ban_seconds_count 3\n")) << text;
    EXPECT_TRUE(has(text, "portsentry_probe_to_ban_seconds_sum 0.505")) << text;
    EXPECT_TRUE(has(text, "portsentry_probe_to_ban_seconds_bucket{le=\"0.001\"} 1\n")) << text;
    EXPECT_TRUE(has(text, "portsentry_probe_to_ban_seconds_bucket{le=\"0.1\"} 2\n")) << text;
    EXPECT_TRUE(has(text, "portsentry_probe_to_ban_seconds_bucket{le=\"+Inf\"} 3\n")) << text;
}

TEST(MetricFamilies, LabelValuesAndHelpAreEscaped) {
    // Label values may one day carry words from outside (an --origin, a
    // decision's scenario): quotes, backslashes and newlines must not break
    // the exposition format.
    Stats st;
    base::Counter c;
    st.add("portsentry_x_total", {{"who", "a\"b\\c\nd"}}, "help with \\ and\nnewline", c);
    const std::string text = text_of(st);
    EXPECT_TRUE(has(text, "portsentry_x_total{who=\"a\\\"b\\\\c\\nd\"} 0\n")) << text;
    EXPECT_TRUE(has(text, "# HELP portsentry_x_total help with \\\\ and\\nnewline\n")) << text;
}

TEST(MetricFamilies, EmptyTableIsEmpty) {
    Stats st;
    EXPECT_TRUE(daemon::to_families(st.snapshot()).empty());
}

TEST(MetricsEndpoint, ServesTheTableAtSlashMetrics) {
    Stats st;
    base::Counter c;
    st.add("portsentry_bans_total", {{"origin", "detector"}}, "bans added", c);
    daemon::MetricsEndpoint ep(loopback(0), st);
    ASSERT_NE(ep.port(), 0);
    c += 3;
    const std::string r = http_get(ep.port(), "/metrics");
    EXPECT_TRUE(has(r, "200 OK")) << r;
    EXPECT_TRUE(has(r, "text/plain")) << r;
    EXPECT_TRUE(has(r, "portsentry_bans_total{origin=\"detector\"} 3\n")) << r;
    // A table replaced under a scraper (reload): the next scrape sees the new one.
    Stats fresh;
    base::Gauge g;
    fresh.add("portsentry_new", {}, "new", g);
    st.adopt(std::move(fresh));
    const std::string r2 = http_get(ep.port(), "/metrics");
    EXPECT_TRUE(has(r2, "portsentry_new 0\n")) << r2;
    EXPECT_FALSE(has(r2, "portsentry_bans_total")) << r2;
    EXPECT_FALSE(has(http_get(ep.port(), "/other"), "portsentry_new"));
}

TEST(MetricsEndpoint, ScrapesDoNotRaceTheWriter) {
    Stats st;
    base::Counter c;
    base::Histogram h({1, 2});
    st.add("portsentry_c_total", {}, "c", c);
    st.add("portsentry_h_seconds", {}, "h", h);
    daemon::MetricsEndpoint ep(loopback(0), st);
    std::atomic<bool> stop{false};
    std::thread writer([&] {
        while (!stop) {
            c.inc();
            h.observe(1.5);
        }
    });
    for (int i = 0; i < 50; ++i) ASSERT_TRUE(has(http_get(ep.port(), "/metrics"), "portsentry_h_seconds_count ")) << i;
    stop = true;
    writer.join();
}

TEST(MetricsEndpoint, AnAddressInUseIsNamedWithItsErrno) {
    base::UniqueFd taken(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::bind(taken.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    ASSERT_EQ(::listen(taken.get(), 1), 0);
    socklen_t len = sizeof a;
    ASSERT_EQ(::getsockname(taken.get(), reinterpret_cast<sockaddr*>(&a), &len), 0);
    const uint16_t port = ntohs(a.sin_port);
    Stats st;
    try {
        daemon::MetricsEndpoint ep(loopback(port), st);
        FAIL() << "bound a port in use";
    } catch (const std::system_error& e) {
        EXPECT_EQ(std::string(e.what()),
                  "metrics.listen 127.0.0.1:" + std::to_string(port) + ": cannot bind: Address already in use");
        EXPECT_EQ(e.code().value(), EADDRINUSE);
    }
}

TEST(MetricsEndpoint, AnAddressNotOnThisHostIsNamedWithItsErrno) {
    Stats st;
    // 192.0.2.1 (TEST-NET-1) is on no interface here.
    try {
        daemon::MetricsEndpoint ep({*net::IpAddr::parse("192.0.2.1"), 9470}, st);
        FAIL() << "bound an address this host does not have";
    } catch (const std::system_error& e) {
        EXPECT_EQ(std::string(e.what()), "metrics.listen 192.0.2.1:9470: cannot bind: Cannot assign requested address");
    }
}

TEST(MetricsEndpoint, IPv6WithoutCivetwebSupportIsASayingError) {
    Stats st;
    if (daemon::MetricsEndpoint::ipv6_supported()) {
        daemon::MetricsEndpoint ep({*net::IpAddr::parse("::1"), 0}, st);
        EXPECT_NE(ep.port(), 0);
        return;
    }
    try {
        daemon::MetricsEndpoint ep({*net::IpAddr::parse("::1"), 9470}, st);
        FAIL() << "served IPv6 with a civetweb built without it";
    } catch (const std::runtime_error& e) {
        EXPECT_EQ(std::string(e.what()),
                  "metrics.listen [::1]:9470: this system's civetweb (the HTTP server of prometheus-cpp) is built "
                  "without IPv6: use an IPv4 address, e.g. 127.0.0.1:9470");
    }
}
