// Secrets kept in files (crowdsec.password_file, crowdsec.bouncer_key_file).
#pragma once

#include <optional>
#include <string>

namespace portsentry::config {

// The secret alone on the first line of `path`, surrounding whitespace and
// the newline stripped. Throws std::runtime_error("PATH: why") (errno text; a
// file readable by group or others is refused); never includes the secret.
std::string read_secret_file(const std::string& path);
// The same checks, as a message (nullopt = fine). Used by validation.
std::optional<std::string> secret_file_problem(const std::string& path);

}  // namespace portsentry::config
