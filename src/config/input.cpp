// Reading configuration inputs (config file, defaults file, ignore files):
// opening without blocking, one byte-level normal form for line endings and
// BOMs, and escaping file bytes before they reach a terminal.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "internal.hpp"
#include "portsentry/config/config.hpp"

#include "portsentry/base/files.hpp"
#include "portsentry/base/unique_fd.hpp"

namespace portsentry::config {

namespace detail {

namespace {
// Config files are small; anything this large is not one (and reading it
// whole would let a wrong -c path, e.g. a disk image, eat memory).
constexpr off_t kMaxConfigBytes = 16 * 1024 * 1024;

size_t utf8_length(std::string_view s, size_t i) {
    // Length of the well-formed UTF-8 sequence at i, 0 if there is none
    // (overlongs, surrogates and code points above U+10FFFF are not well formed).
    auto b = [&](size_t k) { return i + k < s.size() ? static_cast<unsigned char>(s[i + k]) : 0u; };
    auto cont = [&](size_t k) { return (b(k) & 0xC0u) == 0x80u; };
    const unsigned c = b(0);
    if (c >= 0xC2 && c <= 0xDF) return cont(1) ? 2 : 0;
    if (c >= 0xE0 && c <= 0xEF) {
        if (!cont(1) || !cont(2)) return 0;
        if ((c == 0xE0 && b(1) < 0xA0) || (c == 0xED && b(1) > 0x9F)) return 0;
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (!cont(1) || !cont(2) || !cont(3)) return 0;
        if ((c == 0xF0 && b(1) < 0x90) || (c == 0xF4 && b(1) > 0x8F)) return 0;
        return 4;
    }
    return 0;
}
}  // namespace

std::optional<std::string> read_file(const std::string& path, int* err) {
    // O_NONBLOCK: opening a FIFO for reading waits for a writer otherwise,
    // and the same reader runs on SIGHUP inside the packet loop. Regular
    // files ignore the flag.
    base::UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
    if (fd.get() < 0) {
        *err = errno;
        return std::nullopt;
    }
    struct stat st{};
    if (::fstat(fd.get(), &st) != 0) {
        *err = errno;
        return std::nullopt;
    }
    if (S_ISDIR(st.st_mode)) {
        *err = EISDIR;
        return std::nullopt;
    }
    if (!S_ISREG(st.st_mode)) {  // FIFOs, sockets and devices could block or never end
        *err = kNotRegularFile;
        return std::nullopt;
    }
    if (st.st_size > kMaxConfigBytes) {
        *err = EFBIG;
        return std::nullopt;
    }
    std::string out;
    // Exact reservation: growing by doubling would peak at twice the file.
    out.reserve(static_cast<size_t>(st.st_size) + 1);
    char buf[8192];
    for (;;) {
        ssize_t n = ::read(fd.get(), buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR) continue;
            *err = errno;
            return std::nullopt;
        }
        if (n == 0) break;
        out.append(buf, static_cast<size_t>(n));
        if (out.size() > static_cast<size_t>(kMaxConfigBytes)) {  // grew while we read it
            *err = EFBIG;
            return std::nullopt;
        }
    }
    normalize(out);
    return out;
}

std::string read_error_text(int err) {
    if (err == kNotRegularFile) return "not a regular file";
    if (err == EFBIG) return fmt::format("larger than {} MiB: not a configuration file", kMaxConfigBytes >> 20);
    return std::strerror(err);
}

void normalize(std::string& text) {
    // Windows editors write a UTF-8 BOM; it is not part of the first key.
    size_t from = text.compare(0, 3, "\xEF\xBB\xBF") == 0 ? 3 : 0;
    // CRLF and CR-only (old Mac editors) become LF, in place: both readers and
    // yaml-cpp then count lines the same way.
    size_t to = 0;
    for (; from < text.size(); ++from) {
        char c = text[from];
        if (c == '\r') {
            if (from + 1 < text.size() && text[from + 1] == '\n') continue;
            c = '\n';
        }
        text[to++] = c;
    }
    text.resize(to);
}

std::string escape(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (size_t i = 0; i < s.size();) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c == '\t' || (c >= 0x20 && c < 0x7f)) {
            out += static_cast<char>(c);
            ++i;
            continue;
        }
        const size_t n = c >= 0x80 ? utf8_length(s, i) : 0;
        // U+0080..U+009F (C2 80..C2 9F) are C1 controls: CSI is U+009B.
        const bool c1 = n == 2 && c == 0xC2 && static_cast<unsigned char>(s[i + 1]) <= 0x9F;
        if (n > 0 && !c1) {
            out.append(s.substr(i, n));
            i += n;
            continue;
        }
        for (size_t k = 0; k < (c1 ? 2 : 1); ++k)
            out += fmt::format("\\x{:02x}", static_cast<unsigned char>(s[i + k]));
        i += c1 ? 2 : 1;
    }
    return out;
}

bool read_ignore(const std::string& path, net::CidrSet& out, std::vector<Diagnostic>& diags, size_t& dropped) {
    int err = 0;
    auto text = read_file(path, &err);
    if (!text) {
        if (err == ENOENT) return false;
        diags.push_back({path, 0, err == EISDIR ? "ignore file is a directory: expected a file with one address or CIDR per line"
                                                : fmt::format("cannot read ignore file: {}", read_error_text(err))});
        return true;
    }
    auto report = [&](unsigned lineno, std::string msg) {
        if (diags.size() < kKeepDiagnostics)
            diags.push_back({path, lineno, std::move(msg)});
        else
            ++dropped;  // a junk file must not cost memory per line
    };
    for_each_line(*text, [&](std::string_view line, unsigned lineno) {
        if (auto hash = line.find('#'); hash != std::string_view::npos) line = line.substr(0, hash);
        line = trim(line);
        if (line.empty()) return;
        if (line.find_first_of(" \t") != std::string_view::npos) {
            report(lineno, fmt::format("'{}': expected one address or CIDR per line", line));
            return;
        }
        auto cidr = net::Cidr::parse(line);
        if (!cidr) {
            report(lineno, fmt::format("'{}' is not an address or CIDR: expected e.g. 192.0.2.1, "
                                       "192.0.2.0/24 or 2001:db8::/32",
                                       line));
            return;
        }
        out.insert(*cidr);
    });
    return true;
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
    return s;
}

std::string absolute_dir_of(const std::string& path) {
    std::string dir = base::dir_of(path);
    if (dir.front() == '/') return dir;
    if (dir == ".") dir.clear();
    // Made absolute now: the daemon may change directory later, and a reload
    // must find the same files.
    char cwd[4096];
    if (::getcwd(cwd, sizeof cwd) == nullptr) return dir;  // keep relative: still correct until a chdir
    std::string abs = cwd;
    if (!dir.empty()) abs += (abs == "/" ? "" : "/") + dir;
    return abs;
}

}  // namespace detail

bool load_ignore_file(const std::string& path, net::CidrSet& out) {
    std::vector<Diagnostic> diags;
    size_t dropped = 0;
    const bool found = detail::read_ignore(path, out, diags, dropped);
    if (!diags.empty()) throw ConfigError(std::move(diags), dropped);
    return found;
}

}  // namespace portsentry::config
