#include "portsentry/daemon/keepers.hpp"

#include <algorithm>
#include <fmt/format.h>

namespace portsentry::daemon {

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

// ---- ProtectionKeeper -------------------------------------------------------

ProtectionKeeper::ProtectionKeeper(Loop& loop, kernel::Nft* nft, actions::Log& log, ProtectSources sources)
    : loop_(loop), nft_(nft), log_(log), sources_(std::move(sources)) {}

ProtectionKeeper::~ProtectionKeeper() {
    if (watch_)
        for (int fd : watch_->fds()) loop_.remove(fd);
}

void ProtectionKeeper::start(const config::Config& cfg) {
    cfg_ = &cfg;
    watch_ = std::make_unique<ProtectWatch>(sources_);
    for (int fd : watch_->fds())
        loop_.add(fd, "protection sources", [this, fd](const Now& now) {
            if (watch_->drain(fd)) dirty_ = true;
            if (dirty_ && now.steady - last_ >= kMinGap) refresh(now);
        });
    protection_ = gather(cfg, sources_);
    log_.write("portsentry-nfq: protected (never banned): " + protection_summary(protection_));
}

void ProtectionKeeper::install(const config::Config& cfg, engine::Protection next) {
    cfg_ = &cfg;
    if (next == protection_) return;
    protection_ = std::move(next);
    log_.write("portsentry-nfq: protected (never banned): " + protection_summary(protection_));
}

void ProtectionKeeper::tick(const Now& now) {
    if (dirty_) refresh(now);
}

// On a change, updates the kernel sets (one batch) and logs the new summary;
// the engine sees the new snapshot at once (same object).
void ProtectionKeeper::refresh(const Now& now) {
    dirty_ = false;
    last_ = now.steady;
    auto next = gather(*cfg_, sources_);
    if (next == protection_) return;
    if (nft_) {
        try {
            nft_->set_never(next.prefixes());
        } catch (const std::exception& e) {
            // The engine still protects them; the next change or a restore retries.
            log_.write(fmt::format("portsentry-nfq: cannot update the never-ban sets: {}", e.what()));
        }
    }
    protection_ = std::move(next);
    log_.write("portsentry-nfq: protected (never banned): " + protection_summary(protection_));
}

// ---- RulesetKeeper ----------------------------------------------------------

RulesetKeeper::RulesetKeeper(Loop& loop, kernel::Nft& nft, actions::Log& log) : loop_(loop), nft_(nft), log_(log) {}

RulesetKeeper::~RulesetKeeper() {
    if (monitor_) loop_.remove(monitor_->fd());
}

kernel::Backend RulesetKeeper::choose(config::Steer steer) {
    const auto available = nft_.probe_backends();
    std::string avail;
    for (auto b : available) avail += std::string(avail.empty() ? "" : ",") + kernel::to_string(b);
    const auto b = kernel::pick_backend(steer, available);
    if (!b)
        throw std::runtime_error(
            "no steering backend works on this kernel: need nft_queue, nft_compat + xt_NFQUEUE, or nfnetlink_log");
    const bool forced = steer != config::Steer::auto_;
    if (forced && std::find(available.begin(), available.end(), *b) == available.end())
        throw std::runtime_error(fmt::format(
            "steering backend '{}' forced by --steer/steer: is not supported by this kernel", kernel::to_string(*b)));
    log_.write(fmt::format("portsentry-nfq: steering backend: {} ({}; kernel offers: {})", kernel::to_string(*b),
                           forced ? "forced" : "auto", avail));
    if (*b == kernel::Backend::nflog)
        log_.write("portsentry-nfq: nflog backend has no inline verdict: the rule itself drops probes when "
                   "blocking is on, and the first probes of a scan may be answered before the ban lands");
    return *b;
}

void RulesetKeeper::watch(RestoreFn restore, UnbansFn unbans) {
    restore_ = std::move(restore);
    unbans_ = std::move(unbans);
    try {
        monitor_ = std::make_unique<kernel::NftMonitor>(nft_.portid());
    } catch (const std::exception& e) {
        log_.write(fmt::format("portsentry-nfq: {}: a removed table is restored by the 1 s check only", e.what()));
        return;
    }
    loop_.add(monitor_->fd(), "nftables monitor", [this](const Now& now) { on_monitor(now); });
}

void RulesetKeeper::applied() {
    if (monitor_) monitor_->discard();
}

void RulesetKeeper::quietly(const std::function<void()>& f) {
    if (!monitor_) return f();
    monitor_->mute(true);
    try {
        f();
    } catch (...) {
        monitor_->mute(false);
        monitor_->discard();
        throw;
    }
    monitor_->mute(false);
    monitor_->discard();
}

// `nft flush ruleset` (Debian's nftables.conf on every reload), `nft flush
// table`, a deleted chain or set: restore at once, not on the tick. A
// notification overrun also reports true: check before rebuilding, or a
// restore's own element notifications would trigger the next one.
void RulesetKeeper::on_monitor(const Now& now) {
    const bool changed = monitor_->drain();
    if (auto removed = monitor_->take_removed_bans(); !removed.empty()) unbans_(removed, now);
    if (changed) check(now);
}

void RulesetKeeper::tick(const Now& now) {
    if (restore_) check(now);
}

void RulesetKeeper::check(const Now&) {
    try {
        if (nft_.ruleset_intact()) return;
    } catch (const std::exception& e) {
        log_.write(fmt::format("portsentry-nfq: cannot check ruleset: {}", e.what()));
        return;
    }
    restore_("table inet portsentry was changed by someone else");
}

}  // namespace portsentry::daemon
