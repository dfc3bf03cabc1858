// The generated KEYS block of portsentry-nfq.yaml(5): where it sits in the page.
#pragma once

#include <optional>
#include <string>

namespace man_keys {

inline constexpr const char* kBegin = ".\\\" BEGIN GENERATED KEYS (gen-man-keys --update; do not edit by hand)\n";
inline constexpr const char* kEnd = ".\\\" END GENERATED KEYS\n";

// The text between the markers, or nullopt (with *why) when they are missing.
inline std::optional<std::string> section(const std::string& page, std::string* why) {
    const auto b = page.find(kBegin);
    const auto e = page.find(kEnd);
    if (b == std::string::npos || e == std::string::npos || e < b) {
        *why = "the BEGIN/END GENERATED KEYS marker lines are missing";
        return std::nullopt;
    }
    const auto from = b + std::string(kBegin).size();
    return page.substr(from, e - from);
}

inline std::optional<std::string> replace_section(const std::string& page, const std::string& generated,
                                                  std::string* why) {
    if (!section(page, why)) return std::nullopt;
    const auto from = page.find(kBegin) + std::string(kBegin).size();
    return page.substr(0, from) + generated + page.substr(page.find(kEnd));
}

}  // namespace man_keys
