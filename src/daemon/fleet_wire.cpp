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
    const std::string value = range ? a.prefix.to_string() : a.prefix.addr.to_string();
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

std::vector<FleetDecision> fleet_wire::decisions_of(const json& list) {
    std::vector<FleetDecision> out;
    if (!list.is_array()) return out;  // the LAPI sends null for an empty list
    out.reserve(list.size());
    for (const auto& e : list) {
        if (!e.is_object()) continue;
        FleetDecision d;
        auto str = [&](const char* k) { return e.contains(k) && e[k].is_string() ? e[k].get<std::string>() : ""; };
        d.value = str("value");
        d.scope = str("scope");
        d.type = str("type");
        d.origin = str("origin");
        d.scenario = str("scenario");
        d.seconds = parse_go_duration(str("duration")).value_or(0);
        if (e.contains("id") && e["id"].is_number_integer()) d.id = e["id"].get<int64_t>();
        out.push_back(std::move(d));
    }
    return out;
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
