#include "portsentry/daemon/service.hpp"

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <ctime>
#include <fmt/format.h>
#include <map>
#include <random>
#include <sstream>
#include <system_error>

#include "portsentry/actions/events.hpp"
#include "portsentry/actions/log.hpp"
#include "portsentry/actions/responder.hpp"
#include "portsentry/daemon/control.hpp"
#include "portsentry/daemon/protect.hpp"
#include "portsentry/daemon/settings.hpp"
#include "portsentry/daemon/state.hpp"
#include "portsentry/engine/engine.hpp"
#include "portsentry/engine/policy.hpp"
#include "portsentry/kernel/nflog.hpp"
#include "portsentry/kernel/nfqueue.hpp"
#include "portsentry/kernel/nft.hpp"
#include "portsentry/kernel/nft_monitor.hpp"
#include "portsentry/net/packet.hpp"

namespace portsentry::daemon {

namespace {

int64_t wall_now() { return static_cast<int64_t>(std::time(nullptr)); }

std::string format_epoch(int64_t t) {
    if (t == 0) return "never";
    std::time_t tt = static_cast<std::time_t>(t);
    std::tm tm{};
    ::localtime_r(&tt, &tm);
    char buf[64];
    std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S %Z", &tm);
    return buf;
}

std::string protection_summary(const engine::Protection& p) {
    using engine::ProtectReason;
    std::string s;
    for (auto r : {ProtectReason::ignore, ProtectReason::local, ProtectReason::gateway, ProtectReason::resolver,
                   ProtectReason::special, ProtectReason::session}) {
        const auto& v = p.prefixes(r);
        if (v.empty()) continue;
        s += fmt::format("{}{}: ", s.empty() ? "" : "; ", engine::to_string(r));
        // Name the few addresses an admin checks; just count long lists.
        if (v.size() > 4 || r == ProtectReason::ignore || r == ProtectReason::special) {
            s += fmt::format("{}", v.size());
            continue;
        }
        for (size_t i = 0; i < v.size(); ++i) s += (i ? " " : "") + v[i].to_string();
    }
    return s.empty() ? "none" : s;
}

kernel::Backend choose_backend(config::Steer steer, const std::vector<kernel::Backend>& available,
                               std::string* why) {
    auto has = [&](kernel::Backend b) {
        for (auto a : available)
            if (a == b) return true;
        return false;
    };
    auto forced = [&](kernel::Backend b) -> kernel::Backend {
        if (!has(b))
            throw std::runtime_error(fmt::format(
                "steering backend '{}' forced by --steer/steer: is not supported by this kernel", kernel::to_string(b)));
        *why = "forced";
        return b;
    };
    switch (steer) {
        case config::Steer::queue: return forced(kernel::Backend::queue);
        case config::Steer::xt_queue: return forced(kernel::Backend::xt_queue);
        case config::Steer::nflog: return forced(kernel::Backend::nflog);
        case config::Steer::auto_: break;
    }
    *why = "auto";
    for (auto b : {kernel::Backend::queue, kernel::Backend::xt_queue, kernel::Backend::nflog})
        if (has(b)) return b;
    throw std::runtime_error(
        "no steering backend works on this kernel: need nft_queue, nft_compat + xt_NFQUEUE, or nfnetlink_log");
}

std::string mode_name(const config::Config& c, net::L4 proto) {
    const auto& p = proto == net::L4::tcp ? c.tcp : c.udp;
    const char* base = proto == net::L4::tcp ? "tcp" : "udp";
    switch (p.mode) {
        case config::Mode::classic: return base;
        case config::Mode::stealth: return std::string("s") + base;
        case config::Mode::advanced: return std::string("a") + base;
        case config::Mode::off: break;
    }
    return base;
}

// A classic-mode tripwire: a socket bound to one listed port.
struct Tripwire {
    int fd = -1;
    net::L4 proto;
    uint16_t port;
};

}  // namespace

struct Service::Impl {
    Options opts;
    std::unique_ptr<config::Config> cfg;
    actions::Log log;
    std::unique_ptr<actions::Responder> responder;
    std::unique_ptr<actions::EventLog> events;  // json_log; null when off
    engine::Engine engine;
    BanStore store;
    LockFile lock;
    kernel::Nft nft;
    std::unique_ptr<kernel::NftMonitor> monitor;  // null with --no-ruleset or if it cannot bind
    kernel::Backend backend = kernel::Backend::nflog;
    std::unique_ptr<kernel::PacketSource> source;
    std::unique_ptr<ControlServer> control;
    std::vector<Tripwire> tripwires;
    // The never-ban set: what the engine consults and @never/@never6 hold.
    // Replaced in place on change, so the engine's pointer stays valid.
    engine::Protection protection;
    ProtectSources protect_sources;
    std::unique_ptr<ProtectWatch> protect_watch;
    // Route churn (a router learning a full table) can send thousands of
    // events a second: re-gather at most every kProtectMinGap, and let the
    // 1 s tick pick up what was deferred, so a change lands within a second.
    static constexpr std::chrono::milliseconds kProtectMinGap{200};
    engine::TimePoint protect_last{};
    bool protect_dirty = false;
    // UDP replies go to an unverified source address: a global cap keeps a
    // spoofed flood from turning PORT_BANNER into a reflection amplifier.
    actions::TokenBucket udp_banner_bucket{20, 10};
    bool state_dirty = false;
    // The state file is written by this thread. The loop only serializes,
    // in slices of kStateSlice records between packet batches (a stalled
    // loop lets fail-open NFQUEUE answer probes itself), and starts a pass
    // at most once per kStateSaveShare times what the last one cost.
    std::unique_ptr<StateWriter> state_writer;
    struct StatePass {
        std::vector<std::string> parts;  // one per slice: no big reallocation on the loop
        std::optional<net::Cidr> cursor;
        engine::Clock::duration busy{};  // loop time spent on it
        engine::Clock::duration longest{};
        unsigned slices = 0;
    };
    std::optional<StatePass> state_pass;
    // The longest single event handling since start, and how many took
    // over kSlowTurn: while the loop is busy, queued probes wait.
    std::chrono::steady_clock::duration longest_turn{};
    const char* longest_turn_what = "none";
    uint64_t slow_turns = 0;
    static constexpr std::chrono::milliseconds kSlowTurn{50};
    static constexpr size_t kStateSlice = 2000;
    static constexpr int kStateSaveShare = 20;
    engine::TimePoint state_next_save{};
    engine::TimePoint state_pass_end{};
    double state_busy_ms = 0, state_longest_ms = 0;  // the last pass
    unsigned state_slices = 0;
    std::string state_error;  // the failure last logged, "" once a write succeeds again
    uint64_t state_written_at_error = 0;
    uint64_t parse_errors = 0;
    uint64_t ban_errors = 0;
    uint64_t ban_evictions = 0;   // bans evicted from a full set
    uint64_t aggregations = 0;    // IPv6 /64s banned in place of their hosts
    uint64_t restores = 0;        // table rebuilt after someone else changed it
    // A full set evicts one ban per try; a few tries cover elements that are
    // in the set but not in our table (added by hand with nft).
    static constexpr int kMaxEvictTries = 4;
    std::time_t started = std::time(nullptr);

    struct Pending {
        net::Packet pkt;
        engine::Decision d;
    };
    std::vector<Pending> pending;

    explicit Impl(const Options& o, std::unique_ptr<config::Config> c)
        : opts(o),
          cfg(std::move(c)),
          log(actions::LogOptions{.use_syslog = true, .foreground = true}),
          engine(engine_settings(*cfg), std::random_device{}() | (uint64_t{std::random_device{}()} << 32)),
          store(cfg->state_file),
          state_writer(std::make_unique<StateWriter>(cfg->state_file)) {
        engine.set_protection(&protection);
    }

    // Re-reads every protection source; on a change updates the kernel sets
    // (one batch) and logs the new summary. The engine sees the new snapshot
    // at once (same object).
    void refresh_protection() {
        protect_dirty = false;
        protect_last = engine::Clock::now();
        auto next = gather(*cfg, protect_sources);
        if (next == protection) return;
        if (!opts.no_ruleset) {
            try {
                nft.set_never(next.prefixes());
            } catch (const std::exception& e) {
                // The engine still protects them; the next change or a
                // restore (apply_ruleset) retries the kernel sets.
                log.write(fmt::format("portsentry-nfq: cannot update the never-ban sets: {}", e.what()));
            }
        }
        protection = std::move(next);
        log.write("portsentry-nfq: protected (never banned): " + protection_summary(protection));
    }

    // json_log: opened (or reopened, or closed) to match the config.
    void open_events() {
        if (cfg->json_log.empty()) {
            events.reset();
            return;
        }
        if (events && events->path() == cfg->json_log) {
            if (auto err = events->reopen(); !err.empty())
                log.write(fmt::format("portsentry-nfq: json_log {}: {}", cfg->json_log, err));
            return;
        }
        events = std::make_unique<actions::EventLog>(
            cfg->json_log, [this](const std::string& e) { log.write("portsentry-nfq: cannot write json_log " + e); });
    }

    void event(const char* name, nlohmann::ordered_json fields) {
        if (events) events->write(name, std::move(fields));
    }

    static nlohmann::ordered_json probe_fields(const Pending& p) {
        return {{"src", p.pkt.src.to_string()},
                {"proto", p.pkt.proto == net::L4::tcp ? "TCP" : "UDP"},
                {"port", p.pkt.dport},
                {"scan", engine::scan_name(p.d.type, p.pkt.tcp_flags)}};
    }

    size_t active_ban_count(int64_t now) const {
        return store.active_count(AF_INET, now) + store.active_count(AF_INET6, now);
    }

    std::vector<kernel::BanElement> active_bans(int64_t now) const {
        std::vector<kernel::BanElement> out;
        for (const auto& [p, r] : store.records()) {
            if (!r.active(now)) continue;
            kernel::BanElement e{p, std::nullopt};
            if (auto left = r.remaining(now)) e.timeout = std::chrono::seconds(*left);
            out.push_back(e);
        }
        return out;
    }

    void apply_ruleset() {
        if (opts.no_ruleset) return;
        auto spec = kernel::RulesetSpec::from_config(*cfg, backend);
        spec.never = protection.prefixes();
        trim_to_set_size(wall_now());
        nft.apply(spec, active_bans(wall_now()));
        // Our own replace queued a notification per element (maybe an
        // overrun): nothing in the monitor's queue is news now.
        if (monitor) monitor->discard();
    }

    // Someone removed our table or part of it: put table, never-ban sets and
    // every active ban back in one transaction.
    void restore_ruleset(const char* what) {
        try {
            apply_ruleset();
            ++restores;
            log.write(fmt::format("portsentry-nfq: {}: table inet portsentry restored with {} bans", what,
                                  active_ban_count(wall_now())));
        } catch (const std::exception& e) {
            log.write(fmt::format("portsentry-nfq: cannot restore ruleset: {}", e.what()));
        }
    }

    void open_source() {
        if (backend == kernel::Backend::nflog)
            source = std::make_unique<kernel::NfLog>(cfg->nflog_group);
        else
            source = std::make_unique<kernel::NfQueue>(cfg->queue_num);
    }

    // Re-tell the engine about bans it must treat as "already blocked".
    void seed_engine() {
        const int64_t now = wall_now();
        const auto steady = engine::Clock::now();
        for (const auto& [p, r] : store.records()) {
            if (!r.active(now) || p.prefix != p.addr.bits()) continue;
            std::optional<engine::TimePoint> until;
            if (auto left = r.remaining(now)) until = steady + std::chrono::seconds(*left);
            engine.mark_blocked(p.addr, steady, until);
        }
    }

    void open_tripwires() {
        for (auto proto : {net::L4::tcp, net::L4::udp}) {
            const auto& pc = proto == net::L4::tcp ? cfg->tcp : cfg->udp;
            if (pc.mode != config::Mode::classic) continue;
            for (const auto& r : pc.ports)
                for (unsigned port = r.lo; port <= r.hi; ++port) bind_tripwire(proto, static_cast<uint16_t>(port));
        }
    }

    void bind_tripwire(net::L4 proto, uint16_t port) {
        int type = proto == net::L4::tcp ? SOCK_STREAM : SOCK_DGRAM;
        int fd = ::socket(AF_INET6, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0) return;
        int off = 0;  // dual-stack: one socket sees IPv4 (mapped) and IPv6
        ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off);
        sockaddr_in6 sa{};
        sa.sin6_family = AF_INET6;
        sa.sin6_port = htons(port);
        if (::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) < 0 ||
            (proto == net::L4::tcp && ::listen(fd, 16) < 0)) {
            // 1.2 behaviour: a port in use by a real service is skipped, and said so.
            log.write(fmt::format("portsentry-nfq: {} port {} is in use, not a tripwire: {}",
                                   proto == net::L4::tcp ? "TCP" : "UDP", port, std::strerror(errno)));
            ::close(fd);
            return;
        }
        tripwires.push_back({fd, proto, port});
    }

    void handle_tripwire(size_t i) {
        auto& t = tripwires.at(i);
        sockaddr_in6 peer{};
        socklen_t len = sizeof peer;
        int c = -1;
        if (t.proto == net::L4::tcp) {
            c = ::accept4(t.fd, reinterpret_cast<sockaddr*>(&peer), &len, SOCK_CLOEXEC | SOCK_NONBLOCK);
            if (c < 0) return;
        } else {
            char buf[512];
            if (::recvfrom(t.fd, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&peer), &len) < 0) return;
        }
        auto src = net::IpAddr::from_bytes(AF_INET6, reinterpret_cast<const uint8_t*>(&peer.sin6_addr)).unmapped();
        if (!cfg->port_banner.empty()) {
            std::string banner = cfg->port_banner + "\n";
            if (c >= 0)
                (void)::send(c, banner.data(), banner.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
            else if (udp_banner_bucket.take(actions::Clock::now()))  // never a reflector (DESIGN.md §7)
                (void)::sendto(t.fd, banner.data(), banner.size(), MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&peer),
                               len);
        }
        if (c >= 0) ::close(c);
        auto d = engine.on_tripwire(src, t.proto, t.port, engine::Clock::now());
        if (d.outcome == engine::Decision::Outcome::protected_addr && d.log_suppressed) return;
        net::Packet p;
        p.src = src;
        p.proto = t.proto;
        p.dport = t.port;
        pending.push_back({p, d});
        flush_pending();
    }

    kernel::PacketVerdict on_packet(std::span<const uint8_t> l3) {
        auto r = net::parse_packet(l3);
        if (!r.ok()) {
            // Fail open on what we cannot read: the rule only steers closed
            // ports, so ACCEPT means the kernel answers as it would without us.
            ++parse_errors;
            return kernel::PacketVerdict::accept;
        }
        auto d = engine.on_probe(r.pkt, true, engine::Clock::now());
        if (d.outcome == engine::Decision::Outcome::reported ||
            d.outcome == engine::Decision::Outcome::rate_limited ||
            ((d.outcome == engine::Decision::Outcome::already_blocked ||
              d.outcome == engine::Decision::Outcome::protected_addr) &&
             !d.log_suppressed))
            pending.push_back({r.pkt, d});
        return d.verdict == engine::Verdict::drop ? kernel::PacketVerdict::drop : kernel::PacketVerdict::accept;
    }

    // Runs after the verdicts went out: bans coalesced into one batch, then
    // the 1.2 responses (logs, history, hosts.deny, commands).
    void flush_pending() {
        if (pending.empty()) return;
        const int64_t now = wall_now();
        const auto steady = engine::Clock::now();
        std::vector<kernel::BanElement> bans;
        for (auto& p : pending)
            if (p.d.outcome == engine::Decision::Outcome::reported && p.d.ban) {
                const auto host = net::Cidr::host(p.pkt.src);
                // Repeat offenders: the engine asked for ban_time; the ban
                // table remembers earlier offences across restarts.
                const auto bt = next_ban_time(host, p.d.ban_time);
                if (bt != p.d.ban_time) {
                    p.d.ban_time = bt;
                    engine.mark_blocked(p.pkt.src, steady, steady + bt);
                }
                kernel::BanElement e{host, std::nullopt};
                if (bt.count() > 0) e.timeout = bt;
                bans.push_back(e);
            }
        auto ban_failed = install_bans(bans, now);
        std::vector<net::IpAddr> banned_v6;
        for (const auto& p : pending) {
            if (p.d.outcome == engine::Decision::Outcome::protected_addr) {
                // Once per source and hour (the engine rate-limits): the probe
                // was accepted, nothing is written to history or blocked.
                log.write(fmt::format("attackalert: protected: {}: host {}/{} probed {} port {}: never banned",
                                      engine::to_string(p.d.protect_reason), p.pkt.src.to_string(),
                                      p.pkt.src.to_string(), p.pkt.proto == net::L4::tcp ? "TCP" : "UDP",
                                      p.pkt.dport));
                auto f = probe_fields(p);
                f["reason"] = engine::to_string(p.d.protect_reason);
                event("protected", std::move(f));
                continue;
            }
            if (p.d.outcome == engine::Decision::Outcome::rate_limited) {
                // Dropped and logged, not banned: the Log's own token bucket
                // keeps a spoofed flood from flooding syslog.
                const char* proto = p.pkt.proto == net::L4::tcp ? "TCP" : "UDP";
                log.write(fmt::format("attackalert: {} from host: {}/{} to {} port: {}: not banned (ban rate "
                                      "limit reached)",
                                      engine::scan_name(p.d.type, p.pkt.tcp_flags), p.pkt.src.to_string(),
                                      p.pkt.src.to_string(), proto, p.pkt.dport));
                event("rate_limited", probe_fields(p));
                continue;
            }
            if (p.d.outcome != engine::Decision::Outcome::reported &&
                p.d.outcome != engine::Decision::Outcome::already_blocked)
                continue;  // tripwire decisions can be ignored / protected / not watched
            auto failed = ban_failed.find(net::Cidr::host(p.pkt.src));
            const std::string ban_error = failed == ban_failed.end() ? std::string() : failed->second;
            if (p.d.outcome == engine::Decision::Outcome::reported) {
                if (p.d.ban && ban_error.empty()) {
                    auto& rec = store.record_ban(net::Cidr::host(p.pkt.src), "detector", now, p.d.ban_time.count());
                    rec.last_port = p.pkt.dport;
                    rec.last_proto = p.pkt.proto == net::L4::tcp ? "TCP" : "UDP";
                    rec.last_type = engine::scan_name(p.d.type, p.pkt.tcp_flags);
                    state_dirty = true;
                    if (p.pkt.src.is_v6()) banned_v6.push_back(p.pkt.src);
                }
            }
            actions::Report rep{p.pkt.src, p.pkt.proto, p.pkt.dport, p.pkt.tcp_flags, p.d,
                                mode_name(*cfg, p.pkt.proto)};
            auto res = responder->handle(rep, [&] { return ban_error; });
            if (events) {
                auto f = probe_fields(p);
                if (p.d.outcome == engine::Decision::Outcome::already_blocked) {
                    event("already_blocked", std::move(f));
                } else {
                    f["block"] = p.d.block;
                    f["banned"] = res.banned;
                    if (res.banned) {
                        f["ban_seconds"] = p.d.ban_time.count();
                        if (const BanRecord* r = store.find(net::Cidr::host(p.pkt.src))) f["offences"] = r->count;
                    }
                    f["responded"] = res.responded_ok;
                    event("scan", std::move(f));
                }
            }
            // A response failed ("Could not block host"): let the next probe
            // from this source try again instead of "already blocked".
            if (!res.responded_ok) engine.forget(p.pkt.src);
        }
        pending.clear();
        for (const auto& a : banned_v6) maybe_aggregate(a, now);
    }

    // The length of the next ban of `prefix` starting from `base`: escalated
    // by the offences the ban table remembers (BanPolicy::duration).
    std::chrono::seconds next_ban_time(const net::Cidr& prefix, std::chrono::seconds base) const {
        auto policy = engine::BanPolicy::from_settings(engine.settings());
        policy.base = base;
        const BanRecord* r = store.find(prefix);
        return policy.duration((r ? r->count : 0) + 1);
    }

    // The engine remembers hosts as blocked until their own ban ends; when a
    // covering ban goes early (unban, eviction), they must count afresh.
    void forget_hosts(const std::vector<net::Cidr>& prefixes) {
        for (const auto& p : prefixes)
            if (p.prefix == p.addr.bits()) engine.forget(p.addr);
    }

    // Erases `c` and every record inside it, history too (an unban forgives),
    // and lets the engine count those hosts afresh. Returns the active bans.
    std::vector<net::Cidr> erase_within(const net::Cidr& c, int64_t now) {
        forget_hosts(store.within(c, now, false));
        return store.erase_within(c, now);
    }

    // Someone deleted ban elements with nft (`nft delete element`, `nft flush
    // set`): their decision stands. Forget those bans as an unban would, so
    // list/why/restore do not bring back what the kernel no longer has.
    void forget_foreign_unbans(const std::vector<net::IpAddr>& starts) {
        const int64_t now = wall_now();
        std::vector<net::Cidr> gone;
        for (const auto& a : starts)
            for (const auto& p : store.starting_at(a, now)) {
                erase_within(p, now);
                gone.push_back(p);
                event("unban", {{"prefix", p.to_string()}, {"origin", "nft"}});
            }
        if (gone.empty()) return;
        state_dirty = true;
        std::string list;
        for (size_t i = 0; i < gone.size() && i < 16; ++i) list += " " + gone[i].to_string();
        if (gone.size() > 16) list += fmt::format(" ... and {} more", gone.size() - 16);
        log.write(fmt::format("portsentry-nfq: {} ban{} deleted outside portsentry-nfq (nft), treated as unban{}:{}",
                              gone.size(), gone.size() == 1 ? "" : "s", gone.size() == 1 ? "" : "s", list));
    }

    // The state may hold more bans than a set takes (ban_set_size lowered,
    // offline bans): keep the newest, evict the rest as a full set would.
    void trim_to_set_size(int64_t now) {
        for (uint8_t family : {uint8_t(AF_INET), uint8_t(AF_INET6)}) {
            const size_t n = store.active_count(family, now);
            if (n <= cfg->ban_set_size) continue;
            const size_t excess = n - cfg->ban_set_size;
            std::vector<net::Cidr> gone;
            for (const BanRecord* r : store.eviction_order(family, now, excess)) gone.push_back(r->prefix);
            for (const auto& p : gone) {
                event("evicted", {{"prefix", p.to_string()}, {"set_size", cfg->ban_set_size}});
                store.end_ban(p, now, "evicted");
            }
            forget_hosts(gone);
            ban_evictions += excess;
            state_dirty = true;
            log.write(fmt::format("portsentry-nfq: the ban table holds {} {} bans but ban_set_size is {}: evicted the "
                                  "{} oldest",
                                  n, family == AF_INET6 ? "IPv6" : "IPv4", cfg->ban_set_size, excess));
        }
    }

    // Adds `bans` in one batch. When the kernel refuses it, each element is
    // retried alone so one bad element (a full set, a covering prefix) is
    // reported against its own prefix only; a full set evicts its oldest ban
    // and tries again. Returns the prefixes still refused, with the reason.
    std::map<net::Cidr, std::string, CidrLess> install_bans(const std::vector<kernel::BanElement>& bans, int64_t now) {
        std::map<net::Cidr, std::string, CidrLess> failed;
        if (bans.empty()) return failed;
        try {
            nft.add_bans(bans);
            return failed;
        } catch (const std::exception&) {
        }
        std::vector<net::Cidr> adding;
        for (const auto& b : bans) adding.push_back(b.prefix);
        for (const auto& b : bans) {
            for (int attempt = 0;; ++attempt) {
                try {
                    nft.add_bans({b});
                    break;
                } catch (const kernel::NftError& e) {
                    if (e.error() == ENFILE && attempt < kMaxEvictTries && evict_oldest(b.prefix.addr.family, now, adding))
                        continue;
                    ++ban_errors;
                    failed[b.prefix] = e.what();
                } catch (const std::exception& e) {
                    ++ban_errors;
                    failed[b.prefix] = e.what();
                }
                break;
            }
        }
        return failed;
    }

    // A full set must never refuse a ban silently: the oldest ban makes room
    // (BanStore::oldest_active), logged and counted. False: nothing to evict.
    bool evict_oldest(uint8_t family, int64_t now, const std::vector<net::Cidr>& spare) {
        const BanRecord* r = store.oldest_active(family, now, spare);
        if (!r) return false;
        const BanRecord victim = *r;
        size_t deleted = 0;
        try {
            deleted = nft.del_bans({victim.prefix});
        } catch (const std::exception& e) {
            log.write(fmt::format("portsentry-nfq: cannot evict {} from the full ban set: {}", victim.prefix.to_string(),
                                  e.what()));
            return false;
        }
        forget_hosts(store.within(victim.prefix, now, false));  // a /64's folded hosts too
        store.end_ban(victim.prefix, now, "evicted");
        state_dirty = true;
        if (deleted == 0) {
            // Already gone from the kernel (a stale record): no room was made,
            // so it is not an eviction; the caller tries the next oldest.
            log.write(fmt::format("portsentry-nfq: ban of {} was no longer in the kernel set: forgotten",
                                  victim.prefix.to_string()));
            return true;
        }
        ++ban_evictions;
        event("evicted", {{"prefix", victim.prefix.to_string()}, {"origin", victim.origin},
                          {"banned_at", victim.last_seen}, {"set_size", cfg->ban_set_size}});
        log.write(fmt::format("portsentry-nfq: ban set {} is full ({} bans): evicted the oldest ban, {} ({}, banned {})",
                              family == AF_INET6 ? "banned6" : "banned", cfg->ban_set_size, victim.prefix.to_string(),
                              victim.origin, format_epoch(victim.last_seen)));
        return true;
    }

    // IPv6: once ipv6_aggregate_after hosts of one /64 are banned, ban the
    // /64 and drop the singles (one transaction), unless the /64 would cover
    // a protected or ignored address. The /64's ban never ends before any of
    // the singles' would have, and escalates on its own record.
    void maybe_aggregate(const net::IpAddr& host, int64_t now) {
        const auto policy = engine::BanPolicy::from_settings(engine.settings());
        const net::Cidr p64 = engine::aggregation_prefix(host);
        if (const BanRecord* r = store.find(p64); r && r->active(now)) return;
        const auto singles = store.hosts_within(p64, now);
        if (!policy.aggregate(singles.size())) return;
        std::vector<net::Cidr> guarded = protection.prefixes();
        guarded.insert(guarded.end(), cfg->ignore.entries().begin(), cfg->ignore.entries().end());
        if (auto c = engine::conflicts(p64, guarded); !c.empty()) {
            log.write(fmt::format("portsentry-nfq: {} banned hosts in {}, but the /64 covers protected {}: "
                                  "keeping single bans",
                                  singles.size(), p64.to_string(), c.front().to_string()));
            return;
        }
        auto bt = next_ban_time(p64, cfg->ban_time);
        bool permanent = bt.count() == 0;
        const BanRecord* latest = nullptr;
        for (const auto& s : singles) {
            const BanRecord* r = store.find(s);
            if (r->expires == 0) permanent = true;
            else bt = std::max(bt, std::chrono::seconds(r->expires - now));
            if (!latest || r->last_seen >= latest->last_seen) latest = r;
        }
        kernel::BanElement e{p64, std::nullopt};
        if (!permanent) e.timeout = bt;
        try {
            nft.replace_bans(singles, {e});
        } catch (const std::exception& ex) {
            ++ban_errors;
            log.write(fmt::format("portsentry-nfq: cannot ban {} in place of its {} banned hosts: {}", p64.to_string(),
                                  singles.size(), ex.what()));
            return;
        }
        const BanRecord last = *latest;
        auto& rec = store.record_ban(p64, "detector", now, permanent ? 0 : bt.count());
        rec.last_port = last.last_port;
        rec.last_proto = last.last_proto;
        rec.last_type = last.last_type;
        for (const auto& s : singles) store.end_ban(s, now, p64.to_string());
        ++aggregations;
        state_dirty = true;
        {
            nlohmann::ordered_json hosts = nlohmann::ordered_json::array();
            for (const auto& h : singles) hosts.push_back(h.to_string());
            event("aggregated", {{"prefix", p64.to_string()}, {"hosts", hosts},
                                 {"ban_seconds", permanent ? 0 : bt.count()}});
        }
        log.write(fmt::format("portsentry-nfq: {} banned hosts inside {}: banned the /64 {} and dropped the single bans",
                              singles.size(), p64.to_string(),
                              permanent ? std::string("permanently") : fmt::format("for {}s", bt.count())));
    }

    // Ended bans are remembered for ban_time_max (escalation), at most as
    // many as a set holds, so a flood of short bans cannot grow the file.
    void forget_history() {
        if (store.forget(wall_now(), cfg->ban_time_max.count(), cfg->ban_set_size) > 0) state_dirty = true;
    }

    // Each tick: start a pass over the table if it changed.
    void save_state() {
        report_state_write(state_writer->take_error());
        const auto now = engine::Clock::now();
        if (state_pass || !state_dirty || now < state_next_save) return;
        state_pass.emplace();
        state_pass->parts.emplace_back(BanStore::header());
        state_dirty = false;
        continue_state_pass();
    }

    // One slice of the pass in progress; the last hands the text to the writer.
    void continue_state_pass() {
        if (!state_pass) return;
        StatePass& p = *state_pass;
        const auto t0 = engine::Clock::now();
        bool done = false;
        try {
            std::string& part = p.parts.emplace_back();
            part.reserve(kStateSlice * 200);
            done = store.serialize_some(part, p.cursor, kStateSlice);
        } catch (const std::exception& e) {  // bad_alloc: drop the pass, retry at a later tick
            log.write(fmt::format("portsentry-nfq: cannot save state: {}", e.what()));
            state_pass.reset();
            state_dirty = true;
            return;
        }
        const auto took = engine::Clock::now() - t0;
        p.busy += took;
        p.longest = std::max(p.longest, took);
        ++p.slices;
        if (!done) return;
        auto ms = [](engine::Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); };
        state_busy_ms = ms(p.busy);
        state_longest_ms = ms(p.longest);
        state_slices = p.slices;
        state_pass_end = engine::Clock::now();
        state_next_save = state_pass_end + p.busy * kStateSaveShare;
        state_writer->submit(std::move(p.parts));
        state_pass.reset();
    }

    // Admin commands (fail2ban's bans among them): saved at once if no pass
    // runs and the table is small, else by a pass starting at most 1 s after
    // the last one ended. Not synchronous: serializing a big table in one go
    // would stall the loop, and a wave of bans must not chain passes back
    // to back (the loop's share stays below busy / (busy + 1 s)).
    void save_state_soon() {
        state_dirty = true;
        state_next_save = std::min(state_next_save, state_pass_end + std::chrono::seconds(1));
        save_state();
    }

    // Exit: on disk before the process ends. A pass in progress is dropped:
    // this snapshot has everything it had.
    void save_state_now() {
        state_pass.reset();
        state_dirty = false;
        try {
            state_writer->submit(store.serialize());
        } catch (const std::exception& e) {
            log.write(fmt::format("portsentry-nfq: cannot save state: {}", e.what()));
            return;
        }
        report_state_write(state_writer->flush());
    }

    // Logs a failing state file once per distinct error, and its recovery;
    // a failed snapshot is retried at the next tick.
    void report_state_write(const std::string& err) {
        const uint64_t written = state_writer->counters().written;
        if (!err.empty()) {
            state_dirty = true;
            if (err != state_error) log.write(fmt::format("portsentry-nfq: cannot save state: {}", err));
            state_error = err;
            state_written_at_error = written;
        } else if (!state_error.empty() && written > state_written_at_error) {
            log.write(fmt::format("portsentry-nfq: state file {} written again", store.path()));
            state_error.clear();
        }
    }

    // --- operator commands -------------------------------------------------
    ControlReply command(const std::string& line);
    ControlReply cmd_status();
    ControlReply cmd_list(bool json);
    ControlReply cmd_why(const std::string& arg);
    ControlReply cmd_ban(const std::string& arg, std::optional<std::chrono::seconds> t, const std::string& origin);
    ControlReply cmd_unban(const std::string& arg);
};

ControlReply Service::Impl::command(const std::string& line) {
    std::istringstream in(line);
    std::vector<std::string> w;
    for (std::string s; in >> s;) w.push_back(s);
    if (w.empty()) return {1, "error: empty command\n"};
    if (w[0] == "status") return cmd_status();
    if (w[0] == "list") return cmd_list(w.size() > 1 && w[1] == "--json");
    if (w[0] == "why" && w.size() == 2) return cmd_why(w[1]);
    if (w[0] == "ban" && w.size() >= 2) {
        std::optional<std::chrono::seconds> t;
        std::string origin = "admin";
        for (size_t i = 2; i + 1 < w.size(); i += 2) {
            if (w[i] == "--time") t = std::chrono::seconds(std::stoll(w[i + 1]));
            if (w[i] == "--origin") origin = w[i + 1];
        }
        return cmd_ban(w[1], t, origin);
    }
    if (w[0] == "unban" && w.size() == 2) return cmd_unban(w[1]);
    return {1, "error: unknown command '" + line + "' (status, list [--json], why ADDR, ban ADDR, unban ADDR)\n"};
}

ControlReply Service::Impl::cmd_status() {
    const auto& c = engine.counters();
    const auto& sc = source->counters();
    const size_t active = active_ban_count(wall_now());
    std::string s;
    s += fmt::format("portsentry-nfq {} running since {}\n", PORTSENTRY_VERSION, format_epoch(started));
    s += fmt::format("config: {}{}\n", cfg->source_file, cfg->dry_run ? " (dry run)" : "");
    s += fmt::format("tcp: {} block {}  udp: {} block {}\n", config::to_string(cfg->tcp.mode), cfg->tcp.block,
                     config::to_string(cfg->udp.mode), cfg->udp.block);
    s += fmt::format("steering: {} ({})\n", kernel::to_string(backend), source->describe());
    s += fmt::format("bans: {} active\n", active);
    s += fmt::format("loop: longest turn {:.1f} ms ({}), {} turns over {} ms\n",
                     std::chrono::duration<double, std::milli>(longest_turn).count(), longest_turn_what, slow_turns,
                     kSlowTurn.count());
    s += fmt::format("packets: {} received, {} verdicts, {} default verdicts, {} parse errors, {} enobufs\n",
                     sc.received, sc.verdicts, sc.default_verdicts, parse_errors, sc.enobufs);
    s += fmt::format("engine: {} probes, {} reported, {} rate-limited (not banned), {} already blocked, {} ignored, {} tracked sources, {} evicted\n",
                     c.packets, c.reported, c.rate_limited, c.already_blocked, c.ignored, engine.tracked_sources(), c.evictions);
    s += fmt::format("protected: {} probes from protected sources; {}\n", c.protected_hits,
                     protection_summary(protection));
    s += fmt::format("ban errors: {}; evicted from a full set: {}; IPv6 /64s aggregated: {}\n", ban_errors,
                     ban_evictions, aggregations);
    if (monitor) {
        const auto& mc = monitor->counters();
        s += fmt::format("nftables monitor: table restored {} times after changes by others, {} bans deleted with nft "
                         "(forgotten), {} overruns\n",
                         restores, mc.foreign_unbans, mc.overruns);
    }
    {
        const auto wc = state_writer->counters();
        s += fmt::format("state file {}: {} records, {} writes ({} failed, {} snapshots superseded); last: {} bytes, "
                         "serialized in {} slices ({:.1f} ms of loop time, longest {:.1f} ms), written in {:.1f} ms "
                         "by the writer thread\n",
                         store.path(), store.records().size(), wc.written, wc.failed, wc.replaced, wc.last_bytes,
                         state_slices, state_busy_ms, state_longest_ms, wc.last_ms);
    }
    if (events) {
        const auto& ec = events->counters();
        s += fmt::format("json_log {}: {} events, {} suppressed by the flood cap, {} write errors\n", events->path(),
                         ec.written, ec.suppressed, ec.errors);
    }
    return {0, s};
}

ControlReply Service::Impl::cmd_list(bool json) { return render_list(store, json); }

ControlReply Service::Impl::cmd_why(const std::string& arg) {
    auto r = render_why(store, *cfg, arg, &protection);
    auto a = net::IpAddr::parse(arg);
    if (!a || r.status != 0) return r;
    const auto now = engine::Clock::now();
    if (cfg->ignore.match(*a) || protection.match(*a)) return r;  // the engine never tracks them
    auto info = engine.source_info(*a, now);
    if (!info) {
        r.text += fmt::format("{}: no probe from it is remembered (none, or forgotten by the max_tracked_sources cap)\n", arg);
        return r;
    }
    const auto ago = std::chrono::duration_cast<std::chrono::seconds>(now - info->last_probe).count();
    r.text += fmt::format("{}: last probe {}s ago{}; {} probe{} counting toward scan_trigger; engine: {}\n", arg, ago,
                          info->last_rate_limited ? ", RATE-LIMITED: the trigger fired but a ban-rate cap was reached "
                                                    "(dropped and logged, not banned)"
                                                  : ", not rate-limited",
                          info->count, info->count == 1 ? "" : "s", info->blocked ? "blocked" : "not blocked");
    return r;
}

ControlReply Service::Impl::cmd_ban(const std::string& arg, std::optional<std::chrono::seconds> t,
                                    const std::string& origin) {
    auto c = net::Cidr::parse(arg);
    if (!c) return {1, fmt::format("error: '{}' is not an IPv4/IPv6 address or CIDR\n", arg)};
    if (auto why = refuse_ban(*c, *cfg, protection)) return {1, fmt::format("error: refusing to ban {}: {}\n", arg, *why)};
    auto bt = t.value_or(cfg->ban_time);
    kernel::BanElement e{*c, std::nullopt};
    if (bt.count() > 0) e.timeout = bt;
    const int64_t now = wall_now();
    // Bans inside the new prefix would overlap it in the interval set: the
    // prefix replaces them in one transaction, as a /64 aggregation does.
    std::vector<net::Cidr> inside;
    for (const auto& p : store.within(*c, now, true))
        if (!(p == *c)) inside.push_back(p);
    if (!inside.empty()) {
        try {
            nft.replace_bans(inside, {e});
        } catch (const std::exception& ex) {
            return {1, fmt::format("error: cannot ban {}: {}\n", arg, ex.what())};
        }
        for (const auto& p : inside) store.end_ban(p, now, c->to_string());
    } else if (auto failed = install_bans({e}, now); !failed.empty()) {
        // A full set evicts its oldest detector ban for an admin's (or fail2ban's).
        return {1, fmt::format("error: cannot ban {}: {}\n", arg, failed.begin()->second)};
    }
    store.record_ban(*c, origin, now, bt.count());
    save_state_soon();
    if (c->prefix == c->addr.bits()) {
        auto steady = engine::Clock::now();
        std::optional<engine::TimePoint> until;
        if (bt.count() > 0) until = steady + bt;
        engine.mark_blocked(c->addr, steady, until);
    }
    event("ban", {{"prefix", c->to_string()}, {"origin", origin}, {"ban_seconds", bt.count()}});
    log.write(fmt::format("portsentry-nfq: {} banned by {} for {}", c->to_string(), origin,
                           bt.count() > 0 ? fmt::format("{}s", bt.count()) : std::string("ever")));
    return {0, fmt::format("banned {}{}\n", c->to_string(),
                           bt.count() > 0 ? fmt::format(" for {}s", bt.count()) : std::string(" permanently"))};
}

ControlReply Service::Impl::cmd_unban(const std::string& arg) {
    auto c = net::Cidr::parse(arg);
    if (!c) return {1, fmt::format("error: '{}' is not an IPv4/IPv6 address or CIDR\n", arg)};
    const int64_t now = wall_now();
    const auto lifted = store.within(*c, now, true);
    // Kernel first: if it refuses, the table still describes what is banned.
    try {
        nft.del_bans(unban_elements(lifted, *c));
    } catch (const std::exception& e) {
        return {1, fmt::format("error: cannot unban {}: {}\n", arg, e.what())};
    }
    erase_within(*c, now);
    if (c->prefix == c->addr.bits()) engine.forget(c->addr);
    save_state_soon();
    log.write(fmt::format("portsentry-nfq: {} unbanned by admin ({} ban{} lifted)", c->to_string(), lifted.size(),
                          lifted.size() == 1 ? "" : "s"));
    event("unban", {{"prefix", c->to_string()}, {"origin", "admin"}, {"lifted", lifted.size()}});
    return {0, render_unban(store, *c, lifted, now)};
}

std::vector<net::Cidr> unban_elements(const std::vector<net::Cidr>& lifted, const net::Cidr& c) {
    // The kernel may hold `c` without the table knowing (added by hand with
    // nft): delete it in any case.
    std::vector<net::Cidr> del = lifted;
    if (std::find(del.begin(), del.end(), c) == del.end()) del.push_back(c);
    return del;
}

std::string render_unban(const BanStore& store, const net::Cidr& c, const std::vector<net::Cidr>& lifted, int64_t now) {
    std::string s;
    if (lifted.empty()) {
        s = fmt::format("unbanned {} (it was not in the ban table)\n", c.to_string());
    } else {
        s = fmt::format("unbanned {}: {} ban{} lifted:", c.to_string(), lifted.size(), lifted.size() == 1 ? "" : "s");
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

std::optional<std::string> refuse_ban(const net::Cidr& c, const config::Config& cfg, const engine::Protection& protection) {
    // Inside a protected prefix: the whole ban would be exempt.
    for (const auto& p : cfg.ignore.entries())
        if (p.prefix <= c.prefix && p.contains(c.addr)) return fmt::format("it is protected (ignore list {})", p.to_string());
    if (auto why = protection.match(c.addr)) {
        for (const auto& p : protection.prefixes())
            if (p.prefix <= c.prefix && p.contains(c.addr)) return fmt::format("it is protected: {}", engine::to_string(*why));
    }
    // Over a protected address: @never would exempt it anyway, and the admin
    // should know the ban has a hole.
    for (const auto& p : cfg.ignore.entries())
        if (c.contains(p.addr) && p.prefix >= c.prefix)
            return fmt::format("it covers {}, protected: ignore list", p.to_string());
    for (const auto& p : protection.prefixes())
        if (c.contains(p.addr) && p.prefix >= c.prefix)
            return fmt::format("it covers {}, protected: {}", p.to_string(), engine::to_string(*protection.match(p.addr)));
    return std::nullopt;
}

ControlReply render_list(const BanStore& store, bool json) {
    const int64_t now = wall_now();
    std::string s;
    if (json) {
        s = "[";
        bool first = true;
        for (const auto& [p, r] : store.records()) {
            if (!r.active(now)) continue;
            s += fmt::format("{}{{\"prefix\":\"{}\",\"origin\":\"{}\",\"first_seen\":{},\"last_seen\":{},\"expires\":{},"
                             "\"count\":{},\"last_port\":{},\"last_proto\":\"{}\"}}",
                             first ? "" : ",", p.to_string(), r.origin, r.first_seen, r.last_seen, r.expires, r.count,
                             r.last_port, r.last_proto);
            first = false;
        }
        s += "]\n";
        return {0, s};
    }
    s = fmt::format("{:<40} {:<9} {:>5} {:<25} {}\n", "PREFIX", "ORIGIN", "COUNT", "EXPIRES", "LAST");
    for (const auto& [p, r] : store.records()) {
        if (!r.active(now)) continue;
        s += fmt::format("{:<40} {:<9} {:>5} {:<25} {}\n", p.to_string(), r.origin, r.count, format_epoch(r.expires),
                         r.last_port ? fmt::format("{}/{} {}", r.last_proto, r.last_port, r.last_type) : "-");
    }
    return {0, s};
}

ControlReply render_why(const BanStore& store, const config::Config& cfg, const std::string& arg,
                        const engine::Protection* protection) {
    auto a = net::IpAddr::parse(arg);
    if (!a) return {1, fmt::format("error: '{}' is not an IPv4/IPv6 address\n", arg)};
    const int64_t now = wall_now();
    std::string s;
    bool is_protected = true;
    if (auto m = cfg.ignore.match(*a))
        s += fmt::format("{}: protected: ignore list ({})\n", arg, m->to_string());
    else if (auto why = protection ? protection->match(*a) : std::nullopt)
        s += fmt::format("{}: protected: {}\n", arg, engine::to_string(*why));
    else {
        s += fmt::format("{}: not protected\n", arg);
        is_protected = false;
    }
    const BanRecord* h = store.find(net::Cidr::host(*a));  // the host's own record, active or history
    if (const auto* r = store.covering(*a, now)) {
        s += fmt::format("{}: banned as {} by {} since {} until {} ({} time{})\n", arg, r->prefix.to_string(),
                         r->origin, format_epoch(r->first_seen), format_epoch(r->expires), r->count,
                         r->count == 1 ? "" : "s");
        if (r->last_port)
            s += fmt::format("{}: banned for {} port {} ({}) at {}\n", arg, r->last_proto, r->last_port, r->last_type,
                             format_epoch(r->last_seen));
    } else {
        s += fmt::format("{}: not banned\n", arg);
        if (h && h->count > 0)
            s += fmt::format("{}: banned {} time{} before; the last ban ({}) ended {}{}\n", arg, h->count,
                             h->count == 1 ? "" : "s", h->origin, format_epoch(h->expires),
                             h->ended.empty() ? std::string()
                             : h->ended == "evicted" ? std::string(" (evicted: the ban set was full)")
                                                     : " (superseded by " + h->ended + ")");
    }
    if (is_protected) return {0, s};  // never banned by a detection: no escalation to tell
    // Escalation: what the next detection of this address would cost it.
    const auto next = engine::BanPolicy::from_settings(engine_settings(cfg)).duration((h ? h->count : 0) + 1);
    const std::string len = next.count() == 0 ? std::string("permanently") : fmt::format("for {}s", next.count());
    if (h && h->active(now))
        s += fmt::format("{}: if it offends again after this ban, it is banned {}\n", arg, len);
    else
        s += fmt::format("{}: a new detection would ban it {}\n", arg, len);
    return {0, s};
}

// ---------------------------------------------------------------------------

Service::Service(const Options& o) {
    auto cfg = std::make_unique<config::Config>(load_config(o));
    impl_ = std::make_unique<Impl>(o, std::move(cfg));
    auto& m = *impl_;
    m.lock = LockFile::acquire(m.cfg->control_socket + ".lock", false);
    if (!m.lock.locked())
        throw std::runtime_error("another portsentry-nfq already runs with control socket " + m.cfg->control_socket);
    m.responder = std::make_unique<actions::Responder>(*m.cfg, m.log);
    m.open_events();

    std::vector<std::string> warnings;
    m.store.load(&warnings);
    for (const auto& w : warnings) m.log.write("portsentry-nfq: " + w);
    m.forget_history();

    auto available = m.nft.probe_backends();
    std::string why;
    m.backend = choose_backend(m.cfg->steer, available, &why);
    std::string avail;
    for (auto b : available) avail += std::string(avail.empty() ? "" : ",") + kernel::to_string(b);
    m.log.write(fmt::format("portsentry-nfq: steering backend: {} ({}; kernel offers: {})",
                             kernel::to_string(m.backend), why, avail));
    if (m.backend == kernel::Backend::nflog)
        m.log.write("portsentry-nfq: nflog backend has no inline verdict: the rule itself drops probes when "
                   "blocking is on, and the first probes of a scan may be answered before the ban lands");
    // Bind the queue before the rule exists is not possible with `bypass`
    // semantics in mind: order ruleset first, then the queue; packets that
    // arrive in between are accepted by bypass (fail-open), never lost.
    // Watch first, then gather: a change in between is seen by the watch.
    m.protect_watch = std::make_unique<ProtectWatch>(m.protect_sources);
    m.protection = gather(*m.cfg, m.protect_sources);
    m.log.write("portsentry-nfq: protected (never banned): " + protection_summary(m.protection));
    m.apply_ruleset();
    if (!m.opts.no_ruleset) {
        try {
            m.monitor = std::make_unique<kernel::NftMonitor>(m.nft.portid());
        } catch (const std::exception& e) {
            m.log.write(fmt::format("portsentry-nfq: {}: a removed table is restored by the 1 s check only", e.what()));
        }
    }
    m.open_source();
    m.seed_engine();
    m.open_tripwires();
    m.control = std::make_unique<ControlServer>(m.cfg->control_socket);
    // The queue is bound: a start-up change (trimmed or forgotten records)
    // is saved by a pass like any other, never in one go on the loop.
    m.save_state();
}

Service::~Service() = default;

int Service::source_fd() const { return impl_->source->fd(); }
int Service::control_fd() const { return impl_->control->fd(); }
std::vector<int> Service::protect_fds() const { return impl_->protect_watch->fds(); }

void Service::on_protect(int fd) {
    auto& m = *impl_;
    if (m.protect_watch->drain(fd)) m.protect_dirty = true;
    if (m.protect_dirty && engine::Clock::now() - m.protect_last >= Impl::kProtectMinGap) m.refresh_protection();
}

std::vector<int> Service::tripwire_fds() const {
    std::vector<int> v;
    for (const auto& t : impl_->tripwires) v.push_back(t.fd);
    return v;
}

void Service::log_ready() {
    auto& m = *impl_;
    m.log.write(fmt::format("portsentry-nfq: ready: tcp {} ({}), udp {} ({}), {} bans restored{}",
                             config::to_string(m.cfg->tcp.mode), m.cfg->tcp.block, config::to_string(m.cfg->udp.mode),
                             m.cfg->udp.block, m.active_ban_count(wall_now()), m.cfg->dry_run ? ", DRY RUN" : ""));
}

void Service::on_packets() {
    auto& m = *impl_;
    try {
        m.source->process([&](std::span<const uint8_t> l3) { return m.on_packet(l3); });
    } catch (const std::exception& e) {
        m.log.write(fmt::format("portsentry-nfq: packet source: {}", e.what()));
    }
    m.flush_pending();
}

void Service::on_control() {
    auto& m = *impl_;
    m.control->serve_one([&](const std::string& line) { return m.command(line); });
}

void Service::on_tick_children() { impl_->responder->reap(); }

bool Service::background_pending() const { return impl_->state_pass.has_value(); }

void Service::on_background() { impl_->continue_state_pass(); }

void Service::note_turn(const char* what, std::chrono::steady_clock::duration took) {
    auto& m = *impl_;
    if (took > m.longest_turn) {
        m.longest_turn = took;
        m.longest_turn_what = what;
    }
    if (took > Impl::kSlowTurn) ++m.slow_turns;
}

void Service::on_tick() {
    auto& m = *impl_;
    m.responder->reap();
    if (m.events) m.events->flush(std::time(nullptr), actions::Clock::now());
    if (m.protect_dirty) m.refresh_protection();
    m.forget_history();
    m.save_state();
    // Fallback for lost notifications (monitor overrun or not bound).
    if (!m.opts.no_ruleset) {
        try {
            if (!m.nft.ruleset_intact()) m.restore_ruleset("table inet portsentry was changed by someone else");
        } catch (const std::exception& e) {
            m.log.write(fmt::format("portsentry-nfq: cannot check ruleset: {}", e.what()));
        }
    }
}

int Service::monitor_fd() const { return impl_->monitor ? impl_->monitor->fd() : -1; }

void Service::on_monitor() {
    auto& m = *impl_;
    // `nft flush ruleset` (Debian's nftables.conf on every reload), `nft
    // flush table`, a deleted chain or set: restore at once, not on the tick.
    // A notification overrun also reports true: check before rebuilding, or
    // a restore's own element notifications would trigger the next one.
    const bool changed = m.monitor->drain();
    if (auto removed = m.monitor->take_removed_bans(); !removed.empty()) m.forget_foreign_unbans(removed);
    if (!changed) return;
    try {
        if (m.nft.ruleset_intact()) return;
    } catch (const std::exception& e) {
        m.log.write(fmt::format("portsentry-nfq: cannot check ruleset: {}", e.what()));
    }
    m.restore_ruleset("table inet portsentry was changed by someone else");
}

void Service::on_tripwire(size_t index) { impl_->handle_tripwire(index); }

void Service::reload() {
    auto& m = *impl_;
    std::unique_ptr<config::Config> next;
    try {
        next = std::make_unique<config::Config>(load_config(m.opts));
    } catch (const config::ConfigError& e) {
        for (const auto& d : e.diagnostics()) m.log.write("portsentry-nfq: reload: " + d.to_string());
        m.log.write("portsentry-nfq: reload failed: keeping the running configuration");
        return;
    } catch (const std::exception& e) {
        m.log.write(fmt::format("portsentry-nfq: reload failed ({}): keeping the running configuration", e.what()));
        return;
    }
    auto old = std::move(m.cfg);
    m.cfg = std::move(next);
    // Switches and the ignore list may have changed: a fresh snapshot.
    auto old_protection = std::move(m.protection);
    m.protection = gather(*m.cfg, m.protect_sources);
    try {
        m.apply_ruleset();
    } catch (const std::exception& e) {
        m.log.write(fmt::format("portsentry-nfq: reload: ruleset rejected ({}): keeping the running configuration",
                                e.what()));
        m.cfg = std::move(old);
        m.protection = std::move(old_protection);
        return;
    }
    if (!(m.protection == old_protection))
        m.log.write("portsentry-nfq: protected (never banned): " + protection_summary(m.protection));
    m.engine.reconfigure(engine_settings(*m.cfg));
    m.responder->reconfigure(*m.cfg);
    m.responder->reopen();
    m.open_events();
    if (m.cfg->queue_num != old->queue_num || m.cfg->nflog_group != old->nflog_group) m.open_source();
    m.log.write("portsentry-nfq: configuration reloaded from " + m.cfg->source_file);
}

void Service::shutdown(int signo) {
    auto& m = *impl_;
    m.save_state_now();
    // The table stays: bans keep dropping, and `bypass` answers probes again.
    m.log.write(fmt::format("portsentry-nfq: exiting on {}; table inet portsentry and its bans stay in place",
                             signo == SIGTERM ? "SIGTERM" : "SIGINT"));
}

}  // namespace portsentry::daemon
