// The attackalert/adminalert sink: syslog (ident "portsentry", LOG_PID,
// facility daemon, level notice, as 1.2) plus stderr in the foreground, with
// a token-bucket cap so a flood cannot turn syslog into the denial of service.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

namespace portsentry::actions {

using Clock = std::chrono::steady_clock;
using TimePoint = Clock::time_point;

// Classic token bucket; pure (the caller passes `now`), so limits are testable
// exactly at the boundary without sleeping.
class TokenBucket {
public:
    // burst: tokens available at start and the most that can accumulate;
    // per_second: refill rate. per_second <= 0 means "never refill".
    TokenBucket(double burst, double per_second);
    bool take(TimePoint now);          // consume one token if available
    bool would_allow(TimePoint now);   // refill and check, consume nothing
    void reset(double burst, double per_second);

private:
    void refill(TimePoint now);
    double burst_;
    double rate_;
    double tokens_;
    TimePoint last_{};
    bool started_ = false;
};

struct LogOptions {
    bool use_syslog = true;
    // Running in the foreground: lines also go to stderr, unless systemd
    // already captures stderr (JOURNAL_STREAM set), which would double them.
    bool foreground = false;
    double burst = 200;       // lines allowed back to back
    double per_second = 50;   // sustained lines per second under a flood
    // Emit on a thread of the Log's own: syslog() is a blocking send to
    // /dev/log (journald busy: milliseconds), and the packet thread must not
    // wait for it. Lines keep their order; the daemon turns this on.
    bool async = false;
    size_t queue_max = 4096;  // lines waiting for that thread; beyond: counted as suppressed
};

// True when lines should be copied to stderr (pure: env passed in).
bool stderr_wanted(bool foreground, const char* journal_stream_env);

struct LogCounters {
    uint64_t written = 0;
    uint64_t suppressed = 0;   // dropped by the rate limit (total)
    uint64_t summaries = 0;    // "N lines suppressed" lines emitted
};

class Log {
public:
    // Extra sink gets every emitted line too (tests, JSON, a control socket).
    using Sink = std::function<void(std::string_view)>;

    explicit Log(const LogOptions& opts = {}, Sink extra = {});
    ~Log();  // async: emits what still waits, then joins
    Log(const Log&) = delete;
    Log& operator=(const Log&) = delete;

    // One line, rate-limited. Once lines were suppressed, the next line that
    // gets through is preceded by one summary line with the count.
    void write(std::string_view line);
    void write(std::string_view line, TimePoint now);
    // Emits a pending summary when the bucket has recovered (call each loop
    // turn, so the count is reported even if no further line comes).
    void flush(TimePoint now);

    LogCounters counters() const;
    // async: returns once every line written before the call was emitted.
    void sync();

private:
    void emit(std::string_view line);  // unconditional; caller holds mu_ (sync) or is the writer
    void deliver(std::string line);  // caller holds mu_: emit now, or queue for the writer
    void maybe_summary();  // caller holds mu_
    void writer();

    LogOptions opts_;
    bool to_stderr_;
    Sink extra_;
    mutable std::mutex mu_;  // resolver/command code may log from other threads
    TokenBucket bucket_;
    uint64_t pending_suppressed_ = 0;
    LogCounters counters_;
    std::deque<std::string> queue_;  // async: lines for the writer, in order
    std::condition_variable wake_, drained_;
    bool stop_ = false, emitting_ = false;
    std::thread thread_;  // async only; last: starts after the members it uses
};

}  // namespace portsentry::actions
