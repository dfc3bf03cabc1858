// The fleet's secret files (crowdsec.password_file, crowdsec.bouncer_key_file):
// the secret alone on the first line of a file only its owner may use. The one
// reader: validation (--check, start, SIGHUP) checks with it, the fleet client
// reads with it. Messages name the file, never its content.
#pragma once

#include <cstddef>
#include <optional>
#include <string>

namespace portsentry::config {

// A LAPI password or API key is well under 100 bytes; a first line longer
// than this is not one (and a huge file is not read whole).
inline constexpr size_t kMaxSecretLength = 4096;

// The secret alone on the first line of `path`, surrounding whitespace and the
// newline (LF or CRLF) stripped. Throws std::runtime_error("PATH: why"):
// errno text ("No such file or directory"), "not a regular file", a mode with
// group or other bits ("mode 0644: readable by group or others; chmod 600
// PATH"), an empty or over-long first line, a control character in it (the
// secret goes into HTTP headers). Never includes the secret.
std::string read_secret_file(const std::string& path);

// The same checks, as a message (nullopt = fine). Used by validation.
std::optional<std::string> secret_file_problem(const std::string& path);

}  // namespace portsentry::config
