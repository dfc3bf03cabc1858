#include "portsentry/actions/validate.hpp"

#include <fmt/format.h>

namespace portsentry::actions {

std::string validate_banner(std::string_view text) {
    if (text.size() > kMaxBannerLength)
        return fmt::format("PORT_BANNER is {} bytes long, the limit is {}", text.size(),
                           kMaxBannerLength);
    for (size_t i = 0; i < text.size(); ++i) {
        auto c = static_cast<unsigned char>(text[i]);
        if ((c < 0x20 && c != '\r' && c != '\n' && c != '\t') || c == 0x7f)
            return fmt::format(
                "PORT_BANNER contains control character 0x{:02x} at offset {} (only \\r \\n \\t "
                "are allowed)",
                c, i);
    }
    return {};
}

std::string validate_command_template(std::string_view tmpl) {
    bool in_quote = false;
    bool any = false;
    for (size_t i = 0; i < tmpl.size(); ++i) {
        char c = tmpl[i];
        if (c == '"') {
            in_quote = !in_quote;
            continue;
        }
        if (c != ' ' && c != '\t') any = true;
        // Even inside quotes: the command is exec'd without a shell, and text
        // that only means something to a shell is a sign the admin expects one.
        const char* what = nullptr;
        if (c == ';') what = "';'";
        else if (c == '|') what = "'|'";
        else if (c == '&') what = "'&'";
        else if (c == '<' || c == '>') what = "a redirection";
        else if (c == '`') what = "a backquote";
        else if (c == '$' && i + 1 < tmpl.size() && tmpl[i + 1] == '(') what = "'$('";
        else if (static_cast<unsigned char>(c) < 0x20 && c != '\t') what = "a control character";
        if (what)
            return fmt::format(
                "contains {} at offset {}: commands run without a shell; put it in a script", what,
                i);
    }
    if (in_quote) return "unterminated double quote";
    if (!any) return "empty command";
    return {};
}

}  // namespace portsentry::actions
