// The packet path, from a steered packet (or a tripwire hit) to the 1.2
// responses: parse, ask the engine, give the verdict at once; after the
// batch's verdicts went out, one kernel batch of bans (BanManager), then the
// responses queued for the worker thread (attackalert lines, history/blocked
// records, hosts.deny, commands: ResponseWorker); JSON events when they come
// back. With KILL_RUN_CMD_FIRST the ban waits for the command: the worker
// asks for it through ban_now().
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <vector>

#include "portsentry/actions/events.hpp"
#include "portsentry/actions/log.hpp"
#include "portsentry/actions/responder.hpp"
#include "portsentry/base/metric.hpp"
#include "portsentry/config/config.hpp"
#include "portsentry/daemon/ban_manager.hpp"
#include "portsentry/daemon/loop.hpp"
#include "portsentry/daemon/responses.hpp"
#include "portsentry/engine/engine.hpp"
#include "portsentry/kernel/packet_source.hpp"
#include "portsentry/net/packet.hpp"

namespace portsentry::daemon {

// json_log: one JSON object per event, or nothing when it is off.
class JsonEvents {
public:
    explicit JsonEvents(actions::Log& log) : log_(log) {}
    void open(const std::string& path);  // (re)opens, reopens for logrotate, or closes ("")
    bool on() const { return file_ != nullptr; }
    void emit(const char* name, nlohmann::ordered_json fields) {
        if (file_) file_->write(name, std::move(fields));
    }
    void tick(const Now& now) {
        if (file_) file_->flush(now.wall, now.steady);
    }
    const actions::EventLog* file() const { return file_.get(); }

private:
    actions::Log& log_;
    std::unique_ptr<actions::EventLog> file_;
};

class ProbePath {
public:
    // `clock` is read once per ban batch, after the kernel acknowledged it,
    // to measure probe → ban (the one reading a part takes besides the
    // loop's: a latency needs its end point); tests hand in their own.
    using Clock = std::function<std::chrono::steady_clock::time_point()>;
    ProbePath(engine::Engine& engine, BanManager& bans, actions::Log& log, JsonEvents& events,
              const config::Config& cfg, Clock clock = std::chrono::steady_clock::now);
    // The worker the responses go to (Service builds it after this, with
    // ban_now and on_done as its callbacks); must be set before packets flow.
    void set_worker(ResponseWorker* w) { worker_ = w; }
    void reconfigure(const config::Config& cfg) { cfg_ = &cfg; }

    // One steered packet (`l3` from the IP header). Unreadable packets are
    // accepted: the rule steers closed ports only, so the kernel then answers
    // as it would without us.
    kernel::PacketVerdict on_packet(std::span<const uint8_t> l3, const Now& now);
    // A classic tripwire fired (handshake-proven for TCP).
    void on_tripwire(const net::IpAddr& src, net::L4 proto, uint16_t port, const Now& now);
    // After the verdicts went out: bans in one batch, then the responses.
    void flush(const Now& now);
    // The worker's callbacks (loop thread): a KILL_RUN_CMD_FIRST ban after
    // its command; a report's responses done.
    BanManager::Installed ban_now(const actions::Report& rep, const Now& now);
    void on_done(const ResponseWorker::Done& d, const Now& now);

    // portsentry_probes_total{proto,type}: labels of each engine::ScanType.
    static constexpr size_t kScanTypes = static_cast<size_t>(engine::ScanType::udp_tripwire) + 1;
    struct ProbeLabels {
        const char* proto;
        const char* type;
    };
    static ProbeLabels probe_labels(engine::ScanType t);

    struct Counters {
        base::Counter malformed;  // packets the parser refused (accepted unread)
        // Probes the engine judged from sources that are not ignored (every
        // outcome but "not watched" and "ignored"), by engine::ScanType.
        base::Counter probes[kScanTypes];
        // Packet received (the loop's clock reading for the turn that read
        // it) → its ban batch acknowledged by the kernel, per detector ban.
        base::Histogram probe_to_ban_seconds{
            {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5}};
    };
    const Counters& counters() const { return counters_; }

private:
    struct Pending {
        net::Packet pkt;
        engine::Decision d;
        std::chrono::steady_clock::time_point received;  // the turn's clock reading
    };
    void count(const engine::Decision& d);
    void observe_ban(std::chrono::steady_clock::time_point received, std::chrono::steady_clock::time_point acked);
    void report(Pending& p, const std::string& ban_error, bool defer_ban, const Now& now);
    bool defers_ban(const engine::Decision& d) const { return cfg_->kill_run_cmd_first && d.run_cmd && d.ban; }
    std::string mode_name(net::L4 proto) const;
    static nlohmann::ordered_json probe_fields(const net::IpAddr& src, net::L4 proto, uint16_t port,
                                               const engine::Decision& d, uint8_t tcp_flags);
    static nlohmann::ordered_json probe_fields(const Pending& p) {
        return probe_fields(p.pkt.src, p.pkt.proto, p.pkt.dport, p.d, p.pkt.tcp_flags);
    }

    engine::Engine& engine_;
    BanManager& bans_;
    ResponseWorker* worker_ = nullptr;
    actions::Log& log_;
    JsonEvents& events_;
    const config::Config* cfg_;
    Clock clock_;
    std::vector<Pending> pending_;
    Counters counters_;
};

}  // namespace portsentry::daemon
