#include "portsentry/engine/engine.hpp"

#include <algorithm>
#include <utility>

namespace portsentry::engine {

namespace {

// splitmix64: spreads a 64-bit seed into the 128-bit SipHash key, so nearby
// seeds give unrelated keys.
uint64_t splitmix64(uint64_t& x) noexcept {
    uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

std::array<uint8_t, 16> hash_key(uint64_t seed) noexcept {
    std::array<uint8_t, 16> k{};
    uint64_t state = seed;
    for (int half = 0; half < 2; ++half) {
        const uint64_t v = splitmix64(state);
        for (int b = 0; b < 8; ++b) k[half * 8 + b] = static_cast<uint8_t>(v >> (8 * b));
    }
    return k;
}

// BLOCK_* as the engine applies it: --dry-run acts as 0 everywhere; the config
// layer rejects values other than 0/1/2, anything else is treated as 1 (block)
// so a bad value errs on the protective side.
int effective_block(const Settings& cfg, net::L4 proto) noexcept {
    if (cfg.dry_run) return 0;
    const int b = (proto == net::L4::udp ? cfg.udp : cfg.tcp).block;
    return (b == 0 || b == 2) ? b : 1;
}

}  // namespace

Engine::Engine(Settings settings, uint64_t hash_seed)
    : settings_(std::move(settings)),
      // Keyed from the seed, not the default IpAddrHash (that one reads
      // entropy: a syscall the engine must not make).
      protected_logged_(16, net::IpAddrHash(hash_key(hash_seed))),
      table_(settings_.max_tracked_sources, hash_key(hash_seed)) {}

void Engine::reconfigure(Settings settings) {
    settings_ = std::move(settings);
    table_.set_capacity(settings_.max_tracked_sources);
    counters_.evictions = table_.evictions();
}

Decision Engine::on_probe(const net::Packet& p, bool watched, TimePoint now) noexcept {
    return decide(p.src, p.proto, classify(p), p.ip_options, watched, now);
}

// The port does not enter the decision: SCAN_TRIGGER counts probes from a
// source, repeats included, whatever port they hit.
Decision Engine::on_tripwire(const net::IpAddr& src, net::L4 proto, uint16_t /*port*/,
                             TimePoint now) noexcept {
    const ScanType t = proto == net::L4::udp ? ScanType::udp_tripwire : ScanType::tcp_connect;
    // A completed TCP handshake proves the source: exempt from the ban-rate
    // caps (docs/ARCHITECTURE.md, "Under attack"). A UDP datagram proves nothing.
    return decide(src, proto, t, false, true, now, proto == net::L4::tcp);
}

Decision Engine::decide(const net::IpAddr& raw_src, net::L4 proto, ScanType type,
                        bool ip_options, bool watched, TimePoint now, bool proven) noexcept {
    const Settings& cfg = settings_;
    ++counters_.packets;

    Decision d;
    d.type = type;
    d.ip_options = ip_options;
    d.block = effective_block(cfg, proto);
    d.ban_time = cfg.ban_time;

    auto finish = [this, &d](Decision::Outcome o, Verdict v) {
        d.outcome = o;
        d.verdict = v;
        ++(v == Verdict::drop ? counters_.drops : counters_.accepts);
        return d;
    };

    if (!watched) {
        ++counters_.not_watched;
        return finish(Decision::Outcome::not_watched, Verdict::accept);
    }
    // A dual-stack tripwire socket sees IPv4 peers as ::ffff:a.b.c.d; ignore
    // lists, state and bans are all keyed by the plain IPv4 address.
    const net::IpAddr src = raw_src.unmapped();
    if (!cfg.ignore.empty() && cfg.ignore.contains(src)) {
        ++counters_.ignored;
        return finish(Decision::Outcome::ignored, Verdict::accept);
    }
    // Protected: the kernel accepts these at prerouting (@never) before they
    // could be queued; one that still arrives (a race with a set update, the
    // nflog backend, a tripwire) is accepted and never counted towards a ban.
    if (protection_) {
        if (auto why = protection_->match(src)) {
            ++counters_.protected_hits;
            d.protect_reason = *why;
            if (!protected_log_due(src, now)) {
                d.log_suppressed = true;
                ++counters_.protected_log_suppressed;
            }
            return finish(Decision::Outcome::protected_addr, Verdict::accept);
        }
    }

    // BLOCK 1 and 2 drop every steered probe, so closed ports look filtered
    // while the count is still below the trigger; 0 and --dry-run change nothing.
    const Verdict verdict = d.block == 0 ? Verdict::accept : Verdict::drop;

    const uint32_t idx = table_.acquire(src);
    counters_.evictions = table_.evictions();
    detail::SourceState& st = table_.state(idx);
    const size_t pi = detail::SourceState::proto_index(proto);
    detail::ProtoTimes& pt = st.times[pi];
    detail::ProtoFlags& pf = st.flags[pi];
    st.last_probe = now;
    st.last_rate_limited = false;

    if (st.banned && !st.ban_permanent && now >= st.ban_until) st.banned = false;  // expired
    if (pf.blocked && !pf.block_permanent && now >= pt.block_until) pf.blocked = false;

    // Already blocked: an nft ban (it drops every protocol), an active
    // response for this protocol, or (BLOCK 0 / dry-run) this protocol
    // reported once this run — a host whose ban expired is new again, and a
    // host reported for the other protocol only is reported for this one
    // (1.2's separate TCP and UDP detectors and blocked files).
    if (st.banned || pf.blocked || (d.block == 0 && pf.reported_once)) {
        ++counters_.already_blocked;
        // One line per source and protocol per interval: at most two a
        // source, as 1.2's two detectors would have written.
        if (pf.already_logged && now - pt.last_already_log < already_blocked_log_interval) {
            d.log_suppressed = true;
            ++counters_.log_suppressed;
        } else {
            pf.already_logged = true;
            pt.last_already_log = now;
        }
        table_.settle(idx);
        return finish(Decision::Outcome::already_blocked, verdict);
    }

    // SCAN_TRIGGER window: a probe at or after window_start + scan_window starts
    // a new window (scan_window 0: counts never expire, as in 1.2).
    if (st.count > 0 && cfg.scan_window.count() > 0 && now - st.window_start >= cfg.scan_window)
        st.count = 0;
    if (st.count == 0) st.window_start = now;
    if (st.count < UINT32_MAX) ++st.count;

    const uint32_t trigger = std::max(1U, cfg.scan_trigger);
    if (st.count < trigger) {
        ++counters_.counting;
        table_.settle(idx);
        return finish(Decision::Outcome::counting, verdict);
    }

    // The trigger fired. A response beyond the ban-rate caps is withheld:
    // the probe is still dropped and the detection logged, but the source is
    // not marked blocked, so a real scanner is banned once a slot frees up.
    if (d.block != 0 && !proven && !take_ban_slot(src, now)) {
        ++counters_.rate_limited;
        st.count = 0;
        st.last_rate_limited = true;
        table_.settle(idx);
        return finish(Decision::Outcome::rate_limited, verdict);
    }
    ++counters_.reported;
    st.count = 0;  // a host reported again after its ban expired starts from zero
    pf.already_logged = false;
    const detail::ProtoFlags& of = st.flags[1 - pi];
    d.other_protocol = of.reported_once || (of.blocked && (of.block_permanent || now < st.times[1 - pi].block_until));
    if (d.block == 0) {
        pf.reported_once = true;
    } else {
        pf.blocked = true;
        pf.block_permanent = cfg.ban_time.count() == 0;
        pt.block_until = now + cfg.ban_time;
        d.run_cmd = cfg.kill_run_cmd;
        if (d.block == 1) {
            // Not banned here (checked above): this is the source's first
            // nft ban, never an extension or escalation of one.
            d.ban = cfg.kill_route != KillRoute::unset;
            d.custom_kill_route = cfg.kill_route == KillRoute::custom;
            d.hosts_deny = cfg.kill_hosts_deny;
            if (d.ban) {
                st.banned = true;
                st.ban_permanent = pf.block_permanent;
                st.ban_until = pt.block_until;
                st.ban_by = static_cast<int8_t>(pi);
            }
        }
    }
    table_.settle(idx);
    return finish(Decision::Outcome::reported, verdict);
}

bool Engine::take_ban_slot(const net::IpAddr& src, TimePoint now) noexcept {
    const Settings& cfg = settings_;
    if (cfg.ban_rate_per_second > 0) {
        if (now - ban_second_start_ >= std::chrono::seconds(1)) {
            ban_second_start_ = now;
            bans_this_second_ = 0;
        }
        if (bans_this_second_ >= cfg.ban_rate_per_second) return false;
    }
    if (cfg.ban_rate_per_prefix_per_minute > 0) {
        net::IpAddr prefix = src;  // /24 or /48: what one operator's network spans
        const size_t keep = src.is_v4() ? 3 : 6;
        for (size_t i = keep; i < prefix.bytes.size(); ++i) prefix.bytes[i] = 0;
        auto it = ban_prefixes_.find(prefix);
        if (it != ban_prefixes_.end() && now - it->second.start >= std::chrono::minutes(1)) {
            it->second = {now, 0};
        }
        if (it == ban_prefixes_.end()) {
            if (ban_prefixes_.size() >= ban_prefix_max_entries) {
                std::erase_if(ban_prefixes_,
                              [&](const auto& kv) { return now - kv.second.start >= std::chrono::minutes(1); });
                // Every slot is a live prefix: more distinct prefixes than the
                // global cap could ever ban in a minute; refuse rather than grow.
                if (ban_prefixes_.size() >= ban_prefix_max_entries) return false;
            }
            try {
                it = ban_prefixes_.emplace(prefix, PrefixWindow{now, 0}).first;
            } catch (...) {
                return false;
            }
        }
        if (it->second.bans >= cfg.ban_rate_per_prefix_per_minute) return false;
        ++it->second.bans;
    }
    if (cfg.ban_rate_per_second > 0) ++bans_this_second_;
    return true;
}

bool Engine::protected_log_due(const net::IpAddr& src, TimePoint now) noexcept {
    auto it = protected_logged_.find(src);
    if (it != protected_logged_.end()) {
        if (now - it->second < protected_log_interval) return false;
        it->second = now;
        return true;
    }
    if (protected_logged_.size() >= protected_log_max_sources) {
        // Forget sources whose hour is over; if none is, stay quiet rather
        // than grow (the probes are still counted in protected_hits).
        std::erase_if(protected_logged_, [&](const auto& kv) { return now - kv.second >= protected_log_interval; });
        if (protected_logged_.size() >= protected_log_max_sources) return false;
    }
    try {
        protected_logged_.emplace(src, now);
    } catch (...) {  // out of memory: log anyway, just without remembering
    }
    return true;
}

void Engine::mark_blocked(const net::IpAddr& a, TimePoint now, std::optional<TimePoint> until) {
    const uint32_t idx = table_.acquire(a.unmapped());
    counters_.evictions = table_.evictions();
    detail::SourceState& st = table_.state(idx);
    st.count = 0;
    // An escalation of the ban a report just asked for stays that report's
    // (forget(a, proto) lifts it if the report's responses failed).
    const bool reports = st.banned && st.ban_by >= 0;
    st.banned = !until || *until > now;
    st.ban_permanent = !until;
    st.ban_until = until.value_or(TimePoint{});
    if (!st.banned || !reports) st.ban_by = -1;
    if (!st.banned) {  // an expiry already past lifts every response with the ban
        for (auto& f : st.flags) f.blocked = false;
    }
    table_.settle(idx);
}

void Engine::forget(const net::IpAddr& a) { table_.erase(a.unmapped()); }

void Engine::forget(const net::IpAddr& a, net::L4 proto) {
    const uint32_t idx = table_.find(a.unmapped());
    if (idx == detail::SourceTable::npos) return;
    detail::SourceState& st = table_.state(idx);
    const size_t i = detail::SourceState::proto_index(proto);
    st.times[i] = detail::ProtoTimes{};
    st.flags[i] = detail::ProtoFlags{};
    if (st.ban_by == static_cast<int8_t>(i)) {  // the ban that report asked for
        st.banned = false;
        st.ban_by = -1;
    }
    table_.settle(idx);
}

bool Engine::is_blocked(const net::IpAddr& a, TimePoint now) const {
    return is_blocked(a, net::L4::tcp, now) || is_blocked(a, net::L4::udp, now);
}

bool Engine::is_blocked(const net::IpAddr& a, net::L4 proto, TimePoint now) const {
    const uint32_t idx = table_.find(a.unmapped());
    if (idx == detail::SourceTable::npos) return false;
    const detail::SourceState& st = table_.state(idx);
    const size_t i = detail::SourceState::proto_index(proto);
    return (st.banned && (st.ban_permanent || now < st.ban_until)) ||
           (st.flags[i].blocked && (st.flags[i].block_permanent || now < st.times[i].block_until));
}

std::optional<Engine::SourceInfo> Engine::source_info(const net::IpAddr& a, TimePoint now) const {
    const uint32_t idx = table_.find(a.unmapped());
    if (idx == detail::SourceTable::npos) return std::nullopt;
    const detail::SourceState& st = table_.state(idx);
    return SourceInfo{st.count, is_blocked(a, now), st.last_rate_limited, st.last_probe};
}

}  // namespace portsentry::engine
