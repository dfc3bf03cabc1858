#include "portsentry/daemon/fleet_client.hpp"
#include "portsentry/daemon/fleet_wire.hpp"

#include <curl/curl.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <ctime>
#include <fmt/format.h>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>

#include "portsentry/base/error.hpp"
#include "portsentry/base/files.hpp"

namespace portsentry::daemon {

using json = nlohmann::json;
using Steady = std::chrono::steady_clock;


// ---- the client thread's state ----------------------------------------------

struct FleetClient::Impl {
    struct Reply {
        long status = 0;  // 0: no HTTP answer (curl_error says why)
        std::string body, curl_error;
    };

    FleetClient& c;
    size_t url_i = 0;
    std::vector<CURL*> handles;
    std::string token;
    Steady::time_point token_at{};
    bool down = false;
    Steady::time_point down_since{};
    size_t down_url = 0;  // the URL that failed first
    bool need_resync = true;
    Steady::time_point next_poll{}, next_push{}, next_resync{}, next_catch_up{};
    static constexpr auto kSlowPoll = std::chrono::milliseconds(50);
    bool catch_up = false;  // a full poll is due as soon as next_catch_up allows
    int64_t max_id = 0;     // the highest decision id seen

    // Whether this answer skips decision ids (after the highest seen before).
    bool skipped_ids(const FleetUpdate& u, bool startup) {
        std::vector<int64_t> ids;
        for (const auto* l : {&u.added, &u.deleted})
            for (const auto& d : *l)
                if (d.id > (startup ? 0 : max_id)) ids.push_back(d.id);
        if (ids.empty()) return false;
        std::sort(ids.begin(), ids.end());
        bool gap = false;
        if (!startup)
            for (size_t i = 0; i < ids.size() && !gap; ++i) gap = ids[i] != (i ? ids[i - 1] : max_id) + 1 && (i == 0 || ids[i] != ids[i - 1]);
        max_id = std::max(max_id, ids.back());
        return gap;
    }
    int push_backoff = 0;
    std::string last_error;
    Steady::time_point last_error_at{};

    explicit Impl(FleetClient& cl) : c(cl) {
        for (size_t i = 0; i < c.s_.urls.size(); ++i) handles.push_back(curl_easy_init());
    }
    ~Impl() {
        for (auto* h : handles) curl_easy_cleanup(h);
    }

    const std::string& url() const { return c.s_.urls[url_i]; }

    static size_t on_body(char* p, size_t size, size_t n, void* out) {
        static_cast<std::string*>(out)->append(p, size * n);
        return size * n;
    }
    static int on_progress(void* self, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
        return static_cast<FleetClient*>(self)->stopping_.load() ? 1 : 0;
    }

    Reply request(const char* method, const std::string& path, const std::vector<std::string>& headers,
                  const std::string* body, long timeout_ms) {
        Reply r;
        CURL* h = handles[url_i];
        curl_easy_reset(h);
        const std::string full = url() + path;
        curl_easy_setopt(h, CURLOPT_URL, full.c_str());
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
        curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 2000L);
        curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
        curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");
        curl_easy_setopt(h, CURLOPT_USERAGENT, "portsentry-nfq/" PORTSENTRY_VERSION);
        if (!c.s_.ca_file.empty()) curl_easy_setopt(h, CURLOPT_CAINFO, c.s_.ca_file.c_str());
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &Impl::on_body);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, &r.body);
        curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, &Impl::on_progress);
        curl_easy_setopt(h, CURLOPT_XFERINFODATA, &c);
        curl_slist* hl = nullptr;
        for (const auto& x : headers) hl = curl_slist_append(hl, x.c_str());
        if (body) {
            hl = curl_slist_append(hl, "Content-Type: application/json");
            curl_easy_setopt(h, CURLOPT_POSTFIELDS, body->data());
            curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, static_cast<long>(body->size()));
        }
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
        const CURLcode rc = curl_easy_perform(h);
        curl_slist_free_all(hl);
        if (rc != CURLE_OK) {
            r.curl_error = curl_easy_strerror(rc);
            return r;
        }
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r.status);
        return r;
    }

    // Reachability, for the two log lines and fail-over.
    // One line when the LAPI goes away, one when a LAPI answers again; while
    // every URL fails they are tried in turn, silently.
    void reached() {
        c.counters_.up.set(1);
        if (!down) return;
        down = false;
        const auto secs = std::chrono::duration_cast<std::chrono::seconds>(Steady::now() - down_since).count();
        if (url_i == down_url)
            c.log_(fmt::format("fleet: LAPI {} is back (unreachable for {}s)", url(), secs));
        else
            c.log_(fmt::format("fleet: LAPI {} answers ({} unreachable for {}s)", url(), c.s_.urls[down_url], secs));
    }
    void unreachable(const std::string& why) {
        c.counters_.errors.inc();
        c.counters_.up.set(0);
        const bool first = !down;
        if (first) {
            down = true;
            down_since = Steady::now();
            down_url = url_i;
            c.log_(fmt::format("fleet: LAPI {} unreachable ({}); detection and local bans go on", url(), why));
        }
        if (c.s_.urls.size() > 1) {
            url_i = (url_i + 1) % c.s_.urls.size();
            token.clear();
            need_resync = true;
            c.counters_.failovers.inc();
            if (first) c.log_(fmt::format("fleet: using LAPI {}", url()));
        }
    }
    // HTTP errors: the LAPI is there but said no. One line per distinct
    // error per minute (a wrong key must not flood syslog).
    void http_error(const std::string& what) {
        c.counters_.errors.inc();
        const auto now = Steady::now();
        if (what == last_error && now - last_error_at < std::chrono::minutes(1)) return;
        last_error = what;
        last_error_at = now;
        c.log_("fleet: " + what);
    }

    bool login() {
        const json body = {{"machine_id", c.s_.machine_id},
                           {"password", c.s_.password},
                           {"scenarios", json::array({"portsentry/portscan"})}};
        const std::string b = body.dump();
        auto r = request("POST", "/v1/watchers/login", {}, &b, 5000);
        if (r.status == 0) return unreachable(r.curl_error), false;
        reached();
        if (r.status != 200) {
            http_error(fmt::format("LAPI {}: watcher login as {} refused: HTTP {}", url(), c.s_.machine_id, r.status));
            return false;
        }
        auto j = json::parse(r.body, nullptr, false);
        if (j.is_discarded() || !j.contains("token") || !j["token"].is_string()) {
            http_error(fmt::format("LAPI {}: watcher login: no token in the answer", url()));
            return false;
        }
        token = j["token"].get<std::string>();
        token_at = Steady::now();
        return true;
    }
    bool have_token() {
        // Tokens last an hour (CROWDSEC.md): renewed well before.
        if (!token.empty() && Steady::now() - token_at < std::chrono::minutes(45)) return true;
        return login();
    }
    // A request with the watcher's JWT; a 401 (a restarted LAPI voids
    // tokens) logs in again and retries once.
    Reply authed(const char* method, const std::string& path, const std::string* body) {
        Reply r;
        for (int attempt = 0; attempt < 2; ++attempt) {
            if (!have_token()) return r;
            r = request(method, path, {"Authorization: Bearer " + token}, body, 10000);
            if (r.status != 401) break;
            token.clear();
        }
        if (r.status == 0 && !r.curl_error.empty()) unreachable(r.curl_error);
        else if (r.status != 0) reached();
        return r;
    }

    void poll();
    void push_batch();
    bool stored_already(const FleetAlert& a);
    bool delete_pushed(const net::Cidr& c);  // false: to be tried again
    std::vector<net::Cidr> unbans_waiting;  // deletions the LAPI could not take yet
    void save_queue();
};

void FleetClient::Impl::poll() {
    const bool startup = need_resync || Steady::now() >= next_resync || (catch_up && Steady::now() >= next_catch_up);
    const auto sent = Steady::now();
    auto r = request("GET", startup ? "/v1/decisions/stream?startup=true" : "/v1/decisions/stream",
                     {"X-Api-Key: " + c.s_.bouncer_key}, nullptr, startup ? 60000 : 10000);
    const auto received = Steady::now();
    if (r.status == 0) return unreachable(r.curl_error);
    reached();
    if (r.status != 200) {
        return http_error(fmt::format("LAPI {}: decisions stream: HTTP {}{}", url(), r.status,
                                      r.status == 403 ? " (is bouncer_key_file's key registered? cscli bouncers list)" : ""));
    }
    const auto t0 = Steady::now();
    FleetUpdate u;
    u.resync = startup;
    u.received = received;
    if (!fleet_wire::parse_stream(r.body, u.added, u.deleted))
        return http_error(fmt::format("LAPI {}: decisions stream: not the expected JSON object", url()));
    u.parse_ms = std::chrono::duration<double, std::milli>(Steady::now() - t0).count();
    const bool gap = skipped_ids(u, startup);
    if (startup) {
        need_resync = catch_up = false;
        next_resync = Steady::now() + c.s_.resync;
        // A catch-up costs at most a tenth of the time (a big fleet's
        // resync is long), and comes at most every 2 s.
        next_catch_up = Steady::now() + std::max<Steady::duration>(std::chrono::seconds(2), 10 * (received - sent));
    } else if (!catch_up && (gap || received - sent > kSlowPoll)) {
        // LAPI 1.4.6 stamps a decision before its alert commits: a poll that
        // ran before that commit moved this key's cursor past the decision,
        // and no delta brings it later (docs/FLEET-LAB.md). Such a poll is
        // slow (it waited on the write), or a later one skips its id: the
        // next poll allowed is a full one.
        catch_up = true;
        c.counters_.catch_ups.inc();
    }
    c.counters_.polls.inc();
    c.counters_.last_poll_ms.store(
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count());
    if (!u.resync && u.added.empty() && u.deleted.empty()) return;
    {
        std::lock_guard lk(c.mu_);
        c.updates_.push_back(std::move(u));
    }
    const uint64_t one = 1;
    (void)!::write(c.event_.get(), &one, sizeof one);
}

// A 500 may have stored the alert (CROWDSEC.md): before sending it again,
// ask the LAPI for this machine's alerts on that value since the ban.
bool FleetClient::Impl::stored_already(const FleetAlert& a) {
    auto r = authed("GET", "/v1/alerts?" + fleet_wire::alerts_filter(a.prefix) + "&scenario=portsentry/portscan", nullptr);
    if (r.status != 200) throw std::runtime_error("cannot look up alerts");
    auto j = json::parse(r.body, nullptr, false);
    if (!j.is_array()) return false;
    for (const auto& al : j)
        if (al.value("machine_id", "") == c.s_.machine_id && al.contains("start_at") && al["start_at"].is_string()) {
            std::tm tm{};
            const auto s = al["start_at"].get<std::string>();
            if (::strptime(s.c_str(), "%Y-%m-%dT%H:%M:%S", &tm) && ::timegm(&tm) >= a.at) return true;
        }
    return false;
}

void FleetClient::Impl::push_batch() {
    std::vector<FleetAlert> batch;
    {
        std::lock_guard lk(c.mu_);
        for (size_t i = 0; i < c.queue_.size() && batch.size() < kBatch; ++i) batch.push_back(c.queue_[i]);
    }
    if (batch.empty()) return;
    const int64_t now = std::time(nullptr);
    json arr = json::array();
    for (const auto& a : batch) arr.push_back(fleet_wire::alert_json(a, now));
    const std::string body = arr.dump();
    auto r = authed("POST", "/v1/alerts", &body);
    size_t done = 0;  // leading alerts of the queue that are settled
    if (r.status == 200 || r.status == 201) {
        c.counters_.pushed.inc(batch.size());
        done = batch.size();
    } else if (r.status == 500) {
        // Which of them did it keep? Those are settled; the rest go again.
        try {
            for (const auto& a : batch) {
                if (!stored_already(a)) break;
                ++done;
            }
            http_error(fmt::format("LAPI {}: alerts: HTTP 500 ({} of {} stored; the rest are retried)", url(), done,
                                   batch.size()));
        } catch (const std::exception&) {
            http_error(fmt::format("LAPI {}: alerts: HTTP 500, and the alerts could not be looked up: retried later",
                                   url()));
        }
    } else if (r.status == 400 || r.status == 422) {
        // Malformed in the LAPI's eyes: resending cannot help.
        c.counters_.push_dropped.inc(batch.size());
        done = batch.size();
        http_error(fmt::format("LAPI {}: alerts refused: HTTP {}: {}", url(), r.status, r.body.substr(0, 200)));
    } else if (r.status != 0) {
        http_error(fmt::format("LAPI {}: alerts: HTTP {}", url(), r.status));
    }
    if (done == 0) {
        push_backoff = std::min(push_backoff + 1, 5);
        next_push = Steady::now() + std::chrono::milliseconds(250) * (1 << push_backoff);
        return;
    }
    push_backoff = 0;
    std::lock_guard lk(c.mu_);
    // Only the front can have gone meanwhile (forget_pushed): settle by value.
    for (size_t i = 0; i < done && !c.queue_.empty(); ++i)
        if (c.queue_.front().prefix == batch[i].prefix && c.queue_.front().at == batch[i].at) c.queue_.pop_front();
    c.queue_dirty_ = true;
    c.counters_.queued.set(static_cast<double>(c.queue_.size()));
}

// This machine's decisions on `p`, deleted by id (another machine's, or an
// admin's cscli decision on the same address, stays).
bool FleetClient::Impl::delete_pushed(const net::Cidr& p) {
    auto r = authed("GET", "/v1/alerts?" + fleet_wire::alerts_filter(p) + "&has_active_decision=true", nullptr);
    if (r.status == 0) return false;  // unreachable: tried again later
    if (r.status != 200) {
        http_error(fmt::format("LAPI {}: unban {}: cannot look up alerts: HTTP {}", url(), p.to_string(), r.status));
        return false;
    }
    auto j = json::parse(r.body, nullptr, false);
    if (!j.is_array()) return true;
    int deleted = 0;
    for (const auto& al : j) {
        if (al.value("machine_id", "") != c.s_.machine_id || !al.contains("decisions") || !al["decisions"].is_array())
            continue;
        for (const auto& d : al["decisions"]) {
            if (!d.contains("id") || d.value("origin", "") != "portsentry") continue;
            auto del = authed("DELETE", fmt::format("/v1/decisions/{}", d["id"].get<int64_t>()), nullptr);
            if (del.status == 200) ++deleted;
        }
    }
    c.log_(fmt::format("fleet: unban {}: {} decision{} this host pushed deleted at LAPI {}", p.to_string(), deleted,
                       deleted == 1 ? "" : "s", url()));
    return true;
}

void FleetClient::Impl::save_queue() {
    std::string out;
    {
        std::lock_guard lk(c.mu_);
        if (!c.queue_dirty_) return;
        c.queue_dirty_ = false;
        for (const auto& a : c.queue_) out += fleet_wire::queue_line(a) + "\n";
    }
    if (c.s_.queue_path.empty()) return;
    try {
        base::write_file_atomically(c.s_.queue_path, out);
    } catch (const std::exception& e) {
        c.log_(fmt::format("fleet: cannot keep the push queue: {}", e.what()));
    }
}

// ---- the loop's side ----------------------------------------------------------

FleetClient::FleetClient(Settings s, LogFn log, Counters& counters)
    : s_(std::move(s)), log_(std::move(log)), counters_(counters) {
    event_ = base::UniqueFd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!event_.valid()) throw base::sys_error("eventfd");
    static std::once_flag curl_once;
    std::call_once(curl_once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
    if (!s_.queue_path.empty()) {
        std::ifstream in(s_.queue_path);
        std::string line;
        const int64_t now = std::time(nullptr);
        while (std::getline(in, line))
            if (auto a = fleet_wire::queue_entry(line); a && a->until > now) queue_.push_back(std::move(*a));
        if (!queue_.empty())
            log_(fmt::format("fleet: {} alert{} from before the restart still to push", queue_.size(),
                             queue_.size() == 1 ? "" : "s"));
        counters_.queued.set(static_cast<double>(queue_.size()));
    }
    impl_ = std::make_unique<Impl>(*this);
    thread_ = std::thread([this] { run(); });
}

FleetClient::~FleetClient() {
    {
        std::lock_guard lk(mu_);
        stop_ = true;
    }
    stopping_ = true;
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
    impl_->save_queue();
    counters_.up.set(0);
    counters_.queued.set(0);
}

const std::string& FleetClient::url() const { return impl_->url(); }

std::vector<FleetUpdate> FleetClient::take_updates() {
    uint64_t n;
    (void)!::read(event_.get(), &n, sizeof n);
    std::lock_guard lk(mu_);
    return std::exchange(updates_, {});
}

void FleetClient::push(FleetAlert a) {
    {
        std::lock_guard lk(mu_);
        if (queue_.size() >= kQueueMax) {
            queue_.pop_front();
            counters_.push_dropped.inc();
        }
        queue_.push_back(std::move(a));
        queue_dirty_ = true;
        counters_.queued.set(static_cast<double>(queue_.size()));
    }
    cv_.notify_all();
}

void FleetClient::forget_pushed(const net::Cidr& c) {
    {
        std::lock_guard lk(mu_);
        std::erase_if(queue_, [&](const FleetAlert& a) { return a.prefix == c; });
        queue_dirty_ = true;
        unbans_.push_back(c);
    }
    cv_.notify_all();
}

void FleetClient::run() {
    auto& m = *impl_;
    while (true) {
        std::vector<net::Cidr> unbans;
        bool have_push = false;
        {
            std::unique_lock lk(mu_);
            if (stop_) return;
            unbans = std::exchange(unbans_, {});
            have_push = !queue_.empty();
        }
        const auto now = Steady::now();
        if (s_.pull && now >= m.next_poll) {
            m.poll();
            // On a fixed beat (a poll's own time does not stretch the
            // interval); down: every poll interval, at most every second.
            const auto after = Steady::now();
            m.next_poll = m.down ? after + std::max<Steady::duration>(s_.poll, std::chrono::seconds(1))
                                 : std::max(m.next_poll + s_.poll, after);
        }
        if (s_.push && have_push && Steady::now() >= m.next_push) m.push_batch();
        if (s_.push && (!unbans.empty() || (!m.unbans_waiting.empty() && Steady::now() >= m.next_push))) {
            unbans.insert(unbans.begin(), m.unbans_waiting.begin(), m.unbans_waiting.end());
            m.unbans_waiting.clear();
            for (const auto& u : unbans)
                if (!m.delete_pushed(u)) m.unbans_waiting.push_back(u);
            if (!m.unbans_waiting.empty()) m.next_push = Steady::now() + std::chrono::seconds(2);
        }
        m.save_queue();
        std::unique_lock lk(mu_);
        if (stop_) return;
        auto wake = s_.pull ? m.next_poll : Steady::now() + std::chrono::seconds(1);
        if (!queue_.empty() || !m.unbans_waiting.empty())
            wake = std::min(wake, std::max(m.next_push, Steady::now() + std::chrono::milliseconds(5)));
        // A new alert wakes the thread at once, unless pushes are backing off.
        cv_.wait_until(lk, wake, [&] {
            return stop_ || !unbans_.empty() || (s_.push && !queue_.empty() && Steady::now() >= m.next_push);
        });
    }
}

}  // namespace portsentry::daemon
