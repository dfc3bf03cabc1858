// The metrics endpoint: the Stats table served as Prometheus text at
// http://LISTEN/metrics (metrics.listen). prometheus-cpp's Exposer runs its
// own civetweb threads (one listener, kHttpThreads workers): a scrape takes
// Stats::snapshot() on one of them, so the loop thread never waits for a
// scraper, however slow or frequent. What is served is exactly the table
// `status --json` shows: names, labels, types and help come from
// register_metrics(), nothing is registered here.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <prometheus/metric_family.h>

#include "portsentry/config/keys.hpp"
#include "portsentry/daemon/stats.hpp"

namespace prometheus {
class Exposer;
class Collectable;
}  // namespace prometheus

namespace portsentry::daemon {

// One MetricFamily per name, in the table's order; samples of one name
// become its series. Histograms get the +Inf bucket (= count) that the text
// format requires and our cells leave implicit.
std::vector<prometheus::MetricFamily> to_families(const std::vector<Sample>& snap);

class MetricsEndpoint {
public:
    // Binds `at` and starts serving `stats` (which must outlive this).
    // Throws std::system_error "metrics.listen ADDR: cannot bind: ERRNO TEXT"
    // (address in use, address not on this host, ...), or std::runtime_error
    // naming ADDR (IPv6 without civetweb support, civetweb's own refusal).
    MetricsEndpoint(const config::ListenAddress& at, const Stats& stats);
    ~MetricsEndpoint();
    MetricsEndpoint(const MetricsEndpoint&) = delete;
    MetricsEndpoint& operator=(const MetricsEndpoint&) = delete;

    const std::string& address() const { return address_; }  // "127.0.0.1:9470"
    uint16_t port() const;  // the bound port (port 0 asks the kernel for one: tests)

    // Whether the exposer can listen on IPv6 (civetweb built with USE_IPV6;
    // Debian 12's is not: an IPv6 metrics.listen then fails to start).
    static bool ipv6_supported();

    // Scrapes are served by these worker threads (plus civetweb's listener).
    static constexpr int kHttpThreads = 2;

private:
    std::string address_;
    std::shared_ptr<prometheus::Collectable> collectable_;
    std::unique_ptr<prometheus::Exposer> exposer_;
};

// SIGHUP changed metrics.listen from `old_listen` to `listen`: the old
// address is released first (the new one may be the same port on another
// address), then the new one bound. If that fails the old one is bound again
// and `listen` set back to it, so the next SIGHUP tries again; the daemon
// goes on either way. Each outcome is one line through `log`.
void rebind_metrics(std::unique_ptr<MetricsEndpoint>& endpoint, std::string& listen, const std::string& old_listen,
                    const Stats& stats, const std::function<void(const std::string&)>& log);

}  // namespace portsentry::daemon
