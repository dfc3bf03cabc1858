// Keeps the state file in step with the ban table without stalling the
// packet loop (docs/ARCHITECTURE.md, "Files the daemon owns"):
//  - every change is appended to the journal: the loop formats only the
//    changed records (BanStore::take_changes), at most kSlice per idle step,
//    and hands the batch to the StateWriter thread;
//  - when the journal outgrows max(kMinCompactBytes, the last snapshot) a
//    compaction writes a whole snapshot: the loop serializes it in slices of
//    at most kSlice records (and about kSliceBudget) between packet batches (a stalled loop lets fail-open
//    NFQUEUE answer probes itself), at most once per kSaveShare times what
//    the last pass cost; the writer thread writes, fsyncs and renames.
// So the bytes written follow the churn, not the table's size.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "portsentry/base/metric.hpp"
#include "portsentry/daemon/state.hpp"
#include "portsentry/daemon/state_writer.hpp"

namespace portsentry::daemon {

class StateSaver {
public:
    using Clock = std::chrono::steady_clock;
    using LogFn = std::function<void(const std::string&)>;
    // `crash_hook`, `threaded`: for tests and benches (StateWriter).
    StateSaver(BanStore& store, LogFn log, StateFiles::Hook crash_hook = {}, bool threaded = true);

    // After store.load(): opens the journal and starts following changes.
    void start();
    // An admin waits (ban/unban, fail2ban): the change is formatted now.
    void save_soon(Clock::time_point now) { step(now); }
    // Each tick: reports the writer's failures; starts a compaction if due.
    void tick(Clock::time_point now);
    // Work waits: changes to journal, or a compaction in progress.
    bool pending() const { return pass_.has_value() || !queue_.empty() || store_.has_changes(); }
    // One slice (the loop's idle step): changes first, then the compaction.
    void step(Clock::time_point now);
    // A compaction at the next chance, whatever the journal's size (tools).
    void compact_soon() { compact_wanted_ = true; }
    // Exit: every change on disk before the process ends (a compaction in
    // progress is dropped: the journal has everything it had).
    void save_now();

    struct Figures {
        base::Gauge busy_ms, longest_ms, slices;  // the last compaction pass
        base::Gauge longest_step_ms;              // the longest step since start (journal or compaction)
        base::Counter passes, serialize_errors;
        base::Counter journal_records;            // changed records formatted for the journal
    };
    const Figures& figures() const { return figures_; }
    StateWriter::Counters writer_counters() const { return writer_->counters(); }
    const std::string& path() const { return store_.path(); }
    const std::string& error() const { return error_; }  // the failure last logged, "" once written again

    static constexpr size_t kSlice = 2000;
    // A compaction slice stops early once it has taken this long (checked
    // every kChunk records: ~0.1 ms at a million records, whose nodes are
    // mostly cache misses), so a slice's work stays well under the 5 ms the
    // loop may spend saving.
    static constexpr size_t kChunk = 128;
    static constexpr std::chrono::microseconds kSliceBudget{500};
    static constexpr int kSaveShare = 20;
    // Compaction thresholds: a journal as big as the snapshot doubles what a
    // start-up reads, and halves the bytes written per change (each
    // compaction costs about what the journal grew by since the last).
    static constexpr uint64_t kMinCompactBytes = 1 << 20;

private:
    void drain(size_t max_records);
    bool compaction_due() const;
    void start_pass(Clock::time_point now);
    void serialize_slice();
    void report(const std::string& err);
    void note_step(Clock::duration d);
    struct Pass {
        std::vector<std::string> parts;  // one per slice: no big reallocation on the loop
        std::optional<net::Cidr> cursor;
        Clock::duration busy{};
        Clock::duration longest{};
        unsigned slices = 0;
    };
    BanStore& store_;
    LogFn log_;
    std::unique_ptr<StateWriter> writer_;
    std::vector<net::Cidr> queue_;  // changed prefixes not yet formatted
    size_t queue_pos_ = 0;
    uint64_t journal_bytes_ = 0;    // in the journal since the last rotate
    uint64_t snapshot_bytes_ = 0;   // the last snapshot's size
    bool compact_wanted_ = false;
    std::optional<Pass> pass_;
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
