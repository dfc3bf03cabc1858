// The configuration-resolution rule (include/portsentry/daemon/config_path.hpp).
#include "portsentry/daemon/config_path.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fmt/format.h>
#include <fstream>
#include <sstream>

#include "portsentry/config/config.hpp"

namespace portsentry::daemon {

namespace {

bool exists(const std::string& p) {
    struct stat st{};
    return ::stat(p.c_str(), &st) == 0;
}

// The remembered files: one "config PATH" and at most one "defaults PATH" line.
struct LastUsed {
    std::string config, defaults;
};

std::optional<LastUsed> read_last_used(const std::string& path) {
    std::ifstream in(path);
    if (!in) return std::nullopt;
    LastUsed l;
    for (std::string line; std::getline(in, line);) {
        if (line.rfind("config ", 0) == 0) l.config = line.substr(7);
        else if (line.rfind("defaults ", 0) == 0) l.defaults = line.substr(9);
    }
    if (l.config.empty()) return std::nullopt;
    return l;
}

[[noreturn]] void vanished(const std::string& file, const LastUsed& l, const ConfigRoots& roots) {
    const std::string ran_on =
        l.defaults.empty() ? l.config : fmt::format("{} with the modes from {}", l.config, l.defaults);
    throw config::ConfigError({config::Diagnostic{
        file, 0,
        fmt::format("is gone, and the last start ran on {} (was portsentry 1.2 purged? `dpkg --purge portsentry` "
                    "deletes portsentry.conf, portsentry.ignore.static and /etc/default/portsentry). Refusing to "
                    "switch to other settings silently: restore it, or write {} (portsentry-nfq --import-legacy), "
                    "or pass -c FILE, or delete {} to run on what the rule finds now",
                    ran_on, roots.yaml(), roots.last_used())}});
}

}  // namespace

ResolvedConfig resolve_config(const std::optional<std::string>& given, const std::optional<std::string>& defaults_given,
                              const ConfigRoots& roots) {
    ResolvedConfig r;
    r.defaults_file = defaults_given.value_or(roots.defaults());
    if (given) {
        r.path = *given;
        r.why = fmt::format("config: {} (-c)", r.path);
        return r;
    }
    r.searched = true;
    if (exists(roots.yaml())) {
        r.path = roots.yaml();
        r.why = fmt::format("config: {}", r.path);
    } else if (exists(roots.legacy())) {
        r.path = roots.legacy();
        r.why = exists(r.defaults_file)
                    ? fmt::format("config: {} (portsentry 1.2 format; modes from {}, unless -tcp/-udp/... flags)",
                                  r.path, r.defaults_file)
                    : fmt::format("config: {} (portsentry 1.2 format; {} missing: classic modes, as a fresh 1.2 "
                                  "install, unless -tcp/-udp/... flags)",
                                  r.path, r.defaults_file);
    } else {
        r.path = roots.packaged();
        r.why = fmt::format("config: {} (packaged defaults: neither {} nor {} exists)", r.path, roots.yaml(),
                            roots.legacy());
    }
    // The rule must not slide to a lower rung because a file the last start
    // ran on vanished: say so instead. (A file the admin adds above it, such
    // as a new portsentry.yaml, is a choice, not a loss.)
    if (auto last = read_last_used(roots.last_used())) {
        const auto rank = [&](const std::string& p) {
            return p == roots.yaml() ? 0 : p == roots.legacy() ? 1 : p == roots.packaged() ? 2 : -1;
        };
        if (rank(last->config) >= 0 && rank(last->config) < rank(r.path) && !exists(last->config))
            vanished(last->config, *last, roots);
        if (last->config == r.path && !last->defaults.empty() && !exists(last->defaults))
            vanished(last->defaults, *last, roots);
    }
    return r;
}

std::string remember_config(const ResolvedConfig& r, const ConfigRoots& roots) {
    if (!r.searched) return {};  // -c: the admin named the file; nothing to guard
    std::string text = "# portsentry-nfq: the files the last start ran on (see portsentry-nfq(8), CONFIGURATION)\n";
    text += "config " + r.path + "\n";
    // Only a legacy config depends on the defaults file, and only if it existed.
    if (r.path.ends_with(".conf") && exists(r.defaults_file)) text += "defaults " + r.defaults_file + "\n";
    const std::string path = roots.last_used(), tmp = path + ".tmp";
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) return fmt::format("cannot write {}: {}", tmp, std::strerror(errno));
    const bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
    const int e = errno;
    ::close(fd);
    if (!ok || ::rename(tmp.c_str(), path.c_str()) < 0) {
        const int e2 = ok ? errno : e;
        ::unlink(tmp.c_str());
        return fmt::format("cannot write {}: {}", path, std::strerror(e2));
    }
    return {};
}

}  // namespace portsentry::daemon
