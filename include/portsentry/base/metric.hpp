// Typed metric cells: a counter, a gauge and a histogram whose values another
// thread (`status`, a metrics endpoint) may read while the owning thread
// keeps writing. Each cell has ONE writer: increments are a relaxed load +
// store (no locked read-modify-write on the packet path), reads are relaxed
// loads, so a reader sees a recent value and never a torn one.
#pragma once

#include <atomic>
#include <cstdint>
#include <ostream>
#include <vector>

namespace portsentry::base {

class Counter {
public:
    Counter() = default;
    Counter(const Counter& o) noexcept : v_(o.value()) {}
    Counter& operator=(const Counter& o) noexcept {
        set(o.value());
        return *this;
    }
    void inc(uint64_t n = 1) noexcept { v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed); }
    Counter& operator++() noexcept {
        inc();
        return *this;
    }
    void operator++(int) noexcept { inc(); }
    Counter& operator+=(uint64_t n) noexcept {
        inc(n);
        return *this;
    }
    // Mirrors a count kept elsewhere (the kernel's queue drops).
    void set(uint64_t v) noexcept { v_.store(v, std::memory_order_relaxed); }
    uint64_t value() const noexcept { return v_.load(std::memory_order_relaxed); }
    operator uint64_t() const noexcept { return value(); }  // NOLINT: reads like the plain count it replaced
    friend std::ostream& operator<<(std::ostream& o, const Counter& c) { return o << c.value(); }

private:
    std::atomic<uint64_t> v_{0};
};

class Gauge {
public:
    void set(double v) noexcept { v_.store(v, std::memory_order_relaxed); }
    double value() const noexcept { return v_.load(std::memory_order_relaxed); }

private:
    std::atomic<double> v_{0};
};

// Cumulative buckets, Prometheus style: bucket i counts observations <= bounds[i].
class Histogram {
public:
    explicit Histogram(std::vector<double> bounds) : bounds_(std::move(bounds)), buckets_(bounds_.size()) {}
    void observe(double v) noexcept {
        for (size_t i = 0; i < bounds_.size(); ++i)
            if (v <= bounds_[i]) bump(buckets_[i], 1);
        bump(count_, 1);
        sum_.store(sum_.load(std::memory_order_relaxed) + v, std::memory_order_relaxed);
    }
    const std::vector<double>& bounds() const { return bounds_; }
    uint64_t bucket(size_t i) const { return buckets_[i].load(std::memory_order_relaxed); }
    uint64_t count() const { return count_.load(std::memory_order_relaxed); }
    double sum() const { return sum_.load(std::memory_order_relaxed); }

private:
    static void bump(std::atomic<uint64_t>& a, uint64_t n) {
        a.store(a.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
    }
    std::vector<double> bounds_;
    std::vector<std::atomic<uint64_t>> buckets_;
    std::atomic<uint64_t> count_{0};
    std::atomic<double> sum_{0};
};

}  // namespace portsentry::base
