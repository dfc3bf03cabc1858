#include "portsentry/daemon/probe_path.hpp"

#include <fmt/format.h>
#include <map>

#include "portsentry/actions/messages.hpp"

namespace portsentry::daemon {

using Outcome = engine::Decision::Outcome;

void JsonEvents::open(const std::string& path) {
    if (path.empty()) {
        file_.reset();
        return;
    }
    if (file_ && file_->path() == path) {
        if (auto err = file_->reopen(); !err.empty())
            log_.write(fmt::format("portsentry-nfq: json_log {}: {}", path, err));
        return;
    }
    file_ = std::make_unique<actions::EventLog>(
        path, [this](const std::string& e) { log_.write("portsentry-nfq: cannot write json_log " + e); });
}

ProbePath::ProbePath(engine::Engine& engine, BanManager& bans, actions::Log& log, JsonEvents& events,
                     const config::Config& cfg, Clock clock)
    : engine_(engine), bans_(bans), log_(log), events_(events), cfg_(&cfg), clock_(std::move(clock)) {}

ProbePath::ProbeLabels ProbePath::probe_labels(engine::ScanType t) {
    using T = engine::ScanType;
    switch (t) {
        case T::tcp_syn: return {"tcp", "syn"};
        case T::tcp_fin: return {"tcp", "fin"};
        case T::tcp_null: return {"tcp", "null"};
        case T::tcp_xmas: return {"tcp", "xmas"};
        case T::tcp_ack: return {"tcp", "ack"};
        case T::tcp_maimon: return {"tcp", "maimon"};
        case T::tcp_other: return {"tcp", "other"};
        case T::udp: return {"udp", "datagram"};
        case T::tcp_connect: return {"tcp", "connect"};
        case T::udp_tripwire: return {"udp", "tripwire"};
    }
    return {"?", "?"};
}

void ProbePath::count(const engine::Decision& d) {
    if (d.outcome == Outcome::not_watched || d.outcome == Outcome::ignored) return;
    const auto i = static_cast<size_t>(d.type);
    if (i < kScanTypes) counters_.probes[i].inc();
}

void ProbePath::observe_ban(std::chrono::steady_clock::time_point received, std::chrono::steady_clock::time_point acked) {
    counters_.probe_to_ban_seconds.observe(std::chrono::duration<double>(acked - received).count());
}

kernel::PacketVerdict ProbePath::on_packet(std::span<const uint8_t> l3, const Now& now) {
    auto r = net::parse_packet(l3);
    if (!r.ok()) {
        counters_.malformed.inc();
        return kernel::PacketVerdict::accept;
    }
    auto d = engine_.on_probe(r.pkt, true, now.steady);
    count(d);
    if (d.outcome == Outcome::reported || d.outcome == Outcome::rate_limited ||
        ((d.outcome == Outcome::already_blocked || d.outcome == Outcome::protected_addr) && !d.log_suppressed))
        pending_.push_back({r.pkt, d, now.steady});
    return d.verdict == engine::Verdict::drop ? kernel::PacketVerdict::drop : kernel::PacketVerdict::accept;
}

void ProbePath::on_tripwire(const net::IpAddr& src, net::L4 proto, uint16_t port, const Now& now) {
    auto d = engine_.on_tripwire(src, proto, port, now.steady);
    count(d);
    if (d.outcome == Outcome::protected_addr && d.log_suppressed) return;
    net::Packet p;
    p.src = src;
    p.proto = proto;
    p.dport = port;
    pending_.push_back({p, d, now.steady});
    flush(now);
}

std::string ProbePath::mode_name(net::L4 proto) const {
    const auto& p = proto == net::L4::tcp ? cfg_->tcp : cfg_->udp;
    const std::string base = net::keyword(proto);
    switch (p.mode) {
        case config::Mode::stealth: return "s" + base;
        case config::Mode::advanced: return "a" + base;
        case config::Mode::classic:
        case config::Mode::off: break;
    }
    return base;
}

nlohmann::ordered_json ProbePath::probe_fields(const net::IpAddr& src, net::L4 proto, uint16_t port,
                                               const engine::Decision& d, uint8_t tcp_flags) {
    return {{"src", src.to_string()},
            {"proto", net::to_string(proto)},
            {"port", port},
            {"scan", engine::scan_name(d.type, tcp_flags)}};
}

void ProbePath::flush(const Now& now) {
    if (pending_.empty()) return;
    std::vector<BanManager::Detection> want;
    std::vector<Pending*> of;
    for (auto& p : pending_)
        if (p.d.outcome == Outcome::reported && p.d.ban && !defers_ban(p.d)) {
            want.push_back({p.pkt.src, p.d.ban_time, p.pkt.dport, net::to_string(p.pkt.proto),
                            engine::scan_name(p.d.type, p.pkt.tcp_flags), p.d.type == engine::ScanType::tcp_connect});
            of.push_back(&p);
        }
    const auto installed = bans_.ban_detected(want, now.wall);
    // ban_detected returns once the kernel acknowledged the batch.
    const auto acked = want.empty() ? now.steady : clock_();
    std::map<const Pending*, std::string> ban_error;
    std::vector<net::IpAddr> banned_v6;
    for (size_t i = 0; i < of.size(); ++i) {
        of[i]->d.ban_time = installed[i].time;
        if (!installed[i].error.empty()) ban_error[of[i]] = installed[i].error;
        else if (of[i]->pkt.src.is_v6()) banned_v6.push_back(of[i]->pkt.src);
        if (installed[i].error.empty()) observe_ban(of[i]->received, acked);
    }
    for (auto& p : pending_) {
        auto e = ban_error.find(&p);
        report(p, e == ban_error.end() ? std::string() : e->second,
               p.d.outcome == Outcome::reported && defers_ban(p.d), now);
    }
    pending_.clear();
    bans_.aggregate(banned_v6, now.wall);
}

void ProbePath::report(Pending& p, const std::string& ban_error, bool defer_ban, const Now& now) {
    const std::string src = p.pkt.src.to_string();
    if (p.d.outcome == Outcome::protected_addr) {
        // Once per source and hour (the engine rate-limits): the probe was
        // accepted, nothing is written to history or blocked.
        log_.write(actions::msg::protected_probe(engine::to_string(p.d.protect_reason), src, p.pkt.proto, p.pkt.dport));
        auto f = probe_fields(p);
        f["reason"] = engine::to_string(p.d.protect_reason);
        events_.emit("protected", std::move(f));
        return;
    }
    if (p.d.outcome == Outcome::rate_limited) {
        // Dropped and logged, not banned: the Log's own token bucket keeps a
        // spoofed flood from flooding syslog.
        log_.write(actions::msg::rate_limited(engine::scan_name(p.d.type, p.pkt.tcp_flags), src, p.pkt.proto,
                                              p.pkt.dport));
        events_.emit("rate_limited", probe_fields(p));
        return;
    }
    if (p.d.outcome != Outcome::reported && p.d.outcome != Outcome::already_blocked)
        return;  // tripwire decisions can be ignored / protected / not watched
    actions::Report rep{p.pkt.src, p.pkt.proto, p.pkt.dport, p.pkt.tcp_flags, p.d, mode_name(p.pkt.proto), now.steady};
    if (worker_ && worker_->submit({std::move(rep), ban_error, defer_ban})) return;
    // The queue is full (counted; the worker's summary line names the host).
    // A ban still waiting for its command will not happen: let the next probe
    // from this source report it again rather than count it as blocked.
    if (defer_ban) engine_.forget(p.pkt.src, p.pkt.proto);
}

BanManager::Installed ProbePath::ban_now(const actions::Report& rep, const Now& now) {
    const auto installed = bans_.ban_detected({{rep.src, rep.d.ban_time, rep.port, net::to_string(rep.proto),
                                                engine::scan_name(rep.d.type, rep.tcp_flags),
                                                rep.d.type == engine::ScanType::tcp_connect}},
                                              now.wall);
    // After its KILL_RUN_CMD_FIRST command: the probe's turn is `seen`.
    if (installed.front().error.empty() && rep.seen) observe_ban(*rep.seen, clock_());
    if (installed.front().error.empty() && rep.src.is_v6()) bans_.aggregate({rep.src}, now.wall);
    return installed.front();
}

void ProbePath::on_done(const ResponseWorker::Done& done, const Now& now) {
    (void)now;
    const actions::Report& r = done.rep;
    const auto& res = done.res;
    if (events_.on()) {
        auto f = probe_fields(r.src, r.proto, r.port, r.d, r.tcp_flags);
        if (r.d.outcome == Outcome::already_blocked) {
            events_.emit("already_blocked", std::move(f));
        } else {
            f["block"] = r.d.block;
            f["banned"] = res.banned;
            if (res.banned) {
                f["ban_seconds"] = r.d.ban_time.count();
                if (const BanRecord* b = bans_.record(net::Cidr::host(r.src))) f["offences"] = b->count;
            }
            f["responded"] = res.responded_ok;
            events_.emit("scan", std::move(f));
        }
    }
    // A response failed ("Could not block host"): let the next probe from
    // this source on this protocol try again instead of "already blocked".
    if (r.d.outcome == Outcome::reported && !res.responded_ok) engine_.forget(r.src, r.proto);
}

}  // namespace portsentry::daemon
