// One table of every figure the daemon keeps (dnsdist's metrics table is the
// model): typed counters, gauges and histograms with labels, registered in
// one place (register_metrics() in metrics.cpp). `status` renders it for
// people, `status --json` for programs, a metrics endpoint can scrape it.
//
// Threads: the loop thread writes every cell. Cells the new parts own are
// atomic (base/metric.hpp) and read live; figures that lower layers keep in
// plain structs (engine, packet source, responder...) are copied into atomic
// cells by sample(), which the loop calls once per tick and before `status`.
// snapshot() may run on any thread: it only reads atomics, under a mutex
// that registration (start, reload) also takes.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "portsentry/base/metric.hpp"

namespace portsentry::daemon {

using Labels = std::map<std::string, std::string>;

enum class MetricType : uint8_t { counter, gauge, histogram };
const char* to_string(MetricType t);

struct Sample {
    std::string name;  // "portsentry_probes_total"
    Labels labels;
    MetricType type = MetricType::counter;
    std::string help;
    double value = 0;                                   // counter, gauge
    std::vector<std::pair<double, uint64_t>> buckets;   // histogram: (le, cumulative count)
    uint64_t count = 0;                                 // histogram
    double sum = 0;                                     // histogram
    std::string key() const;                            // name{a="b",...}
};

class Stats {
public:
    // Live cells: must outlive their registration (clear() or the Stats).
    void add(std::string name, Labels labels, std::string help, const base::Counter& c);
    void add(std::string name, Labels labels, std::string help, const base::Gauge& g);
    void add(std::string name, Labels labels, std::string help, const base::Histogram& h);
    // Sampled: `read` runs on the loop thread only, in sample().
    void counter_fn(std::string name, Labels labels, std::string help, std::function<uint64_t()> read);
    void gauge_fn(std::string name, Labels labels, std::string help, std::function<double()> read);

    void clear();   // before re-registering (reload replaced a part)
    // Takes `from`'s registrations in place of this table's, in one step
    // for snapshot() readers on other threads (a reload re-registers).
    void adopt(Stats&& from);
    void sample();  // loop thread
    std::vector<Sample> snapshot() const;
    size_t size() const;

private:
    struct Entry {
        Sample meta;  // name, labels, type, help
        const base::Counter* counter = nullptr;
        const base::Gauge* gauge = nullptr;
        const base::Histogram* histogram = nullptr;
        std::function<double()> read;          // sampled entries
        std::unique_ptr<base::Gauge> cell;     // where sample() puts `read`'s value
    };
    void push(Entry e);
    mutable std::mutex mu_;
    std::vector<Entry> entries_;
};

// `status` for people: one line per metric, grouped by name.
std::string render_stats_text(const std::vector<Sample>& s);
// `status --json`: {"metrics": [{"name", "labels", "type", "help", "value" | "buckets"...}]}
nlohmann::json render_stats_json(const std::vector<Sample>& s);

}  // namespace portsentry::daemon
