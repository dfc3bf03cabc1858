#include "portsentry/daemon/stats.hpp"

#include <fmt/format.h>

namespace portsentry::daemon {

const char* to_string(MetricType t) {
    switch (t) {
        case MetricType::counter: return "counter";
        case MetricType::gauge: return "gauge";
        case MetricType::histogram: return "histogram";
    }
    return "?";
}

std::string Sample::key() const {
    if (labels.empty()) return name;
    std::string s = name + "{";
    bool first = true;
    for (const auto& [k, v] : labels) {
        s += fmt::format("{}{}=\"{}\"", first ? "" : ",", k, v);
        first = false;
    }
    return s + "}";
}

namespace {
Sample meta(std::string name, Labels labels, MetricType type, std::string help) {
    Sample s;
    s.name = std::move(name);
    s.labels = std::move(labels);
    s.type = type;
    s.help = std::move(help);
    return s;
}
}  // namespace

void Stats::push(Entry e) {
    std::lock_guard lk(mu_);
    entries_.push_back(std::move(e));
}

void Stats::add(std::string name, Labels labels, std::string help, const base::Counter& c) {
    Entry e;
    e.meta = meta(std::move(name), std::move(labels), MetricType::counter, std::move(help));
    e.counter = &c;
    push(std::move(e));
}

void Stats::add(std::string name, Labels labels, std::string help, const base::Gauge& g) {
    Entry e;
    e.meta = meta(std::move(name), std::move(labels), MetricType::gauge, std::move(help));
    e.gauge = &g;
    push(std::move(e));
}

void Stats::add(std::string name, Labels labels, std::string help, const base::Histogram& h) {
    Entry e;
    e.meta = meta(std::move(name), std::move(labels), MetricType::histogram, std::move(help));
    e.histogram = &h;
    push(std::move(e));
}

void Stats::counter_fn(std::string name, Labels labels, std::string help, std::function<uint64_t()> read) {
    Entry e;
    e.meta = meta(std::move(name), std::move(labels), MetricType::counter, std::move(help));
    e.read = [r = std::move(read)] { return static_cast<double>(r()); };
    e.cell = std::make_unique<base::Gauge>();
    e.cell->set(e.read());
    push(std::move(e));
}

void Stats::gauge_fn(std::string name, Labels labels, std::string help, std::function<double()> read) {
    Entry e;
    e.meta = meta(std::move(name), std::move(labels), MetricType::gauge, std::move(help));
    e.read = std::move(read);
    e.cell = std::make_unique<base::Gauge>();
    e.cell->set(e.read());
    push(std::move(e));
}

void Stats::clear() {
    std::lock_guard lk(mu_);
    entries_.clear();
}

void Stats::adopt(Stats&& from) {
    std::scoped_lock lk(mu_, from.mu_);
    entries_ = std::move(from.entries_);
    from.entries_.clear();
}

void Stats::sample() {
    std::lock_guard lk(mu_);
    for (auto& e : entries_)
        if (e.read) e.cell->set(e.read());
}

size_t Stats::size() const {
    std::lock_guard lk(mu_);
    return entries_.size();
}

std::vector<Sample> Stats::snapshot() const {
    std::lock_guard lk(mu_);
    std::vector<Sample> out;
    out.reserve(entries_.size());
    for (const auto& e : entries_) {
        Sample s = e.meta;
        if (e.counter) s.value = static_cast<double>(e.counter->value());
        else if (e.gauge) s.value = e.gauge->value();
        else if (e.cell) s.value = e.cell->value();
        else if (e.histogram) {
            for (size_t i = 0; i < e.histogram->bounds().size(); ++i)
                s.buckets.emplace_back(e.histogram->bounds()[i], e.histogram->bucket(i));
            s.count = e.histogram->count();
            s.sum = e.histogram->sum();
        }
        out.push_back(std::move(s));
    }
    return out;
}

namespace {

std::string number(double v) {
    if (v == static_cast<double>(static_cast<int64_t>(v))) return fmt::format("{}", static_cast<int64_t>(v));
    return fmt::format("{:.3f}", v);
}

}  // namespace

std::string render_stats_text(const std::vector<Sample>& samples) {
    std::string s;
    std::string last;
    for (const auto& m : samples) {
        if (m.name != last) {
            s += fmt::format("  # {} ({}): {}\n", m.name, to_string(m.type), m.help);
            last = m.name;
        }
        if (m.type != MetricType::histogram) {
            s += fmt::format("  {} {}\n", m.key(), number(m.value));
            continue;
        }
        std::string b;
        for (const auto& [le, n] : m.buckets) b += fmt::format(" <={}:{}", number(le), n);
        s += fmt::format("  {} count {} sum {}{}\n", m.key(), m.count, number(m.sum), b);
    }
    return s;
}

nlohmann::json render_stats_json(const std::vector<Sample>& samples) {
    nlohmann::json arr = nlohmann::json::array();
    for (const auto& m : samples) {
        nlohmann::json j = {{"name", m.name}, {"labels", m.labels}, {"type", to_string(m.type)}, {"help", m.help}};
        if (m.type == MetricType::histogram) {
            nlohmann::json b = nlohmann::json::array();
            for (const auto& [le, n] : m.buckets) b.push_back({{"le", le}, {"count", n}});
            j["buckets"] = b;
            j["count"] = m.count;
            j["sum"] = m.sum;
        } else {
            j["value"] = m.value;
        }
        arr.push_back(std::move(j));
    }
    return arr;
}

}  // namespace portsentry::daemon
