// libFuzzer harness: config::parse_yaml (the native configuration). Ignore
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
    Config c;
    try {
        c = parse_yaml(text, "fuzz.yaml", opts);
    } catch (const ConfigError& e) {
        fuzz::check_error(e);
        return 0;
    } catch (const std::exception&) {
        return 0;  // expected outcome for malformed input (yaml-cpp's own errors included)
    }
    fuzz::check_roundtrip(c);
    return 0;
}
