// Move-only owner of a libmnl socket (STYLE §8). Public so the daemon's
// rtnetlink watcher and the kernel layer's netfilter sockets share one owner.
#pragma once

#include <libmnl/libmnl.h>

#include <memory>

namespace portsentry::kernel {

struct MnlSocketClose {
    void operator()(mnl_socket* s) const noexcept { mnl_socket_close(s); }
};
using MnlSocket = std::unique_ptr<mnl_socket, MnlSocketClose>;

}  // namespace portsentry::kernel
