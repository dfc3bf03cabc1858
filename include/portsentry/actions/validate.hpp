// Checks for user-supplied text the actions layer sends or runs. Used by the
// daemon's --check and at load (config sits below actions, so it cannot call these).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace portsentry::actions {

// 1.2 read PORT_BANNER into a MAXBUF (1024) buffer.
inline constexpr size_t kMaxBannerLength = 1024;

// "" when `text` is an acceptable PORT_BANNER; otherwise the reason: a control
// character other than \r \n \t (reported with its offset), or longer than
// kMaxBannerLength bytes. Bytes >= 0x80 (UTF-8) are allowed.
std::string validate_banner(std::string_view text);

// "" when a KILL_RUN_CMD / custom KILL_ROUTE template can be run without a
// shell; otherwise the reason. Rejects shell syntax (`;` `&&` `|` `<` `>` `$(`
// backquote) with "put it in a script", and unbalanced double quotes.
std::string validate_command_template(std::string_view tmpl);

}  // namespace portsentry::actions
