#include "portsentry/actions/command.hpp"

#include <fcntl.h>
#include <signal.h>
#include <poll.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "portsentry/base/unique_fd.hpp"

#include <fmt/format.h>

#include "portsentry/actions/messages.hpp"

extern char** environ;

namespace portsentry::actions {

std::string expand_macros(std::string_view word, const Macros& m, int* target_count) {
    struct Macro {
        std::string_view name;
        const std::string* value;
        bool is_target;
    };
    const Macro macros[] = {
        {"$TARGET$", &m.target, true},
        {"$PORT$", &m.port, false},
        {"$MODE$", &m.mode, false},
        {"$HOST$", &m.host, false},
    };
    std::string out;
    out.reserve(word.size());
    int targets = 0;
    size_t i = 0;
    while (i < word.size()) {
        bool replaced = false;
        if (word[i] == '$') {
            for (const auto& mac : macros) {
                if (word.substr(i, mac.name.size()) == mac.name) {
                    out += *mac.value;  // appended, never rescanned
                    i += mac.name.size();
                    targets += mac.is_target ? 1 : 0;
                    replaced = true;
                    break;
                }
            }
        }
        if (!replaced) out.push_back(word[i++]);
    }
    if (target_count) *target_count = targets;
    return out;
}

std::optional<std::vector<std::string>> build_argv(std::string_view tmpl, const Macros& m,
                                                   std::string* error, int* target_count) {
    auto words = split_command(tmpl, error);
    if (!words) return std::nullopt;
    int total = 0;
    for (auto& w : *words) {
        int n = 0;
        w = expand_macros(w, m, &n);
        total += n;
    }
    if (target_count) *target_count = total;
    return words;
}

std::string argv_for_log(const std::vector<std::string>& argv) {
    std::string out;
    for (size_t i = 0; i < argv.size(); ++i) {
        if (i) out.push_back(' ');
        const std::string& w = argv[i];
        bool quote = w.empty() || w.find_first_of(" \t\"") != std::string::npos;
        if (quote) out.push_back('"');
        for (char c : w) {
            auto u = static_cast<unsigned char>(c);
            if (u < 0x20 || u == 0x7f) out += fmt::format("\\x{:02x}", u);
            else if (c == '"') out += "\\\"";
            else out.push_back(c);
        }
        if (quote) out.push_back('"');
    }
    return out;
}

// ---------------------------------------------------------------- CommandRunner

namespace {

// RAII for the posix_spawn attribute objects.
struct SpawnSetup {
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    SpawnSetup() {
        posix_spawn_file_actions_init(&fa);
        posix_spawnattr_init(&attr);
    }
    ~SpawnSetup() {
        posix_spawn_file_actions_destroy(&fa);
        posix_spawnattr_destroy(&attr);
    }
    SpawnSetup(const SpawnSetup&) = delete;
    SpawnSetup& operator=(const SpawnSetup&) = delete;
};

}  // namespace

CommandRunner::CommandRunner(Log& log, CommandOptions opts) : log_(log), opts_(std::move(opts)) {}

CommandRunner::~CommandRunner() { terminate_all(); }

std::string CommandRunner::start(const std::vector<std::string>& argv, std::string_view ip) {
    return start(argv, ip, Clock::now());
}

std::string CommandRunner::start(const std::vector<std::string>& argv, std::string_view ip,
                                 TimePoint now) {
    const std::string cmd = argv_for_log(argv);
    if (argv.empty() || argv[0].empty()) return "empty command";
    if (children_.size() >= opts_.max_in_flight) {
        // Hanging commands multiplied by a flood of reports must not fork-bomb the host.
        ++counters_.refused;
        log_.write(msg::command_refused(ip, cmd, children_.size()), now);
        return fmt::format("{} commands still running", children_.size());
    }

    SpawnSetup s;
    int rc = 0;
    auto step = [&rc](int r) {  // keep the first failure
        if (rc == 0) rc = r;
    };
    // stdin from /dev/null: the command must never read our stdin (a terminal
    // in the foreground, or whatever systemd passed).
    step(posix_spawn_file_actions_addopen(&s.fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0));
    if (!opts_.output_file.empty()) {
        step(posix_spawn_file_actions_addopen(&s.fa, STDOUT_FILENO, opts_.output_file.c_str(),
                                                    O_WRONLY | O_APPEND | O_CREAT, 0600));
        step(posix_spawn_file_actions_adddup2(&s.fa, STDOUT_FILENO, STDERR_FILENO));
    }
    // The daemon blocks signals for signalfd and ignores SIGPIPE; both survive
    // exec, so reset mask and dispositions. Own process group: a timeout kills
    // the command and whatever it started.
    sigset_t empty, all;
    sigemptyset(&empty);
    sigfillset(&all);
    sigdelset(&all, SIGKILL);
    sigdelset(&all, SIGSTOP);
    step(posix_spawnattr_setsigmask(&s.attr, &empty));
    step(posix_spawnattr_setsigdefault(&s.attr, &all));
    step(posix_spawnattr_setpgroup(&s.attr, 0));
    step(posix_spawnattr_setflags(
                   &s.attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP));
    if (rc != 0) {
        ++counters_.spawn_failed;
        return fmt::format("posix_spawn setup: {}", std::strerror(rc));
    }

    std::vector<char*> cargv;
    cargv.reserve(argv.size() + 1);
    for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
    cargv.push_back(nullptr);

    pid_t pid = -1;
    // glibc's posix_spawnp (vfork-style clone) reports exec failure (ENOENT,
    // EACCES) here, synchronously, like 1.2's "exec fail" from system().
    rc = posix_spawnp(&pid, cargv[0], &s.fa, &s.attr, cargv.data(), environ);
    if (rc != 0) {
        ++counters_.spawn_failed;
        return fmt::format("{}: {}", argv[0], std::strerror(rc));
    }
    ++counters_.started;
    children_.push_back(Child{pid, std::string(ip), cmd, now});
    return {};
}

void CommandRunner::reap() { reap(Clock::now()); }

void CommandRunner::reap(TimePoint now) {
    for (size_t i = 0; i < children_.size();) {
        Child& c = children_[i];
        int status = 0;
        pid_t r = ::waitpid(c.pid, &status, WNOHANG);
        if (r == c.pid || (r < 0 && errno == ECHILD)) {
            if (r == c.pid) {
                if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
                    ++counters_.exited_ok;
                } else {
                    ++counters_.exited_failed;
                    // After a timeout the kill is already logged; its signal is no news.
                    if (!c.term_sent) log_.write(msg::command_failed(c.ip, c.cmd, status), now);
                }
            }
            children_.erase(children_.begin() + static_cast<std::ptrdiff_t>(i));
            continue;
        }
        if (!c.term_sent && now - c.started >= opts_.timeout) {
            ++counters_.timed_out;
            log_.write(msg::command_timed_out(
                           c.ip, c.cmd,
                           static_cast<long>(
                               std::chrono::duration_cast<std::chrono::seconds>(opts_.timeout).count())),
                       now);
            ::kill(-c.pid, SIGTERM);
            c.term_sent = true;
            c.term_at = now;
        } else if (c.term_sent && now - c.term_at >= opts_.kill_grace) {
            ::kill(-c.pid, SIGKILL);  // repeated each turn until reaped: harmless
        }
        ++i;
    }
}

bool CommandRunner::wait_newest(TimePoint deadline, const std::atomic<bool>* abort) {
    if (children_.empty()) return true;
    const pid_t pid = children_.back().pid;
    // A pidfd (Linux 5.3) becomes readable when the child exits: one poll
    // with the remaining time, no signal handling, no busy loop.
    base::UniqueFd pfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
    auto running = [&] {
        return std::any_of(children_.begin(), children_.end(), [&](const Child& c) { return c.pid == pid; });
    };
    while (running()) {
        const TimePoint now = Clock::now();
        if (now >= deadline || (abort && abort->load())) return false;
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count() + 1;
        if (pfd) {
            pollfd p{pfd.get(), POLLIN, 0};
            (void)::poll(&p, 1, static_cast<int>(std::min<long long>(left, 100)));
        } else {  // an older kernel: short sleeps
            ::usleep(static_cast<useconds_t>(std::min<long long>(left, 10)) * 1000);
        }
        reap(Clock::now());
    }
    return true;
}

void CommandRunner::terminate_all() {
    for (auto& c : children_) {
        ::kill(-c.pid, SIGKILL);
        int status = 0;
        while (::waitpid(c.pid, &status, 0) < 0 && errno == EINTR) {
        }
    }
    children_.clear();
}

}  // namespace portsentry::actions
