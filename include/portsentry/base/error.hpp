// std::system_error from an errno value (STYLE §8: copy errno the moment a
// call fails; its what() reads "WHAT: strerror").
#pragma once

#include <cerrno>
#include <string>
#include <system_error>

namespace portsentry::base {

// `err`: the errno the caller saved at the failing call (anything run since,
// even a close() on the error path, may have changed errno).
inline std::system_error sys_error(const std::string& what, int err) {
    return std::system_error(err, std::generic_category(), what);
}

// For use directly after the failing call, with nothing in between.
inline std::system_error sys_error(const std::string& what) { return sys_error(what, errno); }

}  // namespace portsentry::base
