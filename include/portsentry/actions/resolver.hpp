// RESOLVE_HOST: reverse lookups that cannot stall the packet path.
//
// getnameinfo() can block for the resolver's full retry cycle (seconds) and
// cannot be cancelled, so lookups run on a few worker threads and the caller
// waits at most `timeout`, falling back to the address. Lookups are capped per
// second and in flight (an attacker controls both the sources and the speed
// of their reverse DNS); after a timeout, lookups pause for `backoff` so a dead
// DNS server costs one wait, not one per report. Late answers are cached.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "portsentry/net/address.hpp"

namespace portsentry::actions {

// A reverse-DNS answer is attacker-controlled: accept only what a hostname can
// be (letters, digits, '-', '.', '_'; at most 253 bytes), so it cannot forge
// or split log/history records ("Host: H/IP Port:"). Pure.
bool is_safe_hostname(std::string_view name);

struct ResolverOptions {
    bool enabled = false;                      // RESOLVE_HOST
    std::chrono::milliseconds timeout{500};    // longest wait in resolve()
    std::chrono::milliseconds backoff{5000};   // pause after a timeout
    unsigned workers = 2;                      // = in-flight cap
    double per_second = 10;                    // lookups started per second (burst = 2x)
    size_t cache_size = 1024;
    std::chrono::seconds cache_ttl{300};
    // resolve() never starts a lookup, it only uses what prefetch() started
    // (waiting for the rest of its time). The daemon prefetches when a report
    // is queued, so lookups of successive reports overlap instead of one
    // thread waiting for each in turn.
    bool prefetch_only = false;
};

struct ResolverCounters {
    uint64_t lookups = 0;     // handed to a worker
    uint64_t resolved = 0;    // answered in time with a safe name
    uint64_t cache_hits = 0;
    uint64_t timeouts = 0;    // caller gave up waiting
    uint64_t capped = 0;      // not tried: rate, in-flight cap or backoff
    uint64_t no_name = 0;     // no PTR record / lookup error
    uint64_t unsafe = 0;      // answer rejected by is_safe_hostname
};

class Resolver {
public:
    // Blocking lookup run on a worker: the name, or nullopt. Default:
    // getnameinfo(NI_NAMEREQD). Injectable for tests.
    using LookupFn = std::function<std::optional<std::string>(const net::IpAddr&)>;

    explicit Resolver(const ResolverOptions& opts, LookupFn lookup = {});
    // Workers stuck in a lookup are detached (they hold only shared state).
    ~Resolver();
    Resolver(const Resolver&) = delete;
    Resolver& operator=(const Resolver&) = delete;

    // The name for `a`, or its address text when disabled, capped, timed out,
    // unknown or unsafe. Waits at most options.timeout from the lookup's start.
    std::string resolve(const net::IpAddr& a);
    // Starts a lookup of `a` if none is cached or running and the caps allow;
    // never waits. Thread-safe (the daemon's loop calls it).
    void prefetch(const net::IpAddr& a);

    bool enabled() const;
    ResolverCounters counters() const;

    static std::optional<std::string> getnameinfo_lookup(const net::IpAddr& a);

private:
    struct State;
    std::shared_ptr<State> st_;
};

}  // namespace portsentry::actions
