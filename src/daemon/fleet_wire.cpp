#include "portsentry/daemon/fleet_wire.hpp"

#include <ctime>
#include <fmt/format.h>

namespace portsentry::daemon {

using json = nlohmann::json;

std::optional<int64_t> parse_go_duration(std::string_view s) {
    bool neg = false;
    if (!s.empty() && (s[0] == '-' || s[0] == '+')) {
        neg = s[0] == '-';
        s.remove_prefix(1);
    }
    if (s.empty()) return std::nullopt;
    if (s == "0") return 0;
    double total = 0;  // seconds
    while (!s.empty()) {
        size_t i = 0;
        double v = 0, frac = 0, scale = 1;
        bool digits = false;
        for (; i < s.size() && s[i] >= '0' && s[i] <= '9'; ++i, digits = true) v = v * 10 + (s[i] - '0');
        if (i < s.size() && s[i] == '.')
            for (++i; i < s.size() && s[i] >= '0' && s[i] <= '9'; ++i, digits = true)
                frac += (s[i] - '0') * (scale /= 10);
        if (!digits) return std::nullopt;
        s.remove_prefix(i);
        double unit = 0;
        for (auto [u, secs] : {std::pair{"ns", 1e-9}, {"us", 1e-6}, {"\xc2\xb5s", 1e-6}, {"ms", 1e-3}, {"h", 3600.0},
                               {"m", 60.0}, {"s", 1.0}}) {
            if (s.starts_with(u)) {
                unit = secs;
                s.remove_prefix(std::string_view(u).size());
                break;
            }
        }
        if (unit == 0) return std::nullopt;
        total += (v + frac) * unit;
    }
    const auto whole = static_cast<int64_t>(total);
    return neg ? -whole : whole;
}

std::string go_duration(int64_t seconds) { return fmt::format("{}s", seconds); }


json fleet_wire::alert_json(const FleetAlert& a, int64_t now) {
    const bool range = a.prefix.prefix != a.prefix.addr.bits();
    const std::string value = a.prefix.to_string();  // a host's is the bare address
    const std::string scope = range ? "Range" : "Ip";
    char when[32];
    const std::time_t t = static_cast<std::time_t>(now);
    std::tm tm{};
    ::gmtime_r(&t, &tm);
    std::strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    json source = {{"scope", scope}, {"value", value}};
    if (!range) source["ip"] = value;
    else source["range"] = value;
    const std::string msg = fmt::format("portsentry-nfq: {} scan from {} ({} port {})", a.scan, value, a.proto, a.port);
    return {{"scenario", "portsentry/portscan"},
            {"scenario_hash", ""},
            {"scenario_version", "1"},
            {"message", msg},
            {"events_count", 1},
            {"start_at", when},
            {"stop_at", when},
            {"capacity", 0},
            {"leakspeed", "0"},
            {"simulated", false},
            {"remediation", true},
            {"events", json::array()},
            {"source", source},
            {"decisions",
             json::array({{{"origin", "portsentry"},
                           {"type", "ban"},
                           {"scope", scope},
                           {"value", value},
                           {"duration", go_duration(std::max<int64_t>(1, a.until - now))},
                           {"scenario", "portsentry/portscan"},
                           {"simulated", false}}})}};
}

std::string fleet_wire::queue_line(const FleetAlert& a) {
    return json{{"prefix", a.prefix.to_string()}, {"at", a.at},   {"until", a.until},
            {"scan", a.scan},                 {"proto", a.proto}, {"port", a.port}}.dump();
}

namespace {

// The stream's answer read straight into decisions (SAX): a resync can be
// 100,000 entries, and a DOM of them costs several times the parse.
class StreamReader final : public nlohmann::json_sax<json> {
public:
    StreamReader(std::vector<FleetDecision>& added, std::vector<FleetDecision>& deleted)
        : added_(added), deleted_(deleted) {}

    bool null() override { return true; }
    bool boolean(bool) override { return true; }
    bool number_integer(number_integer_t v) override { return number(static_cast<int64_t>(v)); }
    bool number_unsigned(number_unsigned_t v) override { return number(static_cast<int64_t>(v)); }
    bool number_float(number_float_t, const string_t&) override { return true; }
    bool binary(binary_t&) override { return true; }
    bool string(string_t& v) override {
        if (depth_ != 3 || !list_) return true;
        if (key_ == "value") d_.value = std::move(v);
        else if (key_ == "scope") d_.scope = std::move(v);
        else if (key_ == "type") d_.type = std::move(v);
        else if (key_ == "origin") d_.origin = std::move(v);
        else if (key_ == "scenario") d_.scenario = std::move(v);
        else if (key_ == "duration") d_.seconds = parse_go_duration(v).value_or(0);
        return true;
    }
    bool start_object(std::size_t) override {
        if (++depth_ == 3) d_ = {};
        return depth_ != 1 || !root_seen_++;
    }
    bool end_object() override {
        if (depth_-- == 3 && list_) list_->push_back(std::move(d_));
        return true;
    }
    bool start_array(std::size_t n) override {
        if (++depth_ == 2 && list_ && n != std::size_t(-1)) list_->reserve(n);
        return depth_ != 1;  // the answer is an object
    }
    bool end_array() override {
        --depth_;
        return true;
    }
    bool key(string_t& k) override {
        if (depth_ == 1) list_ = k == "new" ? &added_ : k == "deleted" ? &deleted_ : nullptr;
        else if (depth_ == 3) key_ = std::move(k);
        return true;
    }
    bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override { return false; }

private:
    bool number(int64_t v) {
        if (depth_ == 3 && list_ && key_ == "id") d_.id = v;
        return true;
    }
    std::vector<FleetDecision>& added_;
    std::vector<FleetDecision>& deleted_;
    std::vector<FleetDecision>* list_ = nullptr;
    int depth_ = 0;
    int root_seen_ = 0;
    std::string key_;
    FleetDecision d_;
};

}  // namespace

bool fleet_wire::parse_stream(std::string_view body, std::vector<FleetDecision>& added,
                              std::vector<FleetDecision>& deleted) {
    StreamReader r(added, deleted);
    return json::sax_parse(body.begin(), body.end(), &r);
}

std::optional<net::Cidr> fleet_wire::prefix_of(const FleetDecision& d) {
    if (d.scope == "Ip" || d.scope == "ip") {
        auto a = net::IpAddr::parse(d.value);
        if (!a) return std::nullopt;
        return net::Cidr::host(a->unmapped());
    }
    if (d.scope == "Range" || d.scope == "range") return net::Cidr::parse(d.value);
    return std::nullopt;
}

std::string fleet_wire::alerts_filter(const net::Cidr& c) {
    return (c.prefix == c.addr.bits() ? "ip=" : "range=") + c.to_string();
}

std::optional<FleetAlert> fleet_wire::queue_entry(const std::string& line) {
    auto j = json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return std::nullopt;
    auto p = net::Cidr::parse(j.value("prefix", ""));
    if (!p) return std::nullopt;
    return FleetAlert{*p, j.value("at", int64_t{0}), j.value("until", int64_t{0}), j.value("scan", ""),
                      j.value("proto", ""), j.value("port", uint16_t{0})};
}

}  // namespace portsentry::daemon
