#include "portsentry/daemon/responses.hpp"

#include <sys/eventfd.h>
#include <sys/resource.h>
#include <unistd.h>

#include <fmt/format.h>

#include "portsentry/base/error.hpp"

namespace portsentry::daemon {

namespace {
constexpr size_t kSummaryAddresses = 16;
constexpr int kWorkerNice = 10;
}

ResponseWorker::ResponseWorker(Loop& loop, actions::Responder& responder, actions::Log& log, BanNow ban,
                               OnDone done, Options opts)
    : loop_(loop),
      responder_(responder),
      log_(log),
      ban_(std::move(ban)),
      done_(std::move(done)),
      opts_(opts),
      event_fd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
    if (!event_fd_) throw base::sys_error("eventfd");
    responder_.set_abort(&abort_);
    loop_.add(event_fd_.get(), "responses", [this](const Now& now) { on_ready(now); });
    thread_ = std::thread([this] { run(); });
}

ResponseWorker::~ResponseWorker() {
    stop();
    loop_.remove(event_fd_.get());
    responder_.set_abort(nullptr);
}

void ResponseWorker::stop() {
    {
        std::lock_guard lk(mu_);
        stop_ = true;
        abort_ = true;
        // The loop will not answer any more: a worker waiting for a ban gets "exiting".
        for (auto& r : ban_requests_) r.answer.set_value({std::chrono::seconds{0}, "portsentry-nfq is exiting"});
        ban_requests_.clear();
    }
    wake_cv_.notify_all();
    if (thread_.joinable()) thread_.join();
}

void ResponseWorker::push(Item it) {
    {
        std::lock_guard lk(mu_);
        items_.push_back(std::move(it));
    }
    wake_cv_.notify_one();
}

bool ResponseWorker::submit(Job j) {
    {
        std::lock_guard lk(mu_);
        if (jobs_ >= opts_.capacity || stop_) {
            counters_.overflow.inc();
            ++lost_;
            if (lost_addrs_.size() < kSummaryAddresses) lost_addrs_.push_back(j.rep.src.unmapped().to_string());
            return false;
        }
        responder_.prefetch(j.rep.src);  // the lookup runs while the job waits its turn
        Item it;
        it.job = std::move(j);
        items_.push_back(std::move(it));
        ++jobs_;
    }
    counters_.queued.inc();
    wake_cv_.notify_one();
    return true;
}

void ResponseWorker::ban_ended(const net::IpAddr& a) {
    Item it;
    it.kind = Item::Kind::ended;
    it.addr = a;
    push(std::move(it));
}

void ResponseWorker::reconfigure(const config::Config& cfg) {
    Item it;
    it.kind = Item::Kind::reconfigure;
    it.cfg = std::make_shared<const config::Config>(cfg);
    push(std::move(it));
}

void ResponseWorker::reopen() {
    Item it;
    it.kind = Item::Kind::reopen;
    push(std::move(it));
}

void ResponseWorker::adopt_hosts_deny(std::vector<actions::RestoredBan> bans) {
    if (bans.empty()) return;
    Item it;
    it.kind = Item::Kind::adopt;
    it.restored = std::move(bans);
    push(std::move(it));
}

void ResponseWorker::wake() {
    {
        std::lock_guard lk(mu_);
        woken_ = true;
    }
    wake_cv_.notify_one();
}

bool ResponseWorker::idle() const {
    std::lock_guard lk(mu_);
    return items_.empty() && !busy_ && in_flight_ == 0 && done_items_.empty() && ban_requests_.empty();
}

size_t ResponseWorker::waiting() const {
    std::lock_guard lk(mu_);
    return items_.size();
}

void ResponseWorker::tick(const Now& now) {
    if (lost_ == 0 || (last_summary_ != std::chrono::steady_clock::time_point{} &&
                       now.steady - last_summary_ < opts_.summary_interval))
        return;
    std::string addrs;
    for (const auto& a : lost_addrs_) addrs += " " + a;
    if (lost_ > lost_addrs_.size()) addrs += fmt::format(" ... and {} more", lost_ - lost_addrs_.size());
    log_.write(fmt::format("portsentry-nfq: response queue full ({} waiting): {} report{} dropped: no history "
                           "record, blocked record, hosts.deny line or command for:{}",
                           opts_.capacity, lost_, lost_ == 1 ? "" : "s", addrs),
               now.steady);
    lost_ = 0;
    lost_addrs_.clear();
    last_summary_ = now.steady;
}

// ---------------------------------------------------------------- worker thread

void ResponseWorker::run() {
    // Background work: when this thread and the packet thread want the same
    // CPU (a flood of fresh sources, a box with one core), the packet thread
    // wins: nice 10 is ~1/10 of its CFS weight. Linux applies a thread id's
    // nice to that thread only. Best effort (a failure leaves nice 0).
    (void)::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), kWorkerNice);
    auto last_reap = actions::Clock::now();
    std::unique_lock lk(mu_);
    for (;;) {
        wake_cv_.wait_for(lk, opts_.tick, [&] { return stop_ || woken_ || !items_.empty(); });
        if (stop_) {
            counters_.abandoned.inc(items_.size());
            return;
        }
        bool did = false;
        if (!items_.empty()) {
            did = true;
            Item it = std::move(items_.front());
            items_.pop_front();
            if (it.kind == Item::Kind::job) --jobs_;
            busy_ = true;
            lk.unlock();
            run_item(it);
            lk.lock();
            busy_ = false;
        }
        const auto now = actions::Clock::now();
        if (woken_ || now - last_reap >= opts_.tick || items_.empty()) {
            woken_ = false;
            last_reap = now;
            busy_ = true;  // idle() waits for a hosts.deny clean-up too
            lk.unlock();
            responder_.reap(now);
            const size_t n = responder_.commands().in_flight();
            lk.lock();
            busy_ = false;
            did = did || n != in_flight_;
            in_flight_ = n;
        }
        if (did && items_.empty() && in_flight_ == 0) {
            lk.unlock();
            signal_loop();  // the loop may wait for idle() (SIGTERM)
            lk.lock();
        }
    }
}

void ResponseWorker::run_item(Item& it) {
    switch (it.kind) {
        case Item::Kind::ended: responder_.ban_ended(it.addr); return;
        case Item::Kind::reconfigure: responder_.reconfigure(*it.cfg); return;
        case Item::Kind::reopen: responder_.reopen(); return;
        case Item::Kind::adopt: responder_.adopt_hosts_deny(it.restored, actions::Clock::now()); return;
        case Item::Kind::job: break;
    }
    Job& j = it.job;
    actions::BanFn ban = [&]() -> std::string {
        if (j.defer_ban) return request_ban(j.rep);
        return j.ban_error;
    };
    Done d{j.rep, responder_.handle(j.rep, ban)};
    d.rep = j.rep;  // the deferred ban's escalated time
    counters_.handled.inc();
    {
        std::lock_guard lk(mu_);
        done_items_.push_back(std::move(d));
    }
    signal_loop();
}

std::string ResponseWorker::request_ban(actions::Report& rep) {
    std::future<BanManager::Installed> f;
    {
        std::lock_guard lk(mu_);
        if (stop_) return "portsentry-nfq is exiting";
        ban_requests_.push_back({&rep, {}});
        f = ban_requests_.back().answer.get_future();
    }
    signal_loop();
    const auto got = f.get();
    rep.d.ban_time = got.time;
    return got.error;
}

void ResponseWorker::signal_loop() {
    const uint64_t one = 1;
    (void)!::write(event_fd_.get(), &one, sizeof one);  // EAGAIN: already signalled
}

// ---------------------------------------------------------------- loop thread

void ResponseWorker::on_ready(const Now& now) {
    uint64_t n;
    (void)!::read(event_fd_.get(), &n, sizeof n);
    std::vector<BanRequest> bans;
    std::vector<Done> dones;
    {
        std::lock_guard lk(mu_);
        bans.swap(ban_requests_);
        dones.swap(done_items_);
    }
    for (auto& b : bans) {
        counters_.ban_requests.inc();
        try {
            b.answer.set_value(ban_(*b.rep, now));
        } catch (const std::exception& e) {
            b.answer.set_value({std::chrono::seconds{0}, e.what()});
        }
    }
    for (const auto& d : dones) done_(d, now);
    if (on_idle_ && idle()) {
        const auto f = on_idle_;  // a copy: the callback may clear on_idle_ (exit_now does)
        f();
    }
}

}  // namespace portsentry::daemon
