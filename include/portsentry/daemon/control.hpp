// Root-only control socket: one request line in, one text reply out, then
// close. Mode 0600 and SO_PEERCRED uid 0 checked: `ban`/`unban` are root-only.
#pragma once

#include <functional>
#include <optional>
#include <string>

#include "portsentry/base/unique_fd.hpp"

namespace portsentry::daemon {

struct ControlReply {
    int status = 0;  // exit code for the CLI (0 ok, 1 error)
    std::string text;
};

class ControlServer {
public:
    explicit ControlServer(std::string path);  // throws std::system_error
    ~ControlServer();
    ControlServer(const ControlServer&) = delete;
    ControlServer& operator=(const ControlServer&) = delete;

    int fd() const { return fd_.get(); }
    // Accept one pending client, read its request line, reply, close.
    void serve_one(const std::function<ControlReply(const std::string&)>& handler);

private:
    std::string path_;
    base::UniqueFd fd_;
};

// nullopt when no daemon listens there (ENOENT / ECONNREFUSED); throws on
// other errors (EACCES: not root).
std::optional<ControlReply> control_request(const std::string& path, const std::string& request);

}  // namespace portsentry::daemon
