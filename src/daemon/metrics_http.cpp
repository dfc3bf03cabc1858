#include "portsentry/daemon/metrics_http.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <limits>
#include <map>

#include <fmt/format.h>
#include <civetweb.h>
#include <prometheus/collectable.h>
#include <prometheus/exposer.h>

#include "portsentry/base/error.hpp"
#include "portsentry/base/unique_fd.hpp"

namespace portsentry::daemon {

namespace {

prometheus::MetricType type_of(MetricType t) {
    switch (t) {
        case MetricType::counter: return prometheus::MetricType::Counter;
        case MetricType::gauge: return prometheus::MetricType::Gauge;
        case MetricType::histogram: return prometheus::MetricType::Histogram;
    }
    return prometheus::MetricType::Untyped;
}

prometheus::ClientMetric series(const Sample& s) {
    prometheus::ClientMetric m;
    for (const auto& [k, v] : s.labels) m.label.push_back({k, v});
    switch (s.type) {
        case MetricType::counter: m.counter.value = s.value; break;
        case MetricType::gauge: m.gauge.value = s.value; break;
        case MetricType::histogram:
            m.histogram.sample_count = s.count;
            m.histogram.sample_sum = s.sum;
            for (const auto& [le, n] : s.buckets) m.histogram.bucket.push_back({n, le});
            m.histogram.bucket.push_back({s.count, std::numeric_limits<double>::infinity()});
            break;
    }
    return m;
}

// The text format's HELP escaping (backslash, newline). prometheus-cpp 1.0.1
// (Debian 12) escapes label values but writes HELP verbatim, so a newline in
// a help text would end the line and corrupt the exposition.
std::string escape_help(const std::string& h) {
    std::string out;
    for (char c : h) {
        if (c == '\\') out += "\\\\";
        else if (c == '\n') out += "\\n";
        else out += c;
    }
    return out;
}

class StatsCollectable final : public prometheus::Collectable {
public:
    explicit StatsCollectable(const Stats& stats) : stats_(stats) {}
    // On a civetweb worker: snapshot() only reads atomics, under the table's
    // mutex (stats.hpp), so it is safe beside the loop thread.
    std::vector<prometheus::MetricFamily> Collect() const override { return to_families(stats_.snapshot()); }

private:
    const Stats& stats_;
};

// civetweb says only "null context when constructing CivetServer" when it
// cannot bind. A socket of our own, bound the way civetweb binds
// (SO_REUSEADDR; IPV6_V6ONLY for an IPv6 address) and closed at once, gets
// the admin the errno that says why.
void probe_bind(const config::ListenAddress& at, const std::string& name) {
    sockaddr_storage ss{};
    socklen_t len = 0;
    if (at.addr.is_v6()) {
        auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
        a->sin6_family = AF_INET6;
        a->sin6_port = htons(at.port);
        std::memcpy(&a->sin6_addr, at.addr.bytes.data(), 16);
        len = sizeof *a;
    } else {
        auto* a = reinterpret_cast<sockaddr_in*>(&ss);
        a->sin_family = AF_INET;
        a->sin_port = htons(at.port);
        std::memcpy(&a->sin_addr, at.addr.bytes.data(), 4);
        len = sizeof *a;
    }
    base::UniqueFd fd(::socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd) throw base::sys_error(fmt::format("metrics.listen {}: cannot create a socket", name));
    const int on = 1;
    ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    if (at.addr.is_v6()) ::setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof on);
    if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&ss), len) < 0)
        throw base::sys_error(fmt::format("metrics.listen {}: cannot bind", name));
}

}  // namespace

std::vector<prometheus::MetricFamily> to_families(const std::vector<Sample>& snap) {
    std::vector<prometheus::MetricFamily> out;
    std::map<std::string, size_t> at;  // name → index in out
    for (const auto& s : snap) {
        auto [it, fresh] = at.try_emplace(s.name, out.size());
        if (fresh) {
            prometheus::MetricFamily f;
            f.name = s.name;
            f.help = escape_help(s.help);
            f.type = type_of(s.type);
            out.push_back(std::move(f));
        }
        out[it->second].metric.push_back(series(s));
    }
    return out;
}

bool MetricsEndpoint::ipv6_supported() {
    // civetweb's feature bit 8 is USE_IPV6. Debian 12's libcivetweb1 is built
    // without it, so there the exposer cannot listen on an IPv6 address.
    return mg_check_feature(8) != 0;
}

MetricsEndpoint::MetricsEndpoint(const config::ListenAddress& at, const Stats& stats)
    : address_(at.to_string()), collectable_(std::make_shared<StatsCollectable>(stats)) {
    if (at.addr.is_v6() && !ipv6_supported())
        throw std::runtime_error(fmt::format("metrics.listen {}: this system's civetweb (the HTTP server of "
                                             "prometheus-cpp) is built without IPv6: use an IPv4 address, e.g. "
                                             "127.0.0.1:{}",
                                             address_, at.port));
    probe_bind(at, address_);
    try {
        // Civetweb's own spelling of the address is ours ("[::1]:9470").
        exposer_ = std::make_unique<prometheus::Exposer>(
            std::vector<std::string>{"listening_ports", address_, "num_threads", std::to_string(kHttpThreads)});
    } catch (const std::exception& e) {
        throw std::runtime_error(fmt::format("metrics.listen {}: cannot serve: {}", address_, e.what()));
    }
    exposer_->RegisterCollectable(collectable_);
}

MetricsEndpoint::~MetricsEndpoint() = default;  // the Exposer joins its threads

uint16_t MetricsEndpoint::port() const {
    const auto ports = exposer_->GetListeningPorts();
    return ports.empty() ? 0 : static_cast<uint16_t>(ports.front());
}

}  // namespace portsentry::daemon

namespace portsentry::daemon {

void rebind_metrics(std::unique_ptr<MetricsEndpoint>& endpoint, std::string& listen, const std::string& old_listen,
                    const Stats& stats, const std::function<void(const std::string&)>& log) {
    endpoint.reset();
    if (listen.empty()) {
        log(fmt::format("portsentry-nfq: reload: metrics endpoint {} closed", old_listen));
        return;
    }
    try {
        endpoint = std::make_unique<MetricsEndpoint>(*config::parse_listen(listen, nullptr), stats);
        log(fmt::format("portsentry-nfq: reload: serving metrics at http://{}/metrics", endpoint->address()));
        return;
    } catch (const std::exception& e) {
        log(fmt::format("portsentry-nfq: reload: {}: {}", e.what(),
                        old_listen.empty() ? "metrics stay off" : "still serving " + old_listen));
    }
    listen = old_listen;
    if (old_listen.empty()) return;
    try {
        endpoint = std::make_unique<MetricsEndpoint>(*config::parse_listen(old_listen, nullptr), stats);
    } catch (const std::exception& e) {
        log(fmt::format("portsentry-nfq: reload: {}: metrics endpoint off", e.what()));
    }
}

}  // namespace portsentry::daemon
