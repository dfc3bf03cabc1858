#include "portsentry/config/secret.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fmt/format.h>
#include <stdexcept>

namespace portsentry::config {

namespace {

struct Read {
    std::string secret, error;
};

Read read(const std::string& path) {
    Read r;
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) return {"", fmt::format("{}: {}", path, std::strerror(errno))};
    struct stat st {};
    std::string text;
    if (::fstat(fd, &st) == 0 && !S_ISREG(st.st_mode)) {
        r.error = fmt::format("{}: not a regular file", path);
    } else if ((st.st_mode & 077) != 0) {
        r.error = fmt::format("{}: mode {:04o}: readable by group or others; chmod 600 {}", path, st.st_mode & 07777, path);
    } else {
        char buf[4096];
        ssize_t n;
        while ((n = ::read(fd, buf, sizeof buf)) > 0 && text.size() < 65536) text.append(buf, static_cast<size_t>(n));
        if (n < 0) r.error = fmt::format("{}: {}", path, std::strerror(errno));
    }
    ::close(fd);
    if (!r.error.empty()) return r;
    const auto nl = text.find('\n');
    std::string_view line(text.data(), nl == std::string::npos ? text.size() : nl);
    while (!line.empty() && std::isspace(static_cast<unsigned char>(line.front()))) line.remove_prefix(1);
    while (!line.empty() && std::isspace(static_cast<unsigned char>(line.back()))) line.remove_suffix(1);
    if (line.empty()) r.error = fmt::format("{}: no secret on its first line", path);
    r.secret = line;
    return r;
}

}  // namespace

std::string read_secret_file(const std::string& path) {
    auto r = read(path);
    if (!r.error.empty()) throw std::runtime_error(r.error);
    return r.secret;
}

std::optional<std::string> secret_file_problem(const std::string& path) {
    auto r = read(path);
    if (!r.error.empty()) return r.error;
    return std::nullopt;
}

}  // namespace portsentry::config
