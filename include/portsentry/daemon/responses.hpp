// The 1.2 responses off the packet thread (issue 12, item 4).
//
// One worker thread runs actions::Responder for each judged probe: reverse
// DNS, attackalert lines, history and blocked records, hosts.deny, the
// KILL_RUN_CMD / custom KILL_ROUTE forks. The loop only queues a Job (after
// the verdicts went out) and gets the results back through an eventfd it
// reads like any other fd. One thread keeps 1.2's order of lines and actions
// per host (and across hosts: a KILL_RUN_CMD_FIRST command delays the next
// responses, as 1.2's system() did, never a verdict or another host's nft ban).
//
// The nft ban stays on the loop (BanManager is loop-only): normally it is made
// there before the job is queued and the job carries its result; with
// KILL_RUN_CMD_FIRST the job asks for it after the command completed: the
// worker posts a request, the loop bans on its next turn and answers, the
// worker waits for that answer (the loop never waits for the worker).
//
// The queue is bounded (`capacity` jobs): a job that does not fit is refused,
// counted, and named in a summary line (at most one per `summary_interval`,
// with how many reports lost their history record and up to 16 of their
// addresses) — never dropped silently. Ban-ended notices and reloads always
// fit (they are few and must not be lost).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "portsentry/actions/log.hpp"
#include "portsentry/actions/responder.hpp"
#include "portsentry/base/metric.hpp"
#include "portsentry/base/unique_fd.hpp"
#include "portsentry/daemon/ban_manager.hpp"
#include "portsentry/daemon/loop.hpp"

namespace portsentry::daemon {

class ResponseWorker {
public:
    struct Job {
        actions::Report rep;
        std::string ban_error;   // the loop's ban result ("" = banned or no ban asked)
        bool defer_ban = false;  // KILL_RUN_CMD_FIRST: ask the loop after the command
    };
    struct Done {
        actions::Report rep;  // d.ban_time as banned (escalated)
        actions::HandleResult res;
    };
    // Both run on the loop thread.
    using BanNow = std::function<BanManager::Installed(const actions::Report&, const Now&)>;
    using OnDone = std::function<void(const Done&, const Now&)>;

    struct Options {
        size_t capacity = 4096;                        // jobs waiting
        std::chrono::milliseconds tick{200};           // reap commands, hosts.deny clean-up
        std::chrono::seconds summary_interval{10};     // overflow summary lines
    };

    ResponseWorker(Loop& loop, actions::Responder& responder, actions::Log& log, BanNow ban, OnDone done,
                   Options opts);
    ResponseWorker(Loop& loop, actions::Responder& responder, actions::Log& log, BanNow ban, OnDone done)
        : ResponseWorker(loop, responder, log, std::move(ban), std::move(done), Options{}) {}
    // stop(), then the thread is joined.
    ~ResponseWorker();
    ResponseWorker(const ResponseWorker&) = delete;
    ResponseWorker& operator=(const ResponseWorker&) = delete;

    // Loop thread. Never blocks. false: the queue is full (counted, summarised).
    bool submit(Job j);
    // Loop thread: a ban ended early (unban, eviction): its hosts.deny line goes.
    void ban_ended(const net::IpAddr& a);
    // Loop thread (SIGHUP): applied in order with the jobs (the config is copied).
    void reconfigure(const config::Config& cfg);
    void reopen();
    // Loop thread, at start-up: the hosts.deny lines the daemon wrote for
    // these restored bans before a restart are adopted (read on the worker).
    void adopt_hosts_deny(std::vector<actions::RestoredBan> bans);
    // SIGCHLD: reap now rather than at the next tick.
    void wake();
    // Loop tick: the overflow summary line, when due.
    void tick(const Now& now);

    // Nothing queued or running, no command in flight, no answer unread.
    bool idle() const;
    // Called on the loop (from the eventfd callback) once idle() holds: the
    // SIGTERM drain uses it.
    void on_idle(std::function<void()> f) { on_idle_ = std::move(f); }
    // Refuses further ban requests (they fail: "exiting"), abandons queued
    // jobs, interrupts a KILL_RUN_CMD_FIRST wait, joins the thread.
    void stop();

    struct Counters {
        base::Counter queued;        // loop
        base::Counter overflow;      // loop: refused, queue full
        base::Counter handled;       // worker
        base::Counter ban_requests;  // loop: deferred bans made
        base::Counter abandoned;     // worker: jobs left when stopped
    };
    const Counters& counters() const { return counters_; }
    size_t waiting() const;

private:
    struct Item {
        enum class Kind { job, ended, reconfigure, reopen, adopt } kind = Kind::job;
        Job job;
        net::IpAddr addr;
        std::shared_ptr<const config::Config> cfg;
        std::vector<actions::RestoredBan> restored;  // adopt
    };
    struct BanRequest {
        actions::Report* rep;
        std::promise<BanManager::Installed> answer;
    };
    void run();
    void run_item(Item& it);
    std::string request_ban(actions::Report& rep);
    void on_ready(const Now& now);
    void signal_loop();
    void push(Item it);

    Loop& loop_;
    actions::Responder& responder_;
    actions::Log& log_;
    BanNow ban_;
    OnDone done_;
    Options opts_;
    base::UniqueFd event_fd_;
    std::function<void()> on_idle_;

    mutable std::mutex mu_;
    std::condition_variable wake_cv_;
    std::deque<Item> items_;
    size_t jobs_ = 0;                       // Kind::job entries in items_ (the capacity counts these)
    std::vector<BanRequest> ban_requests_;  // worker → loop
    std::vector<Done> done_items_;          // worker → loop
    bool busy_ = false, woken_ = false, stop_ = false;
    size_t in_flight_ = 0;                  // commands running (as of the worker's last look)
    std::atomic<bool> abort_{false};

    // Overflow summary (loop thread only).
    uint64_t lost_ = 0;
    std::vector<std::string> lost_addrs_;
    std::chrono::steady_clock::time_point last_summary_{};

    Counters counters_;
    std::thread thread_;  // last: starts after the members it uses
};

}  // namespace portsentry::daemon
