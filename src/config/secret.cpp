// Secret files (crowdsec.password_file, crowdsec.bouncer_key_file) and the
// fleet's CA file: opened without blocking, checked on the open descriptor
// (no window between the check and the read), and reported by path only.
#include "portsentry/config/secret.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string_view>

#include <fmt/format.h>

#include "internal.hpp"
#include "portsentry/base/unique_fd.hpp"

namespace portsentry::config {

namespace {

// "mode 0644: readable by group or others; chmod 600 PATH", or "" when only
// the owner has access. Any group/other bit refuses: one that can write the
// file can choose the secret this host presents.
std::string mode_problem(const std::string& path, mode_t mode) {
    if ((mode & 077) == 0) return {};
    const char* access = (mode & 044) ? "readable" : (mode & 022) ? "writable" : "executable";
    return fmt::format("mode {:04o}: {} by group or others; chmod 600 {}", mode & 07777, access, path);
}

std::string error_text(int e) { return e == detail::kNotRegularFile ? "not a regular file" : std::strerror(e); }

struct Opened {
    base::UniqueFd fd;
    std::string problem;  // "" = open, regular (and, for a secret, mode 0600 or stricter)
    int err = 0;          // errno of a failed open
    bool mode_refused = false;
};

Opened open_checked(const std::string& path, bool secret) {
    Opened o;
    // O_NONBLOCK: a FIFO would wait for a writer (and this runs on SIGHUP in
    // the packet loop); regular files ignore it.
    o.fd.reset(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
    struct stat st{};
    if (!o.fd) {
        o.err = errno;
        // A mode problem says more than EACCES (and is what a non-root
        // --check can still see).
        if (secret && o.err == EACCES && ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode)) {
            if (auto m = mode_problem(path, st.st_mode); !m.empty()) {
                o.problem = std::move(m);
                o.mode_refused = true;
                return o;
            }
        }
        o.problem = error_text(o.err);
        return o;
    }
    if (::fstat(o.fd.get(), &st) != 0) {
        o.err = errno;
        o.problem = error_text(o.err);
    } else if (S_ISDIR(st.st_mode)) {
        o.problem = "is a directory: expected a file";
    } else if (!S_ISREG(st.st_mode)) {
        o.problem = error_text(detail::kNotRegularFile);
    } else if (secret) {
        o.problem = mode_problem(path, st.st_mode);
        o.mode_refused = !o.problem.empty();
    }
    return o;
}

// The first line's secret into *out, or why not. Reads at most
// kMaxSecretLength + 1 bytes: the rest of the file is not the secret's.
std::string read_first_line(int fd, std::string* out) {
    char buf[kMaxSecretLength + 1];
    size_t n = 0;
    while (n < sizeof buf) {
        const ssize_t r = ::read(fd, buf + n, sizeof buf - n);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return std::strerror(errno);
        if (r == 0) break;
        const bool newline = std::memchr(buf + n, '\n', static_cast<size_t>(r)) != nullptr;
        n += static_cast<size_t>(r);
        if (newline) break;
    }
    std::string_view line(buf, n);
    const auto nl = line.find('\n');
    std::string why;
    if (nl == std::string_view::npos && n > kMaxSecretLength) {
        why = fmt::format("the first line is longer than {} bytes: expected the secret alone on it", kMaxSecretLength);
    } else {
        line = detail::trim_space(line.substr(0, nl));  // the newline, a CR before it, blanks around
        if (line.empty()) why = "the first line is empty: expected the secret on it";
        for (size_t i = 0; why.empty() && i < line.size(); ++i) {
            const auto c = static_cast<unsigned char>(line[i]);
            // Sent in an HTTP header (X-Api-Key) or a JSON body: a CR/LF or
            // other control byte there is a corrupted file, not a secret.
            if (c < 0x20 || c == 0x7f)
                why = fmt::format("control character 0x{:02x} at offset {} of the first line: expected the secret "
                                  "alone on it",
                                  c, i);
        }
        if (why.empty() && out) out->assign(line);
    }
    // The secret's bytes do not outlive this frame on the stack.
    ::explicit_bzero(buf, sizeof buf);
    return why;
}

}  // namespace

namespace detail {

std::optional<std::string> secret_problem(const std::string& path, bool unreadable_ok, std::string* secret) {
    Opened o = open_checked(path, true);
    // Not root (a --check by hand): a file the daemon, as root, can read.
    if (!o.fd && o.err == EACCES && unreadable_ok && !o.mode_refused) return std::nullopt;
    if (!o.problem.empty()) return fmt::format("{}: {}", path, o.problem);
    if (auto why = read_first_line(o.fd.get(), secret); !why.empty()) return fmt::format("{}: {}", path, why);
    return std::nullopt;
}

std::optional<std::string> readable_file_problem(const std::string& path, bool unreadable_ok) {
    Opened o = open_checked(path, false);
    if (!o.fd && o.err == EACCES && unreadable_ok) return std::nullopt;  // as in secret_problem
    if (!o.problem.empty()) return fmt::format("{}: {}", path, o.problem);
    return std::nullopt;
}

}  // namespace detail

std::string read_secret_file(const std::string& path) {
    std::string secret;
    if (auto why = detail::secret_problem(path, false, &secret)) throw std::runtime_error(*why);
    return secret;
}

std::optional<std::string> secret_file_problem(const std::string& path) {
    return detail::secret_problem(path, false, nullptr);
}

}  // namespace portsentry::config
