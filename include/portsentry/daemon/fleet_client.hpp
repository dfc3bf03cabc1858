// The fleet's HTTP side (docs/ARCHITECTURE.md, "Fleet"): CrowdSec's Local
// API spoken with libcurl on a thread of its own, so a slow or dead LAPI never
// holds the packet loop.
//  - push: detector bans become alerts (POST /v1/alerts with a watcher JWT),
//    sent in batches from a bounded queue that is kept on disk
//    (<state>.push) so an outage or a restart loses none; a 401 logs in
//    again; a 500 is not resent blindly (the LAPI may have stored it: the
//    alerts are looked up first);
//  - pull: GET /v1/decisions/stream every poll interval (startup=true at
//    start, after a fail-over, every resync interval, and after a delta poll
//    that may have crossed a decision the LAPI will never send: a slow one, or
//    one whose decision ids skip some); the parsed
//    answers go back to the loop through an eventfd (take_updates);
//  - LAPI down: one line when it goes, one when it is back; with several
//    URLs the next one is tried in order.
// The loop thread calls push(), forget_pushed(), take_updates(); everything
// else runs on the client's thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "portsentry/base/metric.hpp"
#include "portsentry/base/unique_fd.hpp"
#include "portsentry/net/address.hpp"

namespace portsentry::daemon {

// One entry of the decisions stream.
struct FleetDecision {
    std::string value, scope, type, origin, scenario;
    int64_t seconds = 0;  // time left (the entry's Go duration, rounded down); < 0 in `deleted`
    int64_t id = 0;       // the LAPI's decision id (increasing with creation)
};

struct FleetUpdate {
    bool resync = false;  // startup=true: `added` is every current decision
    std::vector<FleetDecision> added, deleted;
    std::chrono::steady_clock::time_point received;  // the end of the HTTP response
    double parse_ms = 0;
};

// One detector ban to push, as the queue (and <state>.push) keeps it.
struct FleetAlert {
    net::Cidr prefix;
    int64_t at = 0;     // epoch seconds: the ban
    int64_t until = 0;  // epoch seconds: its end (a permanent ban: at + ban_time_max)
    std::string scan, proto;
    uint16_t port = 0;
};

class FleetClient {
public:
    struct Settings {
        std::vector<std::string> urls;  // fail over in this order
        std::string machine_id, password, bouncer_key, ca_file;
        bool push = true, pull = true;
        std::chrono::milliseconds poll{1000};
        std::chrono::seconds resync{300};
        std::string queue_path;  // pending pushes; "" = not kept
    };
    using LogFn = std::function<void(const std::string&)>;
    static constexpr size_t kQueueMax = 10000;  // pending alerts; the oldest go first when full
    static constexpr size_t kBatch = 100;       // alerts per POST

    struct Counters;
    // Reads the queue file and starts the thread. `counters` belong to the
    // caller and outlive this client: the metrics table reads them while a
    // SIGHUP replaces the client.
    FleetClient(Settings s, LogFn log, Counters& counters);
    ~FleetClient();  // stops the thread (a transfer in progress is aborted) and keeps the queue
    FleetClient(const FleetClient&) = delete;
    FleetClient& operator=(const FleetClient&) = delete;

    int fd() const { return event_.get(); }  // readable: take_updates() has something
    std::vector<FleetUpdate> take_updates();
    void push(FleetAlert a);
    // An admin unban on this host: the decisions this machine pushed for `c`
    // are deleted at the LAPI, and a queued alert for it is dropped.
    void forget_pushed(const net::Cidr& c);

    struct Counters {
        base::Counter pushed;        // alerts the LAPI accepted
        base::Counter push_dropped;  // alerts dropped: queue full, expired, refused as malformed
        base::Counter errors;        // failed requests (network, HTTP status)
        base::Counter polls;         // successful stream polls
        base::Counter failovers;     // switches to another URL
        base::Counter catch_ups;     // full polls after a slow delta poll (a decision it may have missed)
        base::Gauge queued;          // alerts waiting
        base::Gauge up;              // 1: the last request reached a LAPI
        std::atomic<int64_t> last_poll_ms{0};  // epoch ms of the last successful poll (0: none)
    };

    const std::string& url() const;  // the URL in use (for status)

private:
    struct Impl;
    void run();
    Settings s_;
    LogFn log_;
    base::UniqueFd event_;
    Counters& counters_;
    std::mutex mu_;
    std::condition_variable cv_;
    bool stop_ = false;
    std::deque<FleetAlert> queue_;         // under mu_
    std::vector<net::Cidr> unbans_;        // under mu_
    std::vector<FleetUpdate> updates_;     // under mu_
    bool queue_dirty_ = false;             // under mu_: the file is behind
    std::atomic<bool> stopping_{false};    // read by curl's progress callback
    std::unique_ptr<Impl> impl_;
    std::thread thread_;
};

}  // namespace portsentry::daemon
