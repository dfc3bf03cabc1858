// KILL_RUN_CMD and custom KILL_ROUTE: split into words first, expand macros
// inside words second, exec without a shell. Attacker-controlled text (a
// reverse-DNS name) therefore lands in exactly one argv word and is never
// re-split or interpreted.
#pragma once

#include "portsentry/config/keys.hpp"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <sys/types.h>
#include <vector>

#include "portsentry/actions/log.hpp"
#include "portsentry/base/metric.hpp"

namespace portsentry::actions {

// Command templates are split by config::split_command (the one copy: the
// config checks at load exactly what runs here).
using config::split_command;

struct Macros {
    std::string target;  // $TARGET$: the source address (as 1.2)
    std::string port;    // $PORT$
    std::string mode;    // $MODE$: "atcp", "sudp", ...
    std::string host;    // $HOST$: resolved name or address (extension; 1.2 had none)
};

// Expands $TARGET$ $PORT$ $MODE$ $HOST$ in one left-to-right pass: replacement
// text is never rescanned, so a hostname containing "$TARGET$" stays literal.
// *target_count (optional) receives how many $TARGET$ were expanded.
std::string expand_macros(std::string_view word, const Macros& m, int* target_count = nullptr);

// split_command + expand_macros on each word.
std::optional<std::vector<std::string>> build_argv(std::string_view tmpl, const Macros& m,
                                                   std::string* error, int* target_count = nullptr);

// The argv as one line for logs: words joined by spaces, a word containing a
// blank or a quote shown in double quotes, control characters as \xNN.
std::string argv_for_log(const std::vector<std::string>& argv);

struct CommandOptions {
    std::chrono::milliseconds timeout{10000};   // from Config::run_cmd_timeout
    std::chrono::milliseconds kill_grace{2000}; // SIGTERM → SIGKILL
    size_t max_in_flight = 16;                  // refuse (and log) beyond this
    // "" = the child inherits our stdout/stderr (journal); else both are
    // appended to this file (tests record a child's output this way).
    std::string output_file;
};

// Single-writer atomic cells: the runner's thread writes, metrics read.
struct CommandCounters {
    base::Counter started;
    base::Counter spawn_failed;  // exec failure reported by posix_spawn
    base::Counter refused;       // in-flight cap reached
    base::Counter exited_ok;
    base::Counter exited_failed; // non-zero exit or killed by a signal
    base::Counter timed_out;
};

// Runs commands as direct children (posix_spawnp: no shell, stdin /dev/null,
// own process group, default signal mask and dispositions) and reaps them
// without blocking. Single-threaded use (the daemon's response worker).
class CommandRunner {
public:
    CommandRunner(Log& log, CommandOptions opts);
    // Kills (SIGKILL to the process group) and reaps children still running,
    // so neither zombies nor stray commands outlive the runner.
    ~CommandRunner();
    CommandRunner(const CommandRunner&) = delete;
    CommandRunner& operator=(const CommandRunner&) = delete;

    // Starts argv (argv[0] looked up in PATH). `ip` names the host in log lines.
    // Returns "" once the child runs, else why not (exec failure, cap reached).
    std::string start(const std::vector<std::string>& argv, std::string_view ip);
    std::string start(const std::vector<std::string>& argv, std::string_view ip, TimePoint now);

    // Non-blocking: collects finished children (logging failures), sends
    // SIGTERM to those past the timeout and SIGKILL after the grace period.
    void reap();
    void reap(TimePoint now);

    // Blocks until the most recently started child exits or `deadline`
    // passes, then reaps. KILL_RUN_CMD_FIRST: 1.2's system() waited too.
    // Returns true if it exited in time. `abort` (optional) turning true ends
    // the wait early (daemon exit), checked at least every 100 ms.
    bool wait_newest(TimePoint deadline, const std::atomic<bool>* abort = nullptr);

    // SIGKILL every child's process group and wait for them.
    void terminate_all();

    void set_options(const CommandOptions& opts) { opts_ = opts; }
    size_t in_flight() const { return children_.size(); }
    const CommandCounters& counters() const { return counters_; }

private:
    struct Child {
        pid_t pid;
        std::string ip;
        std::string cmd;  // for log lines
        TimePoint started;
        bool term_sent = false;
        TimePoint term_at{};
    };
    Log& log_;
    CommandOptions opts_;
    std::vector<Child> children_;
    CommandCounters counters_;
};

}  // namespace portsentry::actions
