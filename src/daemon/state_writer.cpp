#include "portsentry/daemon/state_writer.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <stdexcept>
#include <fmt/format.h>
#include <system_error>
#include <utility>

#include "portsentry/base/error.hpp"
#include "portsentry/base/files.hpp"

namespace portsentry::daemon {

using base::sys_error;

// ------------------------------------------------------------- StateFiles

StateFiles::StateFiles(std::string path, Hook crash_hook) : path_(std::move(path)), hook_(std::move(crash_hook)) {}

void StateFiles::open(const StateOnDisk& found) {
    fd_.reset();
    older_.clear();
    const StateOnDisk::Journal* newest = nullptr;
    for (const auto& j : found.journals) {
        if (j.generation < found.generation) {  // in the snapshot already
            ::unlink(BanStore::journal_path(path_, j.generation).c_str());
            continue;
        }
        if (newest) older_.push_back(newest->generation);
        newest = &j;
    }
    if (!newest) {
        create_journal(found.generation);
        return;
    }
    const std::string jp = BanStore::journal_path(path_, newest->generation);
    base::UniqueFd fd(::open(jp.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW));
    if (!fd) throw sys_error("cannot open journal " + jp);
    // What follows the last commit was dropped at load: never append after it.
    if (::ftruncate(fd.get(), static_cast<off_t>(newest->committed)) < 0) throw sys_error("cannot truncate " + jp);
    fd_ = std::move(fd);
    generation_ = newest->generation;
    journal_bytes_ = newest->committed;
}

void StateFiles::create_journal(uint64_t generation) {
    const std::string jp = BanStore::journal_path(path_, generation);
    const std::string header = fmt::format(
        "# portsentry-nfq ban journal, generation {}: changes since the snapshot in {}; replayed at start\n",
        generation, path_);
    // Created whole (temp + rename): a journal exists only with its header.
    base::write_file_atomically(jp, header);
    base::UniqueFd fd(::open(jp.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW));
    if (!fd) throw sys_error("cannot open journal " + jp);
    fd_ = std::move(fd);
    generation_ = generation;
    journal_bytes_ = header.size();
}

void StateFiles::append(std::string_view batch) {
    if (!fd_) throw std::system_error(EBADF, std::generic_category(), "journal not open");
    step("append");
    if (int err = base::write_all(fd_.get(), batch); err != 0) {
        // A partial batch has no commit line, but the next one would follow
        // it: cut the file back to the last commit.
        (void)::ftruncate(fd_.get(), static_cast<off_t>(journal_bytes_));
        throw std::system_error(err, std::generic_category(),
                                "cannot append to journal " + BanStore::journal_path(path_, generation_));
    }
    step("append.sync");
    // fdatasync: the journal's size changes, so its metadata is written too.
    if (::fdatasync(fd_.get()) < 0) throw sys_error("cannot sync journal " + BanStore::journal_path(path_, generation_));
    journal_bytes_ += batch.size();
}

uint64_t StateFiles::rotate() {
    step("rotate");
    const uint64_t previous = generation_;
    create_journal(generation_ + 1);
    older_.push_back(previous);
    return generation_;
}

void StateFiles::snapshot(std::vector<std::string>& parts) {
    if (parts.empty()) parts.emplace_back();
    parts[0] = BanStore::snapshot_header(generation_);
    step("snapshot");
    base::write_file_atomically(path_, parts);
    step("snapshot.cleanup");
    // Below the snapshot's generation: stale whether or not this finishes.
    for (uint64_t g : older_) ::unlink(BanStore::journal_path(path_, g).c_str());
    older_.clear();
}

// ------------------------------------------------------------- StateWriter

StateWriter::StateWriter(std::string path, StateFiles::Hook crash_hook, bool threaded)
    : files_(std::move(path), std::move(crash_hook)), threaded_(threaded) {
    if (threaded_) thread_ = std::thread([this] { run(); });
}

StateWriter::~StateWriter() {
    if (!threaded_) return;
    {
        std::lock_guard lk(mu_);
        stop_ = true;
    }
    wake_.notify_one();
    thread_.join();
}

void StateWriter::open(const StateOnDisk& found) { submit({Kind::open, {}, found}); }
void StateWriter::append(std::string batch) {
    std::vector<std::string> p;
    p.push_back(std::move(batch));
    submit({Kind::append, std::move(p), {}});
}
void StateWriter::rotate() { submit({Kind::rotate, {}, {}}); }
void StateWriter::snapshot(std::vector<std::string> parts) { submit({Kind::snapshot, std::move(parts), {}}); }

void StateWriter::submit(Job j) {
    if (!threaded_) {
        if (j.kind == Kind::snapshot) ++snapshots_queued_;
        execute(j);
        return;
    }
    {
        std::lock_guard lk(mu_);
        if (j.kind == Kind::snapshot) ++snapshots_queued_;
        jobs_.push_back(std::move(j));
    }
    wake_.notify_one();
}

std::string StateWriter::flush() {
    std::unique_lock lk(mu_);
    idle_.wait(lk, [&] { return jobs_.empty() && !running_; });
    unreported_.clear();  // the caller reports it
    return error_;
}

std::string StateWriter::take_error() {
    std::lock_guard lk(mu_);
    return std::exchange(unreported_, std::string());
}

bool StateWriter::journal_broken() const {
    std::lock_guard lk(mu_);
    return broken_;
}

bool StateWriter::snapshot_pending() const {
    std::lock_guard lk(mu_);
    return snapshots_queued_ > 0;
}

StateWriter::Counters StateWriter::counters() const {
    std::lock_guard lk(mu_);
    return counters_;
}

void StateWriter::run() {
    std::unique_lock lk(mu_);
    for (;;) {
        wake_.wait(lk, [&] { return !jobs_.empty() || stop_; });
        if (jobs_.empty()) return;  // stop, and everything submitted is written
        Job j = std::move(jobs_.front());
        jobs_.pop_front();
        running_ = true;
        lk.unlock();
        execute(j);
        lk.lock();
        running_ = false;
        if (jobs_.empty()) idle_.notify_all();
    }
}

// One job, on the writer thread (or inline). The journal gets a hole when a
// batch cannot be written: later batches are then skipped (a replay must not
// skip changes in the middle) until a rotate starts a new journal, and the
// files are whole again once a snapshot taken after it is written.
void StateWriter::execute(Job& j) {
    std::string err;
    const auto t0 = std::chrono::steady_clock::now();
    size_t bytes = 0;
    for (const auto& p : j.parts) bytes += p.size();
    bool hole = false, rotated = false, wrote_snapshot = false;
    {
        std::lock_guard lk(mu_);
        hole = hole_;
    }
    try {
        switch (j.kind) {
            case Kind::open: files_.open(j.found); break;
            case Kind::append:
                if (hole) return;  // dropped: the coming snapshot has it
                files_.append(j.parts.front());
                break;
            case Kind::rotate:
                files_.rotate();
                rotated = true;
                break;
            case Kind::snapshot:
                // Its generation's journal must hold every change since
                // this pass began: not so after a failed batch.
                if (hole) throw std::runtime_error("state snapshot deferred: the journal misses a batch");
                files_.snapshot(j.parts);
                wrote_snapshot = true;
                break;
        }
    } catch (const std::exception& e) {
        err = e.what();
    }
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    std::lock_guard lk(mu_);
    if (j.kind == Kind::snapshot) --snapshots_queued_;
    if (rotated) hole_ = false;
    if (wrote_snapshot) {
        broken_ = hole_;
        ++counters_.written;
        counters_.snapshot_bytes += bytes;
        counters_.last_ms = ms;
        counters_.last_bytes = bytes;
    }
    if (j.kind == Kind::append && err.empty()) {
        ++counters_.journal_batches;
        counters_.journal_bytes += bytes;
    }
    if ((j.kind == Kind::append || j.kind == Kind::open) && !err.empty()) hole_ = broken_ = true;
    error_ = err;
    if (err.empty()) {
        ++counters_.succeeded;
        unreported_.clear();  // a newer job made it: the old failure is moot
    } else {
        ++counters_.failed;
        unreported_ = err;
    }
}

}  // namespace portsentry::daemon
