#include "portsentry/actions/resolver.hpp"

#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "portsentry/actions/log.hpp"

namespace portsentry::actions {

bool is_safe_hostname(std::string_view name) {
    if (name.empty() || name.size() > 253) return false;
    for (char c : name) {
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '.' || c == '_';
        if (!ok) return false;
    }
    return true;
}

std::optional<std::string> Resolver::getnameinfo_lookup(const net::IpAddr& a) {
    sockaddr_storage ss{};
    socklen_t len = 0;
    if (a.is_v4()) {
        auto* sin = reinterpret_cast<sockaddr_in*>(&ss);
        sin->sin_family = AF_INET;
        std::memcpy(&sin->sin_addr, a.bytes.data(), 4);
        len = sizeof(sockaddr_in);
    } else if (a.is_v6()) {
        auto* sin6 = reinterpret_cast<sockaddr_in6*>(&ss);
        sin6->sin6_family = AF_INET6;
        std::memcpy(&sin6->sin6_addr, a.bytes.data(), 16);
        len = sizeof(sockaddr_in6);
    } else {
        return std::nullopt;
    }
    char host[NI_MAXHOST];
    // NI_NAMEREQD: no PTR record is "no name", not the address echoed back.
    if (::getnameinfo(reinterpret_cast<sockaddr*>(&ss), len, host, sizeof host, nullptr, 0,
                      NI_NAMEREQD) != 0)
        return std::nullopt;
    return std::string(host);
}

struct Resolver::State {
    ResolverOptions opts;
    LookupFn lookup;

    std::mutex mu;
    std::condition_variable work_cv;  // workers wait for jobs
    std::condition_variable done_cv;  // callers wait for answers
    std::deque<net::IpAddr> queue;
    unsigned busy = 0;
    bool stop = false;

    struct Entry {
        std::optional<std::string> name;  // nullopt: no (safe) name
        TimePoint at;
    };
    std::unordered_map<net::IpAddr, Entry, net::IpAddrHash> cache;
    std::unordered_map<net::IpAddr, TimePoint, net::IpAddrHash> inflight;  // queued or running: since
    std::deque<std::pair<net::IpAddr, TimePoint>> order;  // insertion order for eviction

    TokenBucket bucket{2, 1};
    TimePoint backoff_until{};
    ResolverCounters counters;

    void insert(const net::IpAddr& a, std::optional<std::string> name, TimePoint at) {
        cache[a] = Entry{std::move(name), at};
        order.emplace_back(a, at);
        while (cache.size() > opts.cache_size && !order.empty()) {
            auto [old, t] = order.front();
            order.pop_front();
            auto it = cache.find(old);
            if (it != cache.end() && it->second.at == t) cache.erase(it);
        }
        // Stale duplicates in `order` are bounded by re-lookups, which are rate-capped.
        if (order.size() > 4 * opts.cache_size + 16) order.pop_front();
    }

    void worker() {
        std::unique_lock lk(mu);
        for (;;) {
            work_cv.wait(lk, [&] { return stop || !queue.empty(); });
            if (stop) return;
            net::IpAddr a = queue.front();
            queue.pop_front();
            ++busy;
            lk.unlock();
            std::optional<std::string> name = lookup(a);  // may block for seconds
            lk.lock();
            --busy;
            if (!name) {
                ++counters.no_name;
            } else if (!is_safe_hostname(*name)) {
                ++counters.unsafe;
                name.reset();
            }
            inflight.erase(a);
            insert(a, std::move(name), Clock::now());
            done_cv.notify_all();
        }
    }
};

Resolver::Resolver(const ResolverOptions& opts, LookupFn lookup) : st_(std::make_shared<State>()) {
    st_->opts = opts;
    if (st_->opts.workers == 0) st_->opts.workers = 1;
    st_->lookup = lookup ? std::move(lookup) : LookupFn(&Resolver::getnameinfo_lookup);
    st_->bucket.reset(2 * opts.per_second, opts.per_second);
    if (!opts.enabled) return;
    for (unsigned i = 0; i < st_->opts.workers; ++i) {
        // Detached, owning the state: a worker stuck in getnameinfo() cannot be
        // interrupted, and the daemon must not wait for it on reload or exit.
        std::thread([st = st_] { st->worker(); }).detach();
    }
}

Resolver::~Resolver() {
    std::lock_guard lk(st_->mu);
    st_->stop = true;
    st_->work_cv.notify_all();
}

bool Resolver::enabled() const { return st_->opts.enabled; }

ResolverCounters Resolver::counters() const {
    std::lock_guard lk(st_->mu);
    return st_->counters;
}

namespace {
bool fresh(const TimePoint& at, const TimePoint& now, std::chrono::seconds ttl) { return now - at < ttl; }
}  // namespace

void Resolver::prefetch(const net::IpAddr& a) {
    if (!st_->opts.enabled) return;
    State& s = *st_;
    const TimePoint now = Clock::now();
    std::lock_guard lk(s.mu);
    if (auto it = s.cache.find(a); it != s.cache.end() && fresh(it->second.at, now, s.opts.cache_ttl)) return;
    if (s.inflight.contains(a)) return;
    if (now < s.backoff_until || s.queue.size() + s.busy >= s.opts.workers || !s.bucket.take(now)) {
        ++s.counters.capped;
        return;
    }
    ++s.counters.lookups;
    s.inflight.emplace(a, now);
    s.queue.push_back(a);
    s.work_cv.notify_one();
}

std::string Resolver::resolve(const net::IpAddr& a) {
    const std::string text = a.to_string();
    if (!st_->opts.enabled) return text;
    State& s = *st_;
    const TimePoint start = Clock::now();
    std::unique_lock lk(s.mu);

    if (auto it = s.cache.find(a); it != s.cache.end() && fresh(it->second.at, start, s.opts.cache_ttl)) {
        ++s.counters.cache_hits;
        return it->second.name.value_or(text);
    }
    TimePoint since = start;
    if (auto f = s.inflight.find(a); f != s.inflight.end()) {
        since = f->second;  // prefetched: wait for the rest of its time only
    } else {
        if (s.opts.prefetch_only || start < s.backoff_until || s.queue.size() + s.busy >= s.opts.workers ||
            !s.bucket.take(start)) {
            ++s.counters.capped;
            return text;
        }
        ++s.counters.lookups;
        s.inflight.emplace(a, start);
        s.queue.push_back(a);
        s.work_cv.notify_one();
    }

    auto answered = [&] {
        auto it = s.cache.find(a);
        return it != s.cache.end() && it->second.at >= since;
    };
    if (!s.done_cv.wait_until(lk, since + s.opts.timeout, answered)) {
        // The worker keeps going; its late answer lands in the cache for next time.
        ++s.counters.timeouts;
        s.backoff_until = Clock::now() + s.opts.backoff;
        return text;
    }
    const auto& name = s.cache.find(a)->second.name;
    if (name) ++s.counters.resolved;
    return name.value_or(text);
}

}  // namespace portsentry::actions
