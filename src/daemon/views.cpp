#include "portsentry/daemon/views.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <sstream>

#include "portsentry/config/keys.hpp"

namespace portsentry::daemon {

namespace {
const char* plural(size_t n) { return n == 1 ? "" : "s"; }
}  // namespace

ControlReply render_list(const BanStore& store, bool json, int64_t now, const BanStore* fleet) {
    // Fleet entries (origin "fleet") keep the decision's origin and scenario
    // in last_proto / last_type (daemon/fleet.cpp).
    if (json) {
        nlohmann::ordered_json a = nlohmann::ordered_json::array();
        for (const auto& [p, r] : store.records()) {
            if (!r.active(now)) continue;
            a.push_back({{"prefix", p.to_string()}, {"origin", r.origin}, {"first_seen", r.first_seen},
                         {"last_seen", r.last_seen}, {"expires", r.expires}, {"count", r.count},
                         {"last_port", r.last_port}, {"last_proto", r.last_proto}});
        }
        if (fleet)
            for (const auto& [p, r] : fleet->records()) {
                if (!r.active(now)) continue;
                a.push_back({{"prefix", p.to_string()}, {"origin", "fleet"}, {"first_seen", r.first_seen},
                         {"last_seen", r.last_seen}, {"expires", r.expires}, {"decision_origin", r.last_proto},
                         {"scenario", r.last_type}});
            }
        // Origins and scan names are free text from the state file.
        return {0, a.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n"};
    }
    std::string s = fmt::format("{:<40} {:<9} {:>5} {:<25} {}\n", "PREFIX", "ORIGIN", "COUNT", "EXPIRES", "LAST");
    for (const auto& [p, r] : store.records()) {
        if (!r.active(now)) continue;
        s += fmt::format("{:<40} {:<9} {:>5} {:<25} {}\n", p.to_string(), r.origin, r.count, format_epoch(r.expires),
                         r.last_port ? fmt::format("{}/{} {}", r.last_proto, r.last_port, r.last_type) : "-");
    }
    if (fleet)
        for (const auto& [p, r] : fleet->records()) {
            if (!r.active(now)) continue;
            s += fmt::format("{:<40} {:<9} {:>5} {:<25} crowdsec {} {}\n", p.to_string(), "fleet", "-",
                             format_epoch(r.expires), r.last_proto, r.last_type);
        }
    return {0, s};
}

namespace {

std::string why_banned(const std::string& arg, const BanStore& store, const BanRecord* h, int64_t now) {
    if (const auto* r = store.covering(*net::IpAddr::parse(arg), now)) {
        std::string s = fmt::format("{}: banned as {} by {} since {} until {} ({} time{})\n", arg, r->prefix.to_string(),
                                    r->origin, format_epoch(r->first_seen), format_epoch(r->expires), r->count,
                                    plural(r->count));
        if (r->last_port)
            s += fmt::format("{}: banned for {} port {} ({}) at {}\n", arg, r->last_proto, r->last_port, r->last_type,
                             format_epoch(r->last_seen));
        return s;
    }
    std::string s = fmt::format("{}: not banned\n", arg);
    if (h && h->count > 0)
        s += fmt::format("{}: banned {} time{} before; the last ban ({}) ended {}{}\n", arg, h->count, plural(h->count),
                         h->origin, format_epoch(h->expires),
                         h->ended.empty()         ? std::string()
                         : h->ended == "evicted" ? std::string(" (evicted: the ban set was full)")
                                                 : " (superseded by " + h->ended + ")");
    return s;
}

}  // namespace

ControlReply render_why(const BanStore& store, const WhyContext& ctx, const std::string& arg, int64_t now) {
    auto a = net::IpAddr::parse(arg);
    if (!a) return {1, fmt::format("error: '{}' is not an IPv4/IPv6 address\n", arg)};
    std::string s;
    bool is_protected = true;
    if (auto m = ctx.ignore.match(*a))
        s += fmt::format("{}: protected: ignore list ({})\n", arg, m->to_string());
    else if (auto why = ctx.protection ? ctx.protection->match(*a) : std::nullopt)
        s += fmt::format("{}: protected: {}\n", arg, engine::to_string(*why));
    else {
        s += fmt::format("{}: not protected\n", arg);
        is_protected = false;
    }
    const BanRecord* h = store.find(net::Cidr::host(*a));  // the host's own record, active or history
    s += why_banned(arg, store, h, now);
    if (is_protected) return {0, s};  // never banned by a detection: no escalation to tell
    // Escalation: what the next detection of this address would cost it.
    const auto next = ctx.policy.duration((h ? h->count : 0) + 1);
    const std::string len = next.count() == 0 ? std::string("permanently") : fmt::format("for {}s", next.count());
    if (h && h->active(now))
        s += fmt::format("{}: if it offends again after this ban, it is banned {}\n", arg, len);
    else
        s += fmt::format("{}: a new detection would ban it {}\n", arg, len);
    return {0, s};
}

std::string render_unban(const BanStore& store, const net::Cidr& c, const std::vector<net::Cidr>& lifted,
                         int64_t now) {
    std::string s;
    if (lifted.empty()) {
        s = fmt::format("unbanned {} (it was not in the ban table)\n", c.to_string());
    } else {
        s = fmt::format("unbanned {}: {} ban{} lifted:", c.to_string(), lifted.size(), plural(lifted.size()));
        constexpr size_t kShown = 16;  // an unban of a /8 can lift thousands
        for (size_t i = 0; i < lifted.size() && i < kShown; ++i) s += " " + lifted[i].to_string();
        if (lifted.size() > kShown) s += fmt::format(" ... and {} more", lifted.size() - kShown);
        s += "\n";
    }
    // A wider ban still covers it (the /64 an IPv6 host was folded into).
    if (const BanRecord* r = store.covering(c.addr, now); r && r->prefix.prefix < c.prefix)
        s += fmt::format("note: {} is still banned as {}; unban that prefix to lift it\n", c.to_string(),
                         r->prefix.to_string());
    return s;
}

ControlReply dispatch_command(const std::string& line, CommandHandler& h) {
    std::istringstream in(line);
    std::vector<std::string> w;
    for (std::string s; in >> s;) w.push_back(s);
    const bool json = w.size() == 2 && w[1] == "--json";
    if (w.empty()) return {1, "error: empty command\n"};
    if (w[0] == "status" && (w.size() == 1 || json)) return h.status(json);
    if (w[0] == "list" && (w.size() == 1 || json)) return h.list(json);
    if (w[0] == "why" && w.size() == 2) return h.why(w[1]);
    if (w[0] == "reload" && w.size() == 1) return h.reload();
    if ((w[0] == "ban" || w[0] == "unban") && w.size() >= 2) {
        auto c = net::Cidr::parse(w[1]);
        if (!c) return {1, fmt::format("error: '{}' is not an IPv4/IPv6 address or CIDR\n", w[1])};
        if (w[0] == "unban") {
            if (w.size() != 2) return {1, "error: usage: unban ADDR|CIDR\n"};
            return h.unban(*c);
        }
        std::optional<std::chrono::seconds> t;
        std::string origin = "admin";
        for (size_t i = 2; i < w.size(); i += 2) {
            if (i + 1 >= w.size()) return {1, fmt::format("error: {} needs a value\n", w[i])};
            if (w[i] == "--time") {
                t = config::parse_duration(w[i + 1]);
                if (!t) return {1, fmt::format("error: --time: expected a duration like 30s, 10m, 1h30m, 2d or 0, "
                                               "got '{}'\n", w[i + 1])};
            } else if (w[i] == "--origin") {
                origin = w[i + 1];
            } else {
                return {1, fmt::format("error: ban: unknown option '{}'\n", w[i])};
            }
        }
        return h.ban(*c, t, origin);
    }
    return {1, "error: unknown command '" + line +
                   "' (status [--json], list [--json], why ADDR, ban ADDR [--time DUR], unban ADDR, reload)\n"};
}

}  // namespace portsentry::daemon
