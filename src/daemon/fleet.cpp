#include "portsentry/daemon/fleet.hpp"

#include <algorithm>
#include <fmt/format.h>

#include "portsentry/config/secret.hpp"
#include "portsentry/daemon/fleet_wire.hpp"
#include "portsentry/engine/policy.hpp"

namespace portsentry::daemon {

namespace {

// Decisions keep their origin and scenario in the record's probe fields
// (origin "fleet"): last_proto = the decision's origin, last_type = its scenario.
constexpr const char* kFleetOrigin = "fleet";

// The set element of an installed prefix that ends at `end` (0: never).
kernel::BanElement element_of(const net::Cidr& p, int64_t end, int64_t now) {
    return {p, end ? std::optional(std::chrono::seconds(std::max<int64_t>(1, end - now))) : std::nullopt};
}

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

std::vector<std::pair<net::Cidr, int64_t>> Fleet::widest(int64_t now) const {
    std::vector<std::pair<net::Cidr, int64_t>> out;
    const net::Cidr* cover = nullptr;
    // Records are ordered by start address, a wider prefix before the
    // narrower ones that start with it: the widest prefixes are those no
    // earlier kept prefix contains.
    for (const auto& [p, r] : store_.records()) {
        if (!r.active(now)) continue;
        if (cover && cover->addr.family == p.addr.family && cover->contains(p.addr)) continue;
        cover = &p;
        out.emplace_back(p, r.expires);
    }
    return out;
}

std::vector<kernel::BanElement> Fleet::elements(int64_t now) const {
    std::vector<kernel::BanElement> out;
    for (const auto& [p, end] : widest(now)) out.push_back(element_of(p, end, now));
    return out;
}

void Fleet::applied(int64_t now) {
    touched_.clear();
    install(widest(now));
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
    client_ = std::make_unique<FleetClient>(std::move(s), log_, client_counters_);
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

std::optional<Fleet::Skip> Fleet::refuse(const FleetDecision& d, net::Cidr& out, int64_t now) const {
    if (d.type != "ban") return Skip::type;
    if (d.scope != "Ip" && d.scope != "ip" && d.scope != "Range" && d.scope != "range") return Skip::scope;
    auto p = fleet_wire::prefix_of(d);
    if (!p || d.seconds <= 0) return Skip::invalid;
    out = *p;
    if (protection_ && engine::refuse_ban(out, ignore_, *protection_)) return Skip::protected_;
    if (const BanRecord* own = local_.find(out); own && own->origin == "detector" && own->active(now)) return Skip::own;
    return std::nullopt;
}

void Fleet::put(const net::Cidr& c, const FleetDecision& d, int64_t now) {
    BanRecord r;
    const BanRecord* old = store_.find(c);
    if (old) r = *old;
    const int64_t until = now + d.seconds;
    if (r.count && r.active(now) && r.expires >= until && r.last_type == d.scenario) return;  // no news
    if (!old && store_.active_count(c.addr.family, now) >= settings_.fleet_set_size) {
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
        auto c = d.type == "ban" ? fleet_wire::prefix_of(d) : std::nullopt;
        if (c && store_.erase(*c) && !u.resync) uncover(*c, t);  // idempotent: the LAPI repeats deletions
    }
    std::vector<net::Cidr> wanted;
    for (const auto& d : u.added) {
        net::Cidr c;
        if (auto why = refuse(d, c, t)) {
            counters_.skipped[*why].inc();
            continue;
        }
        put(c, d, t);
        if (u.resync) wanted.push_back(c);
        else cover(c, t);
    }
    if (u.resync) {
        // Exactly what the LAPI holds: the rest goes.
        std::sort(wanted.begin(), wanted.end(), CidrLess{});
        std::vector<net::Cidr> gone;
        for (const auto& [p, r] : store_.records())
            if (!std::binary_search(wanted.begin(), wanted.end(), p, CidrLess{})) gone.push_back(p);
        for (const auto& p : gone) store_.erase(p);
    }
    const double kernel_ms = u.resync ? reconcile(t) : commit(t);
    if (u.resync) {
        // From the end of the HTTP response to the kernel's commit.
        const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - u.received).count();
        counters_.resync_seconds.set(ms / 1000);
        // Catch-up resyncs can come every few seconds: one line a minute.
        if (resync_logged_ && now.steady - *resync_logged_ < std::chrono::minutes(1)) return;
        resync_logged_ = now.steady;
        log_(fmt::format("fleet: resync: {} decisions in {:.1f} ms (parse {:.1f} ms, kernel {:.1f} ms); {} in the fleet table",
                         u.added.size(), ms, u.parse_ms, kernel_ms, store_.records().size()));
    }
}

// ---- the kernel's fleet sets -------------------------------------------------
// installed_ is what they hold: the widest active prefixes (disjoint), each
// with its end. Changes are made to installed_ first (inst_set/inst_erase
// remember each touched prefix's state before), then commit() sends the net
// difference in one transaction. Each change costs O(prefixes it touches):
// a delta or an expiry never walks the whole table.

void Fleet::touch(const net::Cidr& p) {
    if (touched_.count(p)) return;
    auto it = installed_.find(p);
    touched_[p] = it == installed_.end() ? std::nullopt : std::optional(it->second);
}

void Fleet::inst_set(const net::Cidr& p, int64_t end) {
    touch(p);
    if (auto it = installed_.find(p); it != installed_.end()) ends_.erase({it->second, p});
    installed_[p] = end;
    ends_.insert({end, p});
}

void Fleet::inst_erase(const net::Cidr& p) {
    touch(p);
    if (auto it = installed_.find(p); it != installed_.end()) {
        ends_.erase({it->second, p});
        installed_.erase(it);
    }
}

// `p` is active in the table: in the set unless a wider one holds it, and
// then it replaces the narrower ones it covers.
void Fleet::cover(const net::Cidr& p, int64_t now) {
    const BanRecord* r = store_.find(p);
    if (!r || !r->active(now)) return;
    auto it = installed_.upper_bound(net::Cidr{p.addr, 255});
    if (it != installed_.begin()) {
        const auto [wide, end] = *std::prev(it);
        if (wide.prefix <= p.prefix && wide.contains(p.addr)) {
            if (wide == p && end != r->expires) inst_set(p, r->expires);
            return;
        }
    }
    std::vector<net::Cidr> inside;
    for (auto j = installed_.lower_bound(net::Cidr{p.addr, 0}); j != installed_.end() && p.contains(j->first.addr); ++j)
        inside.push_back(j->first);
    for (const auto& c : inside) inst_erase(c);
    inst_set(p, r->expires);
}

// `p` is no longer active: if it was in the set, the widest prefixes inside it take its place.
void Fleet::uncover(const net::Cidr& p, int64_t now) {
    if (!installed_.count(p)) return;
    inst_erase(p);
    const net::Cidr* wide = nullptr;
    for (const auto& c : store_.within(p, now, true)) {
        if (wide && wide->contains(c.addr)) continue;
        const BanRecord* r = store_.find(c);
        wide = &r->prefix;
        inst_set(c, r->expires);
    }
}

double Fleet::commit(int64_t now) {
    std::vector<net::Cidr> del;
    std::vector<kernel::BanElement> add;
    for (const auto& [p, was] : touched_) {
        auto it = installed_.find(p);
        const bool is = it != installed_.end();
        if (was && (!is || it->second != *was)) del.push_back(p);
        if (is && (!was || it->second != *was)) add.push_back(element_of(p, it->second, now));
    }
    touched_.clear();
    return send(del, add);
}

// One transaction; if the kernel refuses it, element by element (a deleted
// one may have timed out already): one refusal must not keep the others out.
double Fleet::send(const std::vector<net::Cidr>& del, const std::vector<kernel::BanElement>& add) {
    if (add.empty() && del.empty()) return 0;
    const auto t0 = std::chrono::steady_clock::now();
    if (kernel_) {
        try {
            auto batch = [&] { kernel_->replace_bans(del, add, kernel::kFleetSets); };
            if (quiet_ && add.size() + del.size() >= kQuietBatch) quiet_(batch);
            else batch();
        } catch (const std::exception&) {
            kernel_->del_bans(del, kernel::kFleetSets);
            for (const auto& r : kernel_->add_bans(add, kernel::kFleetSets)) {
                counters_.kernel_errors.inc();
                inst_erase(r.prefix);
                log_(fmt::format("fleet: {} not added to the fleet set: {}", r.prefix.to_string(), r.error.what()));
            }
            touched_.clear();
        }
    }
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

// A resync: the whole table against the whole set, as one merge of two
// sorted lists (no per-prefix bookkeeping: 100,000 entries at a time).
double Fleet::reconcile(int64_t now) {
    const auto want = widest(now);
    std::vector<net::Cidr> del;
    std::vector<kernel::BanElement> add;
    auto it = installed_.begin();
    for (const auto& [p, end] : want) {
        for (; it != installed_.end() && CidrLess{}(it->first, p); ++it) del.push_back(it->first);
        if (it != installed_.end() && it->first == p) {
            if (it->second != end) {
                del.push_back(p);
                add.push_back(element_of(p, end, now));
            }
            ++it;
        } else {
            add.push_back(element_of(p, end, now));
        }
    }
    for (; it != installed_.end(); ++it) del.push_back(it->first);
    touched_.clear();
    install(want);
    return send(del, add);
}

// installed_ and its end index, rebuilt from a sorted list in linear time.
void Fleet::install(const std::vector<std::pair<net::Cidr, int64_t>>& widest) {
    installed_.clear();
    for (const auto& [p, end] : widest) installed_.emplace_hint(installed_.end(), p, end);
    std::vector<std::pair<int64_t, net::Cidr>> by_end;
    by_end.reserve(widest.size());
    for (const auto& [p, end] : widest) by_end.emplace_back(end, p);
    std::sort(by_end.begin(), by_end.end(), EndLess{});
    ends_ = decltype(ends_)(by_end.begin(), by_end.end());
}

void Fleet::tick(const Now& now) {
    store_.forget(now.wall, 0, 0);
    std::vector<net::Cidr> ended;
    // Permanent entries (end 0) sort first and never end.
    for (auto it = ends_.lower_bound({1, net::Cidr{}}); it != ends_.end() && it->first <= now.wall; ++it)
        ended.push_back(it->second);
    for (const auto& p : ended) uncover(p, now.wall);
    if (!ended.empty()) commit(now.wall);
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
