#include "portsentry/daemon/ban_manager.hpp"

#include <netinet/in.h>

#include <algorithm>
#include <cerrno>
#include <fmt/format.h>

namespace portsentry::daemon {

namespace {

const char* plural(size_t n) { return n == 1 ? "" : "s"; }

kernel::BanElement element(const net::Cidr& p, std::chrono::seconds t) {
    kernel::BanElement e{p, std::nullopt};
    if (t.count() > 0) e.timeout = t;
    return e;
}

// ::ffff:198.51.100.7 names the IPv4 host: the kernel sees it in `banned`,
// and the ignore list and protection know it as IPv4.
net::Cidr plain(const net::Cidr& c) {
    const net::IpAddr a = c.addr.unmapped();
    if (a.family == c.addr.family || c.prefix < 96) return c;
    return net::Cidr{a, static_cast<uint8_t>(c.prefix - 96)};
}

std::optional<std::chrono::seconds> left_of(std::chrono::seconds t) {
    if (t.count() > 0) return t;
    return std::nullopt;
}

}  // namespace

std::vector<net::Cidr> unban_elements(const std::vector<net::Cidr>& lifted, const net::Cidr& c) {
    std::vector<net::Cidr> del = lifted;
    if (std::find(del.begin(), del.end(), c) == del.end()) del.push_back(c);
    return del;
}

size_t BanManager::origin_slot(std::string_view origin) {
    for (size_t i = 0; i + 1 < std::size(kOrigins); ++i)
        if (origin == kOrigins[i]) return i;
    return std::size(kOrigins) - 1;  // "other"
}

BanManager::BanManager(BanStore& store, kernel::BanTable* kernel, BanListener& listener, BanSettings settings,
                       const engine::Protection* protection, kernel::BanSets sets)
    : store_(store),
      kernel_(kernel),
      listener_(listener),
      settings_(std::move(settings)),
      protection_(protection),
      sets_(sets) {}

std::chrono::seconds BanManager::next_ban_time(const net::Cidr& prefix, std::chrono::seconds base) const {
    auto policy = settings_.policy;
    policy.base = base;
    const BanRecord* r = store_.find(prefix);
    return policy.duration((r ? r->count : 0) + 1);
}

std::vector<BanManager::Installed> BanManager::ban_detected(const std::vector<Detection>& d, int64_t now) {
    std::vector<Installed> out(d.size());
    std::vector<kernel::BanElement> bans;
    for (size_t i = 0; i < d.size(); ++i) {
        // Repeat offenders: the engine asked for ban_time; the table
        // remembers earlier offences across restarts.
        out[i].time = next_ban_time(net::Cidr::host(d[i].src), d[i].base);
        if (out[i].time != d[i].base) listener_.blocked(d[i].src, left_of(out[i].time));
        bans.push_back(element(net::Cidr::host(d[i].src), out[i].time));
    }
    auto failed = install(bans, now);
    for (size_t i = 0; i < d.size(); ++i) {
        const auto host = net::Cidr::host(d[i].src);
        if (auto f = failed.find(host); f != failed.end()) {
            out[i].error = f->second;
            continue;
        }
        const BanStore::Probe probe{d[i].port, d[i].proto, d[i].type};
        const BanRecord& rec = store_.record_ban(host, "detector", now, out[i].time.count(), &probe);
        ++counters_.bans_by_origin[origin_slot("detector")];
        listener_.detected(rec, d[i].proven, now);
    }
    if (!bans.empty()) listener_.changed(false);
    return out;
}

// Adds `bans`; a full set evicts its oldest ban and the refused element is
// tried again. Returns the prefixes still refused, with the kernel's words.
std::map<net::Cidr, std::string, CidrLess> BanManager::install(const std::vector<kernel::BanElement>& bans,
                                                                int64_t now) {
    std::map<net::Cidr, std::string, CidrLess> failed;
    if (bans.empty() || !kernel_) return failed;
    std::vector<net::Cidr> adding;
    for (const auto& b : bans) adding.push_back(b.prefix);
    for (const auto& r : kernel_->add_bans(bans, sets_)) {
        std::optional<std::string> error = r.error.what();
        const auto it = std::find_if(bans.begin(), bans.end(), [&](const auto& b) { return b.prefix == r.prefix; });
        for (int attempt = 0; it != bans.end() && r.error.error() == ENFILE && attempt < kMaxEvictTries; ++attempt) {
            if (!evict_oldest(r.prefix.addr.family, now, adding)) break;
            auto again = kernel_->add_bans({*it}, sets_);
            if (again.empty()) {
                error.reset();
                break;
            }
            error = again.front().error.what();
            if (again.front().error.error() != ENFILE) break;
        }
        if (!error) continue;
        ++counters_.ban_errors;
        failed[r.prefix] = *error;
    }
    return failed;
}

// A full set must never refuse a ban silently: the oldest ban makes room.
// False: nothing to evict.
bool BanManager::evict_oldest(uint8_t family, int64_t now, const std::vector<net::Cidr>& spare) {
    const BanRecord* r = store_.oldest_active(family, now, spare);
    if (!r) return false;
    const BanRecord victim = *r;
    size_t deleted = 0;
    try {
        deleted = kernel_->del_bans({victim.prefix}, sets_);
    } catch (const std::exception& e) {
        listener_.note(fmt::format("portsentry-nfq: cannot evict {} from the full ban set: {}",
                                  victim.prefix.to_string(), e.what()));
        return false;
    }
    forget_hosts(store_.within(victim.prefix, now, false));  // a /64's folded hosts too
    store_.end_ban(victim.prefix, now, "evicted");
    listener_.changed(false);
    if (deleted == 0) {
        // Already gone from the kernel (a stale record): no room was made,
        // so it is not an eviction; the caller tries the next oldest.
        listener_.note(fmt::format("portsentry-nfq: ban of {} was no longer in the kernel set: forgotten",
                                  victim.prefix.to_string()));
        return true;
    }
    ++counters_.evictions;
    listener_.event("evicted", {{"prefix", victim.prefix.to_string()}, {"origin", victim.origin},
                                {"banned_at", victim.last_seen}, {"set_size", settings_.set_size}});
    listener_.note(fmt::format("portsentry-nfq: ban set {} is full ({} bans): evicted the oldest ban, {} ({}, banned {})",
                              family == AF_INET6 ? sets_.v6 : sets_.v4, settings_.set_size,
                              victim.prefix.to_string(), victim.origin, format_epoch(victim.last_seen)));
    return true;
}

void BanManager::forget_hosts(const std::vector<net::Cidr>& prefixes) {
    for (const auto& p : prefixes)
        if (p.prefix == p.addr.bits()) listener_.forgotten(p.addr);
}

// Erases `c` and every record inside it, history too (an unban forgives),
// and lets the engine count those hosts afresh. Returns the active bans.
std::vector<net::Cidr> BanManager::erase_within(const net::Cidr& c, int64_t now) {
    forget_hosts(store_.within(c, now, false));
    return store_.erase_within(c, now);
}

void BanManager::aggregate(const std::vector<net::IpAddr>& v6_hosts, int64_t now) {
    for (const auto& a : v6_hosts) aggregate_one(a, now);
}

// The /64's ban never ends before any of its hosts' would have, and
// escalates on its own record.
void BanManager::aggregate_one(const net::IpAddr& host, int64_t now) {
    const net::Cidr p64 = engine::aggregation_prefix(host);
    if (const BanRecord* r = store_.find(p64); r && r->active(now)) return;
    const auto singles = store_.hosts_within(p64, now);
    if (!settings_.policy.aggregate(singles.size())) return;
    std::vector<net::Cidr> guarded = protection_ ? protection_->prefixes() : std::vector<net::Cidr>{};
    guarded.insert(guarded.end(), settings_.ignore.begin(), settings_.ignore.end());
    if (auto c = engine::conflicts(p64, guarded); !c.empty()) {
        listener_.note(fmt::format("portsentry-nfq: {} banned hosts in {}, but the /64 covers protected {}: "
                                  "keeping single bans",
                                  singles.size(), p64.to_string(), c.front().to_string()));
        return;
    }
    auto bt = next_ban_time(p64, settings_.policy.base);
    bool permanent = bt.count() == 0;
    const BanRecord* latest = nullptr;
    for (const auto& s : singles) {
        const BanRecord* r = store_.find(s);
        if (r->expires == 0) permanent = true;
        else bt = std::max(bt, std::chrono::seconds(r->expires - now));
        if (!latest || r->last_seen >= latest->last_seen) latest = r;
    }
    if (permanent) bt = std::chrono::seconds{0};
    if (kernel_) {
        try {
            kernel_->replace_bans(singles, {element(p64, bt)}, sets_);
        } catch (const std::exception& ex) {
            ++counters_.ban_errors;
            listener_.note(fmt::format("portsentry-nfq: cannot ban {} in place of its {} banned hosts: {}",
                                      p64.to_string(), singles.size(), ex.what()));
            return;
        }
    }
    const BanStore::Probe last{latest->last_port, latest->last_proto, latest->last_type};
    listener_.detected(store_.record_ban(p64, "detector", now, bt.count(), &last), false, now);
    for (const auto& s : singles) store_.end_ban(s, now, p64.to_string());
    ++counters_.aggregations;
    listener_.changed(false);
    nlohmann::ordered_json hosts = nlohmann::ordered_json::array();
    for (const auto& h : singles) hosts.push_back(h.to_string());
    listener_.event("aggregated", {{"prefix", p64.to_string()}, {"hosts", hosts}, {"ban_seconds", bt.count()}});
    listener_.note(fmt::format("portsentry-nfq: {} banned hosts inside {}: banned the /64 {} and dropped the single bans",
                              singles.size(), p64.to_string(),
                              permanent ? std::string("permanently") : fmt::format("for {}s", bt.count())));
}

BanManager::BanResult BanManager::ban(const net::Cidr& given, const std::string& origin,
                                      std::optional<std::chrono::seconds> time, int64_t now) {
    const net::Cidr c = plain(given);
    static const engine::Protection kNone;
    if (auto why = engine::refuse_ban(c, settings_.ignore, protection_ ? *protection_ : kNone))
        return {fmt::format("refusing to ban {}: {}", c.to_string(), *why), {}};
    const auto bt = time.value_or(settings_.policy.base);
    // Bans inside the new prefix would overlap it in the interval set: the
    // prefix replaces them in one transaction, as a /64 aggregation does.
    std::vector<net::Cidr> inside;
    for (const auto& p : store_.within(c, now, true))
        if (!(p == c)) inside.push_back(p);
    if (!inside.empty()) {
        if (kernel_) {
            try {
                kernel_->replace_bans(inside, {element(c, bt)}, sets_);
            } catch (const std::exception& ex) {
                ++counters_.ban_errors;
                return {fmt::format("cannot ban {}: {}", c.to_string(), ex.what()), {}};
            }
        }
        // Counted afresh once the prefix's ban ends (it may end first).
        forget_hosts(inside);
        for (const auto& p : inside) store_.end_ban(p, now, c.to_string());
    } else if (auto failed = install({element(c, bt)}, now); !failed.empty()) {
        return {fmt::format("cannot ban {}: {}", c.to_string(), failed.begin()->second), {}};
    }
    store_.record_ban(c, origin, now, bt.count());
    ++counters_.bans_by_origin[origin_slot(origin)];
    listener_.changed(true);
    if (c.prefix == c.addr.bits()) listener_.blocked(c.addr, left_of(bt));
    listener_.event("ban", {{"prefix", c.to_string()}, {"origin", origin}, {"ban_seconds", bt.count()}});
    listener_.note(fmt::format("portsentry-nfq: {} banned by {} for {}", c.to_string(), origin,
                              bt.count() > 0 ? fmt::format("{}s", bt.count()) : std::string("ever")));
    return {"", bt};
}

BanManager::UnbanResult BanManager::unban(const net::Cidr& given, int64_t now) {
    const net::Cidr c = plain(given);
    UnbanResult res;
    res.lifted = store_.within(c, now, true);
    if (kernel_) {
        try {
            kernel_->del_bans(unban_elements(res.lifted, c), sets_);
        } catch (const std::exception& e) {
            res.error = fmt::format("cannot unban {}: {}", c.to_string(), e.what());
            return res;
        }
    }
    erase_within(c, now);
    if (c.prefix == c.addr.bits()) listener_.forgotten(c.addr);
    counters_.unbans += res.lifted.size();
    listener_.changed(true);
    listener_.note(fmt::format("portsentry-nfq: {} unbanned by admin ({} ban{} lifted)", c.to_string(),
                              res.lifted.size(), plural(res.lifted.size())));
    listener_.event("unban", {{"prefix", c.to_string()}, {"origin", "admin"}, {"lifted", res.lifted.size()}});
    return res;
}

void BanManager::forget_foreign(const std::vector<net::IpAddr>& starts, int64_t now) {
    std::vector<net::Cidr> gone;
    for (const auto& a : starts)
        for (const auto& p : store_.starting_at(a, now)) {
            erase_within(p, now);
            gone.push_back(p);
            listener_.event("unban", {{"prefix", p.to_string()}, {"origin", "nft"}});
        }
    if (gone.empty()) return;
    counters_.foreign_unbans += gone.size();
    listener_.changed(false);
    std::string list;
    for (size_t i = 0; i < gone.size() && i < 16; ++i) list += " " + gone[i].to_string();
    if (gone.size() > 16) list += fmt::format(" ... and {} more", gone.size() - 16);
    listener_.note(fmt::format("portsentry-nfq: {} ban{} deleted outside portsentry-nfq (nft), treated as unban{}:{}",
                              gone.size(), plural(gone.size()), plural(gone.size()), list));
}

void BanManager::trim(int64_t now) {
    for (uint8_t family : {uint8_t(AF_INET), uint8_t(AF_INET6)}) {
        const size_t n = store_.active_count(family, now);
        if (n <= settings_.set_size) continue;
        const size_t excess = n - settings_.set_size;
        std::vector<net::Cidr> gone;
        for (const BanRecord* r : store_.eviction_order(family, now, excess)) gone.push_back(r->prefix);
        for (const auto& p : gone) {
            listener_.event("evicted", {{"prefix", p.to_string()}, {"set_size", settings_.set_size}});
            forget_hosts(store_.within(p, now, false));  // a /64's folded hosts too
            store_.end_ban(p, now, "evicted");
        }
        counters_.evictions += excess;
        listener_.changed(false);
        listener_.note(fmt::format("portsentry-nfq: the ban table holds {} {} bans but ban_set_size is {}: evicted "
                                  "the {} oldest",
                                  n, family == AF_INET6 ? "IPv6" : "IPv4", settings_.set_size, excess));
    }
}

void BanManager::forget_history(int64_t now) {
    if (store_.forget(now, settings_.policy.max.count(), settings_.set_size) > 0) listener_.changed(false);
}

void BanManager::replay_blocked(int64_t now) {
    for (const auto& [p, r] : store_.records()) {
        if (!r.active(now) || p.prefix != p.addr.bits()) continue;
        std::optional<std::chrono::seconds> left;
        if (auto l = r.remaining(now)) left = std::chrono::seconds(*l);
        listener_.blocked(p.addr, left);
    }
}

std::vector<kernel::BanElement> BanManager::active_elements(int64_t now) const {
    std::vector<kernel::BanElement> out;
    out.reserve(store_.records().size());  // a restore: up to millions, no regrowth
    for (const auto& [p, r] : store_.records()) {
        if (!r.active(now)) continue;
        kernel::BanElement e{p, std::nullopt};
        if (auto left = r.remaining(now)) e.timeout = std::chrono::seconds(*left);
        out.push_back(e);
    }
    return out;
}

size_t BanManager::active_count(int64_t now) const {
    return store_.active_count(AF_INET, now) + store_.active_count(AF_INET6, now);
}

}  // namespace portsentry::daemon
