// Two parts that keep kernel state true while the daemon runs:
//  - ProtectionKeeper: the never-ban snapshot (engine + @never/@never6),
//    re-gathered when rtnetlink or inotify says a source changed;
//  - RulesetKeeper: chooses the steering backend, and restores table inet
//    portsentry when someone deletes or flushes it (nftables notifications,
//    and a 1 s check for lost ones).
// Each registers its own fds with the loop.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "portsentry/actions/log.hpp"
#include "portsentry/base/metric.hpp"
#include "portsentry/config/config.hpp"
#include "portsentry/daemon/loop.hpp"
#include "portsentry/daemon/protect.hpp"
#include "portsentry/engine/protection.hpp"
#include "portsentry/kernel/nft.hpp"
#include "portsentry/kernel/nft_monitor.hpp"

namespace portsentry::daemon {

// "ignore list: 12; local address: 192.0.2.1 2001:db8::1; gateway: ..."
std::string protection_summary(const engine::Protection& p);

class ProtectionKeeper {
public:
    // `nft` null: --no-ruleset (the engine still protects; no kernel sets).
    ProtectionKeeper(Loop& loop, kernel::Nft* nft, actions::Log& log, ProtectSources sources = {});
    ~ProtectionKeeper();
    // Watch first, then gather: a change in between is seen by the watch.
    void start(const config::Config& cfg);
    // A new config (SIGHUP): returns the snapshot it gives, not yet in force.
    engine::Protection gather_for(const config::Config& cfg) const { return gather(cfg, sources_); }
    // Puts `next` in force (same object: pointers to current() stay valid).
    void install(const config::Config& cfg, engine::Protection next);
    const engine::Protection& current() const { return protection_; }
    void tick(const Now& now);  // a deferred re-gather lands within a second

private:
    void refresh(const Now& now);
    Loop& loop_;
    kernel::Nft* nft_;
    actions::Log& log_;
    ProtectSources sources_;
    const config::Config* cfg_ = nullptr;
    engine::Protection protection_;
    std::unique_ptr<ProtectWatch> watch_;
    // Route churn (a router learning a full table) can send thousands of
    // events a second: re-gather at most every kMinGap; the tick picks up
    // what was deferred.
    static constexpr std::chrono::milliseconds kMinGap{200};
    std::chrono::steady_clock::time_point last_{};
    bool dirty_ = false;
};

class RulesetKeeper {
public:
    using RestoreFn = std::function<void(const char* why)>;
    using UnbansFn = std::function<void(const std::vector<net::IpAddr>& starts, const Now& now)>;
    RulesetKeeper(Loop& loop, kernel::Nft& nft, actions::Log& log);
    ~RulesetKeeper();

    // The backend for `steer` (auto: queue → xt-queue → nflog), logged.
    kernel::Backend choose(config::Steer steer);
    // Starts listening for changes by others (after the first apply).
    void watch(RestoreFn restore, UnbansFn unbans);
    // After our own apply(): nothing queued in the monitor is news.
    void applied();
    // Runs `f` (a big batch of our own) with the monitor out of the
    // notification group: the kernel then builds no notification per
    // element. The 1 s check still sees a table someone removed meanwhile;
    // an element someone else deleted in that moment is not seen as an unban.
    void quietly(const std::function<void()>& f);
    void tick(const Now& now);  // fallback check for lost notifications
    void count_restore() { restores_.inc(); }

    const base::Counter& restores() const { return restores_; }
    const kernel::NftMonitor* monitor() const { return monitor_.get(); }

private:
    void on_monitor(const Now& now);
    void check(const Now& now);
    Loop& loop_;
    kernel::Nft& nft_;
    actions::Log& log_;
    std::unique_ptr<kernel::NftMonitor> monitor_;
    RestoreFn restore_;
    UnbansFn unbans_;
    base::Counter restores_;
};

}  // namespace portsentry::daemon
