// libFuzzer harness: config::parse_legacy (portsentry 1.2 portsentry.conf).
// Mode flags are given so /etc/default/portsentry is never read, and ignore
// files are not loaded: the harness touches no file.
#include <cstddef>
#include <cstdint>
#include <string>

#include "config_roundtrip.hpp"

using namespace portsentry::config;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string text(reinterpret_cast<const char*>(data), size);
    LoadOptions opts;
    opts.load_ignore_files = false;
    opts.defaults_file = "/nonexistent/portsentry-fuzz/default";
    // Advanced TCP and stealth UDP: both the port lists and the advanced
    // range/exclude keys are then in play.
    opts.mode_flags = {"atcp", "sudp"};
    Config c;
    try {
        c = parse_legacy(text, "fuzz.conf", opts);
    } catch (const ConfigError& e) {
        fuzz::check_error(e);
        return 0;
    } catch (const std::exception&) {
        return 0;  // expected outcome for malformed input
    }
    fuzz::check_roundtrip(c);
    return 0;
}
