// Shared helpers for the actions tests: temp dirs, file reading, a log that
// captures lines, and running a program (no shell) with its output captured.
#pragma once

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "portsentry/actions/log.hpp"

extern char** environ;

namespace pstest {

class TempDir {
public:
    TempDir() {
        std::string tmpl = (std::filesystem::temp_directory_path() / "ps-actions-XXXXXX").string();
        if (!mkdtemp(tmpl.data())) std::abort();
        path_ = tmpl;
    }
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    std::string operator/(const std::string& name) const { return path_ + "/" + name; }
    const std::string& path() const { return path_; }

private:
    std::string path_;
};

inline std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

inline void write_file(const std::string& path, const std::string& content) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << content;
}

inline std::vector<std::string> lines_of(const std::string& s) {
    std::vector<std::string> out;
    std::istringstream in(s);
    for (std::string l; std::getline(in, l);) out.push_back(l);
    return out;
}

// A Log that writes nowhere but into `lines` (no syslog, no stderr).
struct CapturedLog {
    std::vector<std::string> lines;
    portsentry::actions::Log log;
    explicit CapturedLog(double burst = 1e6, double per_second = 1e6)
        : log(portsentry::actions::LogOptions{false, false, burst, per_second},
              [this](std::string_view l) { lines.emplace_back(l); }) {}
};

struct RunResult {
    int status = -1;  // raw wait status
    std::string output;  // stdout + stderr
};

// Runs argv (PATH lookup, no shell) and captures stdout+stderr.
inline RunResult run_capture(const std::vector<std::string>& argv) {
    RunResult rr;
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) return rr;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, p[1], 1);
    posix_spawn_file_actions_adddup2(&fa, p[1], 2);
    std::vector<char*> cargv;
    for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
    cargv.push_back(nullptr);
    pid_t pid = -1;
    int rc = posix_spawnp(&pid, cargv[0], &fa, nullptr, cargv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    close(p[1]);
    if (rc == 0) {
        char buf[4096];
        ssize_t n;
        while ((n = read(p[0], buf, sizeof buf)) > 0) rr.output.append(buf, static_cast<size_t>(n));
        waitpid(pid, &rr.status, 0);
    } else {
        rr.output = "spawn failed";
    }
    close(p[0]);
    return rr;
}

}  // namespace pstest
