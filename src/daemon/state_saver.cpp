#include "portsentry/daemon/state_saver.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace portsentry::daemon {

namespace {
double ms(StateSaver::Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }
}  // namespace

StateSaver::StateSaver(BanStore& store, LogFn log, StateFiles::Hook crash_hook, bool threaded)
    : store_(store),
      log_(std::move(log)),
      writer_(std::make_unique<StateWriter>(store.path(), std::move(crash_hook), threaded)) {}

void StateSaver::start() {
    const StateOnDisk& d = store_.on_disk();
    writer_->open(d);
    journal_bytes_ = d.replayed_bytes();
    snapshot_bytes_ = d.snapshot_bytes;
    store_.track_changes(true);
}

void StateSaver::tick(Clock::time_point now) {
    report(writer_->take_error());
    if (compaction_due()) compact_wanted_ = true;
    if (compact_wanted_ && !pending()) start_pass(now);
}

bool StateSaver::compaction_due() const {
    if (pass_ || writer_->snapshot_pending()) return false;
    return writer_->journal_broken() || journal_bytes_ >= std::max(kMinCompactBytes, snapshot_bytes_);
}

// Only between batches (every change so far committed to the journal): the
// snapshot then starts from a state the journal also reaches.
void StateSaver::start_pass(Clock::time_point now) {
    if (pass_ || now < next_) return;
    compact_wanted_ = false;
    writer_->rotate();
    journal_bytes_ = 0;
    pass_.emplace();
    pass_->parts.emplace_back();  // the header, with the generation: the writer's
}

void StateSaver::step(Clock::time_point now) {
    const auto t0 = Clock::now();  // this step's own cost, not the turn's
    try {
        if (store_.has_changes() || queue_pos_ < queue_.size()) {
            drain(kSlice);
            if (queue_.empty() && compact_wanted_) start_pass(now);
        } else if (pass_) {
            serialize_slice();
        }
    } catch (const std::exception& e) {  // bad_alloc: the changes are still listed (drain); the pass is retried
        log_(fmt::format("portsentry-nfq: cannot save state: {}", e.what()));
        figures_.serialize_errors.inc();
        if (pass_) compact_wanted_ = true;
        pass_.reset();
    }
    note_step(Clock::now() - t0);
}

// Formats up to `max_records` changed records as one journal batch; the
// batch that empties the list ends with a commit line. The list moves on only
// once the batch is handed over: a failure (bad_alloc) retries the same
// records, so no later commit can follow a change that was never written.
void StateSaver::drain(size_t max_records) {
    auto fresh = store_.take_changes();
    queue_.insert(queue_.end(), fresh.begin(), fresh.end());
    std::string batch;
    batch.reserve(std::min(max_records, queue_.size() - queue_pos_) * 210 + 2);
    size_t pos = queue_pos_;
    for (; pos < queue_.size() && pos - queue_pos_ < max_records; ++pos) {
        const net::Cidr& c = queue_[pos];
        if (const BanRecord* r = store_.find(c)) append_journal_put(batch, *r);
        else append_journal_erase(batch, c);
    }
    const bool last = pos == queue_.size();
    if (last) batch += kJournalCommit;
    const size_t bytes = batch.size();
    writer_->append(std::move(batch));
    figures_.journal_records.inc(pos - queue_pos_);
    journal_bytes_ += bytes;
    queue_pos_ = pos;
    if (last) {
        queue_.clear();
        queue_pos_ = 0;
    }
}

void StateSaver::serialize_slice() {
    Pass& p = *pass_;
    const auto t0 = Clock::now();
    std::string& part = p.parts.emplace_back();
    // What the last slice wrote, so most slices never reallocate (a budget-
    // cut slice writes far less than kSlice records: reserving for kSlice
    // costs an mmap and its page faults per slice at a million records).
    part.reserve(p.parts.size() > 1 ? p.parts[p.parts.size() - 2].size() + 4096 : kChunk * 256);
    bool done = false;
    // Up to kSlice records, in chunks, until the slice has had its time: a
    // busy CPU shortens the slice, not the loop's turn. At least one chunk,
    // or a slow allocation would stop the pass from ever finishing.
    size_t n = 0;
    do {
        done = store_.serialize_some(part, p.cursor, kChunk);
        n += kChunk;
    } while (!done && n < kSlice && Clock::now() - t0 < kSliceBudget);
    const auto took = Clock::now() - t0;
    p.busy += took;
    p.longest = std::max(p.longest, took);
    ++p.slices;
    if (!done) return;
    figures_.busy_ms.set(ms(p.busy));
    figures_.longest_ms.set(ms(p.longest));
    figures_.slices.set(p.slices);
    figures_.passes.inc();
    pass_end_ = Clock::now();
    next_ = pass_end_ + p.busy * kSaveShare;
    snapshot_bytes_ = 0;
    for (const auto& s : p.parts) snapshot_bytes_ += s.size();
    // Nothing waits to be journaled (changes come first in step()): the
    // journal's last commit is at least as new as every slice.
    writer_->snapshot(std::move(p.parts));
    pass_.reset();
}

void StateSaver::note_step(Clock::duration d) {
    if (ms(d) > figures_.longest_step_ms.value()) figures_.longest_step_ms.set(ms(d));
}

void StateSaver::save_now() {
    pass_.reset();
    try {
        while (store_.has_changes() || queue_pos_ < queue_.size()) drain(SIZE_MAX);
    } catch (const std::exception& e) {
        log_(fmt::format("portsentry-nfq: cannot save state: {}", e.what()));
        return;
    }
    report(writer_->flush());
}

// A failing state file is logged when the error changes, again every
// kRelog while it lasts, and its recovery.
void StateSaver::report(const std::string& err) {
    const uint64_t ok = writer_->counters().succeeded;
    if (!err.empty()) {
        const auto now = Clock::now();
        if (err != error_ || now - logged_at_ >= kRelog) {
            log_(fmt::format("portsentry-nfq: cannot save state: {} (failing writes so far: {})", err,
                             writer_->counters().failed));
            logged_at_ = now;
        }
        error_ = err;
        written_at_error_ = ok;
    } else if (!error_.empty() && ok > written_at_error_ && !writer_->journal_broken()) {
        log_(fmt::format("portsentry-nfq: state file {} written again", store_.path()));
        error_.clear();
    }
}

}  // namespace portsentry::daemon
