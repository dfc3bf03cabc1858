// --check. Nothing here commits to the kernel: probe_backends() and check()
// both send batches without NFNL_MSG_BATCH_END, which the kernel validates
// and then aborts (nftables' own `nft --check` does the same).
#include "portsentry/daemon/check.hpp"

#include <unistd.h>

#include <fmt/format.h>

#include "portsentry/config/config.hpp"
#include "portsentry/config/keys.hpp"
#include "portsentry/daemon/metrics_http.hpp"
#include "portsentry/daemon/protect.hpp"
#include "portsentry/kernel/nft.hpp"

namespace portsentry::daemon {

int run_check(const Options& o, std::ostream& out, std::ostream& err) {
    config::Config cfg;
    Options checked = o;
    checked.load.check_write_paths = true;  // names paths a sandbox (the unit's) does not let us write
    try {
        cfg = load_config(checked);
    } catch (const config::ConfigError& e) {
        for (const auto& d : e.diagnostics()) err << d.to_string() << "\n";
        return 1;
    }
    // The syntax was checked with the file; what this system's HTTP server
    // can do is checked here, where the daemon's libraries are.
    if (auto l = config::parse_listen(cfg.metrics.listen, nullptr); l && l->addr.is_v6() &&
                                                                   !MetricsEndpoint::ipv6_supported()) {
        err << o.config_path << ": metrics.listen " << l->to_string()
            << ": this system's civetweb (the HTTP server of prometheus-cpp) is built without IPv6: use an IPv4 "
               "address, e.g. 127.0.0.1:"
            << l->port << "\n";
        return 1;
    }
    const std::string modes =
        fmt::format("tcp {}, udp {}", config::to_string(cfg.tcp.mode), config::to_string(cfg.udp.mode));
    if (::geteuid() != 0) {
        out << o.config_path << ": OK (" << modes
            << "); checked the files only: run as root to have the kernel check the ruleset too\n";
        return 0;
    }
    // The files are fine whatever the kernel says next: say so first.
    out << o.config_path << ": OK (" << modes << ")\n";
    std::string backend = "?";
    try {
        kernel::Nft nft;
        auto b = kernel::pick_backend(cfg.steer, nft.probe_backends());
        if (!b) {
            err << o.config_path
                << ": no steering backend works on this kernel: need nft_queue, nft_compat + xt_NFQUEUE, or "
                   "nfnetlink_log\n";
            return 1;
        }
        backend = kernel::to_string(*b);
        // The same spec the daemon loads at start: sizes and never-ban sets included.
        auto spec = kernel::RulesetSpec::from_config(cfg, *b);
        spec.never = gather(cfg).prefixes();
        nft.check(spec);
    } catch (const kernel::NftError& e) {
        err << o.config_path << ": the kernel refuses the ruleset for backend " << backend << ": " << e.what()
            << "\n";
        return 1;
    } catch (const std::exception& e) {
        err << o.config_path << ": cannot check the ruleset with the kernel: " << e.what() << "\n";
        return 1;
    }
    out << o.config_path << ": the kernel accepts the ruleset for backend " << backend
        << " (checked, not committed)\n";
    return 0;
}

}  // namespace portsentry::daemon
