#include "portsentry/actions/log.hpp"

#include <sys/resource.h>
#include <syslog.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <string>

#include "portsentry/actions/messages.hpp"
#include "portsentry/base/files.hpp"

namespace portsentry::actions {

TokenBucket::TokenBucket(double burst, double per_second) { reset(burst, per_second); }

void TokenBucket::reset(double burst, double per_second) {
    burst_ = std::max(burst, 1.0);
    rate_ = per_second;
    tokens_ = burst_;
    started_ = false;
}

void TokenBucket::refill(TimePoint now) {
    if (!started_) {
        started_ = true;
        last_ = now;
        return;
    }
    if (now <= last_) return;  // steady clock; equal or earlier (tests): nothing to add
    if (rate_ > 0) {
        double secs = std::chrono::duration<double>(now - last_).count();
        tokens_ = std::min(burst_, tokens_ + secs * rate_);
    }
    last_ = now;
}

bool TokenBucket::take(TimePoint now) {
    refill(now);
    if (tokens_ < 1.0) return false;
    tokens_ -= 1.0;
    return true;
}

bool TokenBucket::would_allow(TimePoint now) {
    refill(now);
    return tokens_ >= 1.0;
}

bool stderr_wanted(bool foreground, const char* journal_stream_env) {
    // Under systemd stderr already goes to the journal, and syslog does too:
    // writing both would show every line twice.
    return foreground && (journal_stream_env == nullptr || *journal_stream_env == '\0');
}

Log::Log(const LogOptions& opts, Sink extra)
    : opts_(opts),
      to_stderr_(stderr_wanted(opts.foreground, std::getenv("JOURNAL_STREAM"))),
      extra_(std::move(extra)),
      bucket_(opts.burst, opts.per_second) {
    // As 1.2's Log(): ident "portsentry", LOG_PID, facility daemon. Opened once
    // (1.2 reopened per line); LOG_NDELAY connects now, before any chroot/privilege drop.
    if (opts_.use_syslog) openlog("portsentry", LOG_PID | LOG_NDELAY, LOG_DAEMON);
    if (opts_.async) thread_ = std::thread([this] { writer(); });
}

Log::~Log() {
    if (thread_.joinable()) {
        {
            std::lock_guard lk(mu_);
            stop_ = true;
        }
        wake_.notify_all();
        thread_.join();
    }
    if (opts_.use_syslog) closelog();
}

void Log::writer() {
    // Background work, as the daemon's response worker: the packet thread
    // wins a shared CPU (nice applies to this thread only on Linux).
    (void)::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), 10);
    std::unique_lock lk(mu_);
    for (;;) {
        wake_.wait(lk, [&] { return stop_ || !queue_.empty(); });
        if (queue_.empty()) return;  // stop_ and all emitted
        std::deque<std::string> batch;
        batch.swap(queue_);
        emitting_ = true;
        lk.unlock();
        for (const auto& l : batch) emit(l);
        lk.lock();
        emitting_ = false;
        drained_.notify_all();
    }
}

void Log::sync() {
    std::unique_lock lk(mu_);
    drained_.wait(lk, [&] { return !thread_.joinable() || (queue_.empty() && !emitting_); });
}

void Log::deliver(std::string line) {
    ++counters_.written;
    if (!thread_.joinable()) {
        emit(line);
        return;
    }
    if (queue_.size() >= opts_.queue_max) {  // the writer is stuck (syslog blocked): drop, counted
        --counters_.written;
        ++counters_.suppressed;
        ++pending_suppressed_;  // summarised once the writer catches up
        return;
    }
    queue_.push_back(std::move(line));
    wake_.notify_one();
}

void Log::emit(std::string_view line) {
    if (opts_.use_syslog)
        syslog(LOG_NOTICE, "%.*s", static_cast<int>(line.size()), line.data());
    if (to_stderr_) {
        std::string s(line);
        s.push_back('\n');
        (void)base::write_all(STDERR_FILENO, s);  // nowhere to report a failure
    }
    if (extra_) extra_(line);
}

void Log::maybe_summary() {
    if (pending_suppressed_ == 0) return;
    // The summary itself is not charged to the bucket: it is one line per
    // suppression episode, and it must not be suppressed in turn.
    std::string s = msg::lines_suppressed(pending_suppressed_);
    pending_suppressed_ = 0;
    ++counters_.summaries;
    deliver(std::move(s));
}

void Log::write(std::string_view line) { write(line, Clock::now()); }

void Log::write(std::string_view line, TimePoint now) {
    std::lock_guard lk(mu_);
    if (!bucket_.take(now)) {
        ++pending_suppressed_;
        ++counters_.suppressed;
        return;
    }
    maybe_summary();
    deliver(std::string(line));
}

void Log::flush(TimePoint now) {
    std::lock_guard lk(mu_);
    if (pending_suppressed_ > 0 && bucket_.would_allow(now)) maybe_summary();
}

LogCounters Log::counters() const {
    std::lock_guard lk(mu_);
    return counters_;
}

}  // namespace portsentry::actions
