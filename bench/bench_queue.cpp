// bench_queue: queued probes per second through portsentry's NfQueue (trivial
// DROP handler) versus bench/nfq_bare.c (a bare C reader, one DROP verdict
// per packet), same generator, same namespaces, same duration, alternating
// rounds. Prints figures; asserts nothing (docs/ARCHITECTURE.md target: ≥ 0.9× bare).
//
//   meson compile -C build bench_queue nfq_bare synflood
//   sudo build/bench/bench_queue [SECONDS=3] [ROUNDS=3]
//
// Set-up (nothing outside is touched; both namespaces are anonymous and
// vanish with this process): a holder child unshares the generator netns,
// this process unshares the victim netns, a veth pair joins them
// (192.0.2.2 → 192.0.2.1), and iptables-nft in the victim steers
// `tcp dport 9` to NFQUEUE 0 with --queue-bypass (this kernel has no nft
// `queue`). bench/synflood.c sends raw SYNs pinned to CPU 0 (the veth
// receive path and the enqueue run there too); the reader is pinned to
// CPU 1. Each reader counts verdicts for SECONDS, starting 0.5 s after its
// first packet. With fail-open, what a reader cannot keep up with is
// accepted by the kernel, so "offered" exceeds both rates.
//
// Third contender, the ratio: the same flood dropped by a plain nft
// rule (`tcp dport 9 counter drop` in an input chain ahead of the NFQUEUE
// rule), no userspace at all; its rate is the rule's counter over the same
// window. NfQueue / nft-drop is "queued-probe throughput vs a plain drop".
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "portsentry/kernel/nfqueue.hpp"

namespace {

namespace ps = portsentry::kernel;
constexpr double kWarmup = 0.5;
constexpr uint16_t kQueue = 0;

double now() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

double thread_cpu() {
    rusage ru{};
    getrusage(RUSAGE_THREAD, &ru);
    return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

// One reader's figures for one round.
struct Result {
    double pps = 0;       // verdicts per second of wall time
    double offered = 0;   // what synflood sent per second
    double capacity = 0;  // verdicts per CPU-second of the reader (user + system)
};

struct Child {
    pid_t pid = -1;
    int out = -1;  // its stdout, if captured
};

Child spawn(const std::vector<std::string>& argv, bool capture) {
    int p[2] = {-1, -1};
    if (capture && pipe2(p, O_CLOEXEC) < 0) {
        std::perror("pipe");
        std::exit(1);
    }
    pid_t pid = fork();
    if (pid == 0) {
        if (capture) dup2(p[1], 1);
        std::vector<char*> a;
        for (auto& s : argv) a.push_back(const_cast<char*>(s.c_str()));
        a.push_back(nullptr);
        execvp(a[0], a.data());
        std::fprintf(stderr, "exec %s: %s\n", a[0], std::strerror(errno));
        _exit(127);
    }
    if (capture) close(p[1]);
    return {pid, capture ? p[0] : -1};
}

std::string read_line(int fd) {
    std::string s;
    char c;
    while (read(fd, &c, 1) == 1 && c != '\n') s += c;
    return s;
}

std::string read_all(int fd) {
    std::string s;
    char buf[512];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0) s.append(buf, static_cast<size_t>(n));
    return s;
}

int wait_for(pid_t pid) {
    int st = 0;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

void must(const std::vector<std::string>& argv) {
    Child c = spawn(argv, false);
    if (wait_for(c.pid) != 0) {
        std::string cmd;
        for (auto& a : argv) cmd += a + " ";
        std::fprintf(stderr, "bench_queue: set-up failed: %s\n", cmd.c_str());
        std::exit(1);
    }
}

void pin(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(0, sizeof set, &set) < 0) std::perror("sched_setaffinity");
}

double rate_from(const std::string& text, const char* marker) {
    auto at = text.find(marker);
    if (at == std::string::npos) return 0;
    auto open = text.rfind('(', at);
    auto colon = text.rfind(':', at);
    size_t from = std::max(open == std::string::npos ? 0 : open + 1,
                           colon == std::string::npos ? 0 : colon + 1);
    return std::atof(text.c_str() + from);
}

struct Env {
    std::string dir;        // where nfq_bare and synflood live
    std::string gen_netns;  // /proc/PID/ns/net of the holder
    double seconds;
};

Child start_generator(const Env& e) {
    char secs[32];
    std::snprintf(secs, sizeof secs, "%.1f", e.seconds + kWarmup + 1.5);
    return spawn({"nsenter", "--net=" + e.gen_netns, "taskset", "-c", "0", e.dir + "/synflood",
                  "192.0.2.2", "192.0.2.1", "9", secs},
                 true);
}

double offered(Child& g) {
    std::string out = read_all(g.out);
    close(g.out);
    wait_for(g.pid);
    return rate_from(out, " pps)");
}

Result round_bare(const Env& e) {
    char w[16], s[16];
    std::snprintf(w, sizeof w, "%.1f", kWarmup);
    std::snprintf(s, sizeof s, "%.1f", e.seconds);
    Child r = spawn({"taskset", "-c", "1", e.dir + "/nfq_bare", std::to_string(kQueue), w, s}, true);
    if (read_line(r.out) != "ready") {
        std::fprintf(stderr, "bench_queue: nfq_bare did not start\n");
        std::exit(1);
    }
    Child g = start_generator(e);
    std::string out = read_all(r.out);
    close(r.out);
    wait_for(r.pid);
    Result res;
    res.offered = offered(g);
    res.pps = rate_from(out, " pps");
    double verdicts = std::atof(out.c_str() + std::min(out.size(), out.find("verdicts ") + 9));
    auto c = out.find("cpu ");
    double cpu = c == std::string::npos ? 0 : std::atof(out.c_str() + c + 4);
    res.capacity = cpu > 0 ? verdicts / cpu : 0;
    return res;
}

Result round_ours(const Env& e, ps::SourceCounters* total) {
    pin(1);
    Result res;
    {
        ps::NfQueue q(kQueue);  // the daemon's defaults: copy 128, maxlen 8192, fail-open
        Child g = start_generator(e);
        auto drop = [](std::span<const uint8_t>) { return ps::PacketVerdict::drop; };
        double first = 0, start = 0, give_up = now() + e.seconds + kWarmup + 10;
        uint64_t base = 0;
        double cpu0 = 0;
        for (;;) {
            double t = now();
            if (first == 0 && t > give_up) break;
            if (start != 0 && t >= start + e.seconds) {
                double n = static_cast<double>(q.counters().verdicts - base);
                res.pps = n / (t - start);
                double cpu = thread_cpu() - cpu0;
                res.capacity = cpu > 0 ? n / cpu : 0;
                break;
            }
            if (first != 0 && start == 0 && t >= first + kWarmup) {
                start = t;
                base = q.counters().verdicts;
                cpu0 = thread_cpu();
            }
            pollfd p{q.fd(), POLLIN, 0};
            if (poll(&p, 1, 200) > 0) q.process(drop);
            if (first == 0 && q.counters().received > 0) first = now();
        }
        const auto& c = q.counters();
        total->received += c.received;
        total->verdicts += c.verdicts;
        total->enobufs += c.enobufs;
        total->send_errors += c.send_errors;
        total->default_verdicts += c.default_verdicts;
        res.offered = offered(g);
    }  // unbind before the next reader binds queue 0
    pin(0);
    return res;
}

// Packets counted by the plain drop rule so far (`nft list table` text).
double drop_counter() {
    Child c = spawn({"nft", "list", "table", "inet", "psdrop"}, true);
    std::string out = read_all(c.out);
    close(c.out);
    wait_for(c.pid);
    auto at = out.find("packets ");
    return at == std::string::npos ? -1 : std::atof(out.c_str() + at + 8);
}

Result round_nft_drop(const Env& e) {
    // Priority -10: ahead of iptables-nft's INPUT chain (0), so the queue
    // rule never sees these packets.
    Child n = spawn({"nft", "add table inet psdrop { chain c { type filter hook input priority -10; "
                     "tcp dport 9 counter drop; }; }"},
                    false);
    if (wait_for(n.pid) != 0) {
        std::fprintf(stderr, "bench_queue: cannot load the plain drop rule\n");
        std::exit(1);
    }
    Child g = start_generator(e);
    usleep(static_cast<useconds_t>(kWarmup * 1e6));
    double t0 = now(), c0 = drop_counter();
    usleep(static_cast<useconds_t>(e.seconds * 1e6));
    double t1 = now(), c1 = drop_counter();
    Result res;
    res.pps = c0 < 0 || c1 < 0 ? 0 : (c1 - c0) / (t1 - t0);
    res.offered = offered(g);
    must({"nft", "delete", "table", "inet", "psdrop"});
    return res;
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.empty() ? 0 : v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
    if (geteuid() != 0) {
        std::fprintf(stderr, "bench_queue: needs root (network namespaces, NFQUEUE)\n");
        return 1;
    }
    Env e;
    e.seconds = argc > 1 ? std::atof(argv[1]) : 3.0;
    int rounds = argc > 2 ? std::atoi(argv[2]) : 3;
    e.dir = std::filesystem::read_symlink("/proc/self/exe").parent_path().string();

    // Holder of the generator namespace: unshares, reports, then sleeps until
    // we kill it at the end (its namespace dies with it).
    int sync[2];
    if (pipe(sync) < 0) return 1;
    pid_t holder = fork();
    if (holder == 0) {
        char ok = unshare(CLONE_NEWNET) == 0 ? '1' : '0';
        (void)!write(sync[1], &ok, 1);
        for (;;) pause();
    }
    char ok = '0';
    (void)!read(sync[0], &ok, 1);
    if (ok != '1' || unshare(CLONE_NEWNET) < 0) {
        std::fprintf(stderr, "bench_queue: unshare(CLONE_NEWNET) failed\n");
        kill(holder, SIGKILL);
        return 1;
    }
    e.gen_netns = "/proc/" + std::to_string(holder) + "/ns/net";
    must({"ip", "link", "set", "lo", "up"});
    must({"ip", "link", "add", "psv0", "type", "veth", "peer", "name", "psg0", "netns",
          std::to_string(holder)});
    must({"ip", "addr", "add", "192.0.2.1/24", "dev", "psv0"});
    must({"ip", "link", "set", "psv0", "up"});
    must({"nsenter", "--net=" + e.gen_netns, "ip", "link", "set", "lo", "up"});
    must({"nsenter", "--net=" + e.gen_netns, "ip", "addr", "add", "192.0.2.2/24", "dev", "psg0"});
    must({"nsenter", "--net=" + e.gen_netns, "ip", "link", "set", "psg0", "up"});
    must({"iptables-nft", "-w", "-A", "INPUT", "-p", "tcp", "--dport", "9", "-j", "NFQUEUE",
          "--queue-num", std::to_string(kQueue), "--queue-bypass"});
    usleep(200000);  // veth carrier up

    std::printf("bench_queue: %d rounds x %.1f s per reader; generator on CPU 0, reader on CPU 1\n",
                rounds, e.seconds);
    std::printf("%-6s %-10s %12s %12s %16s\n", "round", "reader", "verdicts/s", "offered/s",
                "verdicts/cpu-s");
    std::vector<double> bare, ours, bare_cap, ours_cap, drop;
    ps::SourceCounters total;
    for (int r = 0; r < rounds; ++r) {
        Result d = round_nft_drop(e);
        drop.push_back(d.pps);
        std::printf("%-6d %-10s %12.0f %12.0f %16s\n", r + 1, "nft-drop", d.pps, d.offered, "-");
        std::fflush(stdout);
        for (int k = 0; k < 2; ++k) {
            bool bare_turn = (r + k) % 2 == 0;  // alternate who goes first
            Result res = bare_turn ? round_bare(e) : round_ours(e, &total);
            (bare_turn ? bare : ours).push_back(res.pps);
            (bare_turn ? bare_cap : ours_cap).push_back(res.capacity);
            std::printf("%-6d %-10s %12.0f %12.0f %16.0f\n", r + 1,
                        bare_turn ? "nfq_bare" : "NfQueue", res.pps, res.offered, res.capacity);
            std::fflush(stdout);
        }
    }
    double mb = median(bare), mo = median(ours), cb = median(bare_cap), co = median(ours_cap);
    std::printf("median verdicts/s:     nfq_bare %.0f  NfQueue %.0f  ratio %.2f\n", mb, mo,
                mb > 0 ? mo / mb : 0.0);
    std::printf("median verdicts/cpu-s: nfq_bare %.0f  NfQueue %.0f  ratio %.2f\n", cb, co,
                cb > 0 ? co / cb : 0.0);
    double md = median(drop);
    std::printf("median packets/s:      nft-drop %.0f  NfQueue %.0f  ratio %.2f (queued / plain drop)\n", md,
                mo, md > 0 ? mo / md : 0.0);
    std::printf("NfQueue counters (all rounds): received %llu verdicts %llu default %llu "
                "overruns(id gaps) %llu send_errors %llu\n",
                static_cast<unsigned long long>(total.received),
                static_cast<unsigned long long>(total.verdicts),
                static_cast<unsigned long long>(total.default_verdicts),
                static_cast<unsigned long long>(total.enobufs),
                static_cast<unsigned long long>(total.send_errors));
    kill(holder, SIGKILL);
    wait_for(holder);
    return 0;
}
