// The state file's writing side, off the packet loop (docs/ARCHITECTURE.md,
// "Files the daemon owns" and "Threads"). The loop hands over small journal
// batches (the changed records) and, now and then, a whole snapshot
// (compaction); a StateWriter thread writes them in the order given, through
// StateFiles, which owns the crash-safety protocol:
//
//   <state>                 snapshot: "# generation S", then every record
//   <state>.journal.<N>     changes since; replayed at load if N >= S
//
//   append   write the batch (ending in a commit line), fdatasync
//   rotate   (a compaction starts) create journal N+1 by temp + rename;
//            later batches go there
//   snapshot write <state> with generation N+1 by temp + fsync + rename,
//            then delete the journals below N+1
//
// A crash between any two steps leaves: the old snapshot and every journal
// since (nothing deleted before the new snapshot is in place), or the new
// snapshot and the journal(s) at or above its generation. Load replays each
// journal up to its last commit line, so the table read is one the daemon had.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "portsentry/base/unique_fd.hpp"
#include "portsentry/daemon/state.hpp"

namespace portsentry::daemon {

// The protocol above, synchronous. Each step throws std::system_error naming
// the file on failure. `crash_hook`, for tests, is called with each step's
// name before the step ("append", "append.sync", "rotate", "snapshot",
// "snapshot.cleanup"): throwing from it is a crash at that point.
class StateFiles {
public:
    using Hook = std::function<void(std::string_view step)>;
    explicit StateFiles(std::string path, Hook crash_hook = {});

    // After BanStore::load: removes stale journals (below the snapshot's
    // generation), cuts the newest journal back to its last commit (so new
    // batches never follow a torn line) and appends there, or creates one.
    void open(const StateOnDisk& found);
    void append(std::string_view batch);
    // A compaction starts: later batches go to a new journal. Returns the
    // generation the snapshot of this pass gets.
    uint64_t rotate();
    // parts[0] is replaced by the header with the generation of the last rotate().
    void snapshot(std::vector<std::string>& parts);

    bool opened() const { return fd_.valid(); }
    uint64_t generation() const { return generation_; }
    uint64_t journal_bytes() const { return journal_bytes_; }  // of the current journal

private:
    void create_journal(uint64_t generation);
    void step(std::string_view name) const {
        if (hook_) hook_(name);
    }

    const std::string path_;
    Hook hook_;
    base::UniqueFd fd_;               // the current journal, O_APPEND
    uint64_t generation_ = 0;         // the current journal's
    uint64_t journal_bytes_ = 0;
    std::vector<uint64_t> older_;     // journals below the current one, not yet deleted
};

// Runs StateFiles on its own thread: write + fsync + rename (seconds for a
// big table on a busy disk) never stall verdicts. Jobs run in the order
// submitted; errors come back through take_error() on the loop's tick.
class StateWriter {
public:
    // `threaded` false: each job runs inside the call (tests, tools).
    explicit StateWriter(std::string path, StateFiles::Hook crash_hook = {}, bool threaded = true);
    ~StateWriter();  // writes what still waits, then joins
    StateWriter(const StateWriter&) = delete;
    StateWriter& operator=(const StateWriter&) = delete;

    void open(const StateOnDisk& found);
    void append(std::string batch);
    void rotate();
    void snapshot(std::vector<std::string> parts);
    // Blocks until everything submitted is on disk (daemon exit).
    // Returns the failure of the last job, "" if it succeeded.
    std::string flush();
    // A failure not yet reported ("" if none): the loop logs it on its tick.
    std::string take_error();
    // A journal batch could not be written: only a snapshot (compaction)
    // makes the files whole again. Cleared by a successful snapshot.
    bool journal_broken() const;
    // A snapshot is waiting or being written.
    bool snapshot_pending() const;

    struct Counters {
        uint64_t written = 0;           // snapshots written
        uint64_t succeeded = 0;         // jobs that succeeded (snapshots, batches, rotations)
        uint64_t failed = 0;            // jobs that failed
        uint64_t journal_batches = 0;
        uint64_t journal_bytes = 0;     // appended since start
        uint64_t snapshot_bytes = 0;    // written by snapshots since start
        double last_ms = 0;             // duration of the last snapshot
        size_t last_bytes = 0;          // size of the last snapshot
    };
    Counters counters() const;

private:
    enum class Kind { open, append, rotate, snapshot };
    struct Job {
        Kind kind;
        std::vector<std::string> parts;
        StateOnDisk found;
    };
    void submit(Job j);
    void run();
    void execute(Job& j);

    StateFiles files_;
    const bool threaded_;
    mutable std::mutex mu_;
    std::condition_variable wake_;  // a job waits, or stop
    std::condition_variable idle_;  // nothing waits and nothing runs
    std::deque<Job> jobs_;
    bool running_ = false;
    bool stop_ = false;
    bool broken_ = false;     // the files miss changes until a snapshot is written
    bool hole_ = false;       // the current journal misses a batch: appends skipped
    size_t snapshots_queued_ = 0;
    std::string error_;       // last job's failure, for flush()
    std::string unreported_;  // for take_error()
    Counters counters_;
    std::thread thread_;  // last: starts after the members it uses exist
};

}  // namespace portsentry::daemon
