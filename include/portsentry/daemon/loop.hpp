// The daemon's one event loop (conntrack-tools' register_fd(fd, cb, data) is
// the model): each part registers its own fds with a name and a callback and
// removes them itself; the loop knows no kind of fd. The clock is read once
// per turn and handed to every callback (STYLE §1: parts never read it).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <unordered_map>
#include <vector>

#include "portsentry/base/metric.hpp"

namespace portsentry::daemon {

// One clock reading: monotonic for the engine's windows, wall for the ban
// table's epoch seconds.
struct Now {
    std::chrono::steady_clock::time_point steady;
    int64_t wall = 0;
    static Now read();
};

class Loop {
public:
    using Callback = std::function<void(const Now&)>;

    Loop();  // throws std::system_error
    ~Loop();
    Loop(const Loop&) = delete;
    Loop& operator=(const Loop&) = delete;

    // `name` is what `status` says held the loop ("packets", "tripwire").
    void add(int fd, std::string name, Callback cb);  // throws std::system_error
    void remove(int fd);                              // unknown fds are ignored
    // Work done in slices between events (serializing a big ban table): while
    // `pending()` holds, the loop polls instead of sleeping and calls `step`.
    void add_idle(std::string name, std::function<bool()> pending, Callback step);

    void run();   // until stop(); exceptions from callbacks propagate
    // This turn's clock reading (the one its callback was given); before
    // run(), the reading taken at construction or by refresh_now().
    const Now& now() const { return now_; }
    void refresh_now() { now_ = Now::read(); }
    void stop();  // from a callback: run() returns after this turn

    // Per-turn timing: while the loop is busy, queued probes wait and, once
    // the queue is full, the kernel answers them (fail-open).
    static constexpr std::chrono::milliseconds kSlowTurn{50};
    struct Timing {
        std::chrono::steady_clock::duration longest{};
        std::string longest_what = "none";
        base::Counter turns, slow_turns;
        base::Gauge longest_seconds;
        base::Histogram turn_ms{{0.1, 1, 5, 10, 50, 100, 500, 1000}};
    };
    const Timing& timing() const { return timing_; }
    size_t registered() const { return fds_.size(); }

private:
    void timed(const std::string& name, const Callback& cb, const Now& now);
    struct Reg {
        std::string name;
        Callback cb;
    };
    struct Idle {
        std::string name;
        std::function<bool()> pending;
        Callback step;
    };
    int ep_ = -1;
    Now now_ = Now::read();
    bool stop_ = false;
    std::unordered_map<int, Reg> fds_;
    std::vector<Idle> idle_;
    Timing timing_;
};

}  // namespace portsentry::daemon
