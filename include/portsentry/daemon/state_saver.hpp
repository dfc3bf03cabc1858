// Keeps the state file in step with the ban table without stalling the
// packet loop: the loop only serializes, in slices of kSlice records between
// packet batches (a stalled loop lets fail-open NFQUEUE answer probes
// itself), starting a pass at most once per kSaveShare times what the last
// one cost; a StateWriter thread writes, fsyncs and renames.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "portsentry/base/metric.hpp"
#include "portsentry/daemon/state.hpp"

namespace portsentry::daemon {

class StateSaver {
public:
    using Clock = std::chrono::steady_clock;
    using LogFn = std::function<void(const std::string&)>;
    StateSaver(const BanStore& store, LogFn log);

    void mark_dirty() { dirty_ = true; }
    // An admin waits (ban/unban, fail2ban): a pass starts at most 1 s after
    // the last one ended, never back to back with it.
    void save_soon(Clock::time_point now);
    // Each tick: reports the writer's failures; starts a pass if due.
    void tick(Clock::time_point now);
    bool pending() const { return pass_.has_value(); }
    // One slice of the pass in progress (the loop's idle step).
    void step(Clock::time_point now);
    // Exit: on disk before the process ends (a pass in progress is dropped:
    // this snapshot has everything it had).
    void save_now();

    struct Figures {
        base::Gauge busy_ms, longest_ms, slices;  // the last pass
        base::Counter passes, serialize_errors;
    };
    const Figures& figures() const { return figures_; }
    StateWriter::Counters writer_counters() const { return writer_->counters(); }
    const std::string& path() const { return store_.path(); }
    const std::string& error() const { return error_; }  // the failure last logged, "" once written again

    static constexpr size_t kSlice = 2000;
    static constexpr int kSaveShare = 20;

private:
    void report(const std::string& err);
    struct Pass {
        std::vector<std::string> parts;  // one per slice: no big reallocation on the loop
        std::optional<net::Cidr> cursor;
        Clock::duration busy{};
        Clock::duration longest{};
        unsigned slices = 0;
    };
    const BanStore& store_;
    LogFn log_;
    std::unique_ptr<StateWriter> writer_;
    std::optional<Pass> pass_;
    bool dirty_ = false;
    Clock::time_point next_{};
    Clock::time_point pass_end_{};
    std::string error_;
    uint64_t written_at_error_ = 0;
    // While it lasts, a failure is logged again at least this often.
    static constexpr std::chrono::hours kRelog{1};
    Clock::time_point logged_at_{};
    Figures figures_;
};

}  // namespace portsentry::daemon
