#include "portsentry/daemon/state_saver.hpp"

#include <fmt/format.h>

namespace portsentry::daemon {

StateSaver::StateSaver(const BanStore& store, LogFn log)
    : store_(store), log_(std::move(log)), writer_(std::make_unique<StateWriter>(store.path())) {}

void StateSaver::save_soon(Clock::time_point now) {
    dirty_ = true;
    next_ = std::min(next_, pass_end_ + std::chrono::seconds(1));
    tick(now);
}

void StateSaver::tick(Clock::time_point now) {
    report(writer_->take_error());
    if (pass_ || !dirty_ || now < next_) return;
    pass_.emplace();
    pass_->parts.emplace_back(BanStore::header());
    dirty_ = false;
    step(now);
}

void StateSaver::step(Clock::time_point) {
    if (!pass_) return;
    Pass& p = *pass_;
    // This slice's own cost, not the turn's: measured here.
    const auto t0 = Clock::now();
    bool done = false;
    try {
        std::string& part = p.parts.emplace_back();
        part.reserve(kSlice * 200);
        done = store_.serialize_some(part, p.cursor, kSlice);
    } catch (const std::exception& e) {  // bad_alloc: drop the pass, retry at a later tick
        log_(fmt::format("portsentry-nfq: cannot save state: {}", e.what()));
        figures_.serialize_errors.inc();
        pass_.reset();
        dirty_ = true;
        return;
    }
    const auto took = Clock::now() - t0;
    p.busy += took;
    p.longest = std::max(p.longest, took);
    ++p.slices;
    if (!done) return;
    auto ms = [](Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); };
    figures_.busy_ms.set(ms(p.busy));
    figures_.longest_ms.set(ms(p.longest));
    figures_.slices.set(p.slices);
    figures_.passes.inc();
    pass_end_ = Clock::now();
    next_ = pass_end_ + p.busy * kSaveShare;
    writer_->submit(std::move(p.parts));
    pass_.reset();
}

void StateSaver::save_now() {
    pass_.reset();
    dirty_ = false;
    try {
        writer_->submit(store_.serialize());
    } catch (const std::exception& e) {
        log_(fmt::format("portsentry-nfq: cannot save state: {}", e.what()));
        return;
    }
    report(writer_->flush());
}

// A failing state file is logged when the error changes, again every
// kRelog while it lasts, and its recovery; a failed snapshot is retried at
// the next tick.
void StateSaver::report(const std::string& err) {
    const uint64_t written = writer_->counters().written;
    if (!err.empty()) {
        dirty_ = true;
        const auto now = Clock::now();
        if (err != error_ || now - logged_at_ >= kRelog) {
            log_(fmt::format("portsentry-nfq: cannot save state: {} (failing writes so far: {})", err,
                             writer_->counters().failed));
            logged_at_ = now;
        }
        error_ = err;
        written_at_error_ = written;
    } else if (!error_.empty() && written > written_at_error_) {
        log_(fmt::format("portsentry-nfq: state file {} written again", store_.path()));
        error_.clear();
    }
}

}  // namespace portsentry::daemon
