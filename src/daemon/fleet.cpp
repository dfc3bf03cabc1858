#include "portsentry/daemon/fleet.hpp"

#include <algorithm>
#include <fmt/format.h>

#include "portsentry/config/secret.hpp"
#include "portsentry/engine/policy.hpp"

namespace portsentry::daemon {

namespace {

// Decisions keep their origin and scenario in the record's probe fields
// (origin "fleet"): last_proto = the decision's origin, last_type = its scenario.
constexpr const char* kFleetOrigin = "fleet";

}  // namespace

Fleet::Fleet(Loop& loop, kernel::BanTable* kernel, const BanStore& local, LogFn log, const std::string& state_file)
    : loop_(loop),
      kernel_(kernel),
      local_(local),
      log_(std::move(log)),
      store_(state_file + ".fleet"),
      saver_(store_, log_),
      queue_path_(state_file + ".push") {}

Fleet::~Fleet() {
    client_.reset();  // joined before the loop forgets its fd
}

void Fleet::load(int64_t now) {
    std::vector<std::string> warnings;
    store_.load(&warnings);
    for (const auto& w : warnings) log_("fleet: " + w);
    store_.forget(now, 0, 0);  // ended decisions are not remembered: the LAPI keeps history
    saver_.start();
    loop_.add_idle("fleet state serializing", [this] { return saver_.pending(); },
                   [this](const Now& n) { saver_.step(n.steady); });
}

std::vector<kernel::BanElement> Fleet::elements(int64_t now) const {
    std::vector<kernel::BanElement> out;
    const net::Cidr* cover = nullptr;
    // Records are ordered by start address, a wider prefix before the
    // narrower ones that start with it: the widest prefixes are those no
    // earlier kept prefix contains.
    for (const auto& [p, r] : store_.records()) {
        if (!r.active(now)) continue;
        if (cover && cover->addr.family == p.addr.family && cover->contains(p.addr)) continue;
        cover = &p;
        out.push_back({p, r.expires ? std::optional(std::chrono::seconds(std::max<int64_t>(1, r.expires - now)))
                                    : std::nullopt});
    }
    return out;
}

void Fleet::applied(int64_t now) {
    installed_.clear();
    for (const auto& e : elements(now))
        installed_[e.prefix] = e.timeout ? now + e.timeout->count() : 0;
}

void Fleet::configure(const config::Config& cfg, const engine::Protection* protection) {
    protection_ = protection;
    ignore_ = cfg.ignore.entries();
    ban_time_max_ = cfg.ban_time_max.count();
    if (cfg.crowdsec == settings_ && (client_ != nullptr) == cfg.crowdsec.enabled()) return;
    if (client_) loop_.remove(client_->fd());
    client_.reset();
    settings_ = cfg.crowdsec;
    if (!settings_.enabled()) return;
    FleetClient::Settings s;
    s.urls = settings_.lapi_url;
    s.machine_id = settings_.machine_id;
    s.push = settings_.push;
    s.pull = settings_.pull;
    s.poll = settings_.poll_interval;
    s.resync = settings_.resync_interval;
    s.ca_file = settings_.ca_file;
    s.queue_path = settings_.push ? queue_path_ : "";
    // Read at each (re)start, never logged.
    if (settings_.push) s.password = config::read_secret_file(settings_.password_file);
    if (settings_.pull) s.bouncer_key = config::read_secret_file(settings_.bouncer_key_file);
    client_ = std::make_unique<FleetClient>(std::move(s), log_);
    loop_.add(client_->fd(), "fleet", [this](const Now& n) {
        for (auto& u : client_->take_updates()) apply(std::move(u), n);
    });
    log_(fmt::format("fleet: LAPI {}{}{}, polling every {} ms", fmt::join(settings_.lapi_url, " then "),
                     settings_.push ? (settings_.push_only_proven ? "; pushing handshake-proven bans" : "; pushing bans")
                                    : "",
                     settings_.pull ? "; pulling decisions into @fleet/@fleet6" : "", settings_.poll_interval.count()));
}

void Fleet::detected(const BanRecord& r, bool proven, int64_t now) {
    if (!client_ || !settings_.push || r.origin != "detector") return;
    if (settings_.push_only_proven && !proven) return;
    FleetAlert a;
    a.prefix = r.prefix;
    a.at = now;
    a.until = r.expires ? r.expires : now + ban_time_max_;
    a.scan = r.last_type.empty() ? "scan" : r.last_type;
    a.proto = r.last_proto;
    a.port = r.last_port;
    client_->push(std::move(a));
}

void Fleet::unbanned(const net::Cidr& c) {
    if (client_ && settings_.push) client_->forget_pushed(c);
}

void Fleet::skip(Skip why, const FleetDecision& d) {
    counters_.skipped[why].inc();
    (void)d;
}

std::optional<Fleet::Skip> Fleet::refuse(const FleetDecision& d, net::Cidr& out, int64_t now) const {
    if (d.type != "ban") return Skip::type;
    if (d.scope != "Ip" && d.scope != "ip" && d.scope != "Range" && d.scope != "range") return Skip::scope;
    if (d.scope == "Ip" || d.scope == "ip") {
        auto a = net::IpAddr::parse(d.value);
        if (!a) return Skip::invalid;
        out = net::Cidr::host(a->unmapped());
    } else {
        auto c = net::Cidr::parse(d.value);
        if (!c) return Skip::invalid;
        out = *c;
    }
    if (d.seconds <= 0) return Skip::invalid;
    if (protection_ && engine::refuse_ban(out, ignore_, *protection_)) return Skip::protected_;
    if (const BanRecord* own = local_.find(out); own && own->origin == "detector" && own->active(now)) return Skip::own;
    return std::nullopt;
}

void Fleet::put(const net::Cidr& c, const FleetDecision& d, int64_t now) {
    BanRecord r;
    if (const BanRecord* old = store_.find(c)) r = *old;
    const int64_t until = now + d.seconds;
    if (r.count && r.active(now) && r.expires >= until && r.last_type == d.scenario) return;  // no news
    if (!store_.find(c) && store_.active_count(c.addr.family, now) >= settings_.fleet_set_size) {
        counters_.skipped[Skip::full].inc();
        if (now - full_logged_ >= 10) {
            full_logged_ = now;
            log_(fmt::format("fleet: the fleet set is full ({} entries, crowdsec.fleet_set_size): {} and later "
                             "decisions skipped",
                             settings_.fleet_set_size, c.to_string()));
        }
        return;
    }
    r.prefix = c;
    r.origin = kFleetOrigin;
    if (!r.count) r.first_seen = now;
    r.last_seen = now;
    r.expires = until;
    r.count += 1;
    r.last_proto = d.origin;
    r.last_type = d.scenario;
    store_.put(std::move(r));
    counters_.pulled.inc();
}

void Fleet::apply(FleetUpdate u, const Now& now) {
    const int64_t t = now.wall;
    // Deletions first: a value deleted and decided again in one window
    // ends banned (the stream lists each value once per side).
    for (const auto& d : u.deleted) {
        net::Cidr c;
        if (d.type != "ban") continue;
        if (d.scope == "Ip" || d.scope == "ip") {
            auto a = net::IpAddr::parse(d.value);
            if (!a) continue;
            c = net::Cidr::host(a->unmapped());
        } else if (auto r = net::Cidr::parse(d.value)) {
            c = *r;
        } else {
            continue;
        }
        store_.erase(c);  // idempotent: the LAPI repeats deletions
    }
    std::vector<net::Cidr> wanted;
    for (const auto& d : u.added) {
        net::Cidr c;
        if (auto why = refuse(d, c, t)) {
            skip(*why, d);
            continue;
        }
        put(c, d, t);
        if (u.resync) wanted.push_back(c);
    }
    if (u.resync) {
        // Exactly what the LAPI holds: the rest goes.
        std::sort(wanted.begin(), wanted.end(), CidrLess{});
        std::vector<net::Cidr> gone;
        for (const auto& [p, r] : store_.records())
            if (!std::binary_search(wanted.begin(), wanted.end(), p, CidrLess{})) gone.push_back(p);
        for (const auto& p : gone) store_.erase(p);
    }
    const double kernel_ms = reconcile(t);
    if (u.resync) {
        // From the end of the HTTP response to the kernel's commit.
        const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - u.received).count();
        counters_.resync_seconds.set(ms / 1000);
        log_(fmt::format("fleet: resync: {} decisions in {:.1f} ms (parse {:.1f} ms, kernel {:.1f} ms); {} in the fleet table",
                         u.added.size(), ms, u.parse_ms, kernel_ms, store_.records().size()));
    }
}

// The kernel sets follow the table: one transaction deletes what is no
// longer a widest prefix (or changed its end) and adds what now is.
double Fleet::reconcile(int64_t now) {
    std::map<net::Cidr, int64_t, CidrLess> want;
    std::vector<kernel::BanElement> add;
    for (auto& e : elements(now)) {
        const int64_t end = e.timeout ? now + e.timeout->count() : 0;
        want[e.prefix] = end;
        auto it = installed_.find(e.prefix);
        // An end within a second is the same end (seconds are rounded).
        if (it == installed_.end() || std::llabs(it->second - end) > 1) add.push_back(e);
    }
    std::vector<net::Cidr> del;
    for (const auto& [p, end] : installed_) {
        auto it = want.find(p);
        if (it == want.end() || std::llabs(it->second - end) > 1) del.push_back(p);
    }
    if (add.empty() && del.empty()) return 0;
    const auto t0 = std::chrono::steady_clock::now();
    if (kernel_) {
        try {
            kernel_->replace_bans(del, add, kernel::kFleetSets);
        } catch (const std::exception& e) {
            // Element by element: one refusal must not keep the others out.
            counters_.kernel_errors.inc();
            kernel_->del_bans(del, kernel::kFleetSets);
            for (const auto& r : kernel_->add_bans(add, kernel::kFleetSets)) {
                want.erase(r.prefix);
                log_(fmt::format("fleet: {} not added to the fleet set: {}", r.prefix.to_string(), r.error.what()));
            }
        }
    }
    installed_ = std::move(want);
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

void Fleet::tick(const Now& now) {
    if (store_.forget(now.wall, 0, 0) > 0 ||
        (!installed_.empty() && std::any_of(installed_.begin(), installed_.end(), [&](const auto& kv) {
             return kv.second != 0 && kv.second <= now.wall;
         })))
        reconcile(now.wall);
    saver_.tick(now.steady);
}

std::optional<std::string> Fleet::why(const net::IpAddr& a, int64_t now) const {
    const BanRecord* r = store_.covering(a, now);
    if (!r) return std::nullopt;
    return fmt::format("{}: fleet ban as {}: CrowdSec decision (origin {}, scenario {}) pulled from the LAPI, "
                       "until {}; dropped by @{}\n",
                       a.to_string(), r->prefix.to_string(), r->last_proto, r->last_type, format_epoch(r->expires),
                       a.is_v6() ? kernel::kFleetSets.v6 : kernel::kFleetSets.v4);
}

}  // namespace portsentry::daemon
