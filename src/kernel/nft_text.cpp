// --print-ruleset: the nft text of exactly what apply() builds. Both come from
// describe() (nft_build.cpp), so they cannot drift apart.
#include <fmt/format.h>
#include <linux/netfilter/nf_tables.h>

#include <string>

#include "nft_build.hpp"

namespace portsentry::kernel {

namespace {

std::string set_flags_text(uint32_t flags) {
    std::string s;
    if (flags & NFT_SET_INTERVAL) s += "interval";
    if (flags & NFT_SET_TIMEOUT) s += s.empty() ? "timeout" : ", timeout";
    return s;
}

// `elements = { a, b, ... }`, eight to a line so long port lists stay readable.
std::string elements_text(const std::vector<std::string>& el) {
    std::string s = "\t\telements = { ";
    for (size_t i = 0; i < el.size(); ++i) {
        if (i) s += (i % 8 == 0) ? ",\n\t\t\t     " : ", ";
        s += el[i];
    }
    return s + " }\n";
}

}  // namespace

std::string render_ruleset(const RulesetSpec& spec) {
    const detail::RulesetDef d = detail::describe(spec);
    std::string out;
    out += "#!/usr/sbin/nft -f\n";
    out += "# table inet portsentry, as portsentry-nfq builds it for the current config\n";
    out += fmt::format("# steering: {} (", to_string(spec.backend));
    out += spec.backend == Backend::nflog ? fmt::format("log group {})\n", spec.nflog_group)
                                          : fmt::format("queue {})\n", spec.queue_num);
    out += "# The first two commands make the replace below work whether or not the\n"
           "# table exists; nft -f applies the file as one transaction. Other tables\n"
           "# are never touched.\n";
    out += fmt::format("table inet {}\ndelete table inet {}\n\n", kTable, kTable);
    out += fmt::format("table inet {} {{\n", kTable);
    for (const auto& s : d.sets) {
        if (!s.comment.empty()) out += "\t# " + s.comment + "\n";
        out += fmt::format("\tset {} {{\n\t\ttype {}\n\t\tflags {}\n\t\tsize {}\n", s.name, s.type_text,
                           set_flags_text(s.flags), s.size);
        if (!s.elem_text.empty()) out += elements_text(s.elem_text);
        out += "\t}\n\n";
    }
    for (size_t ci = 0; ci < d.chains.size(); ++ci) {
        const auto& c = d.chains[ci];
        out += fmt::format("\tchain {} {{\n\t\ttype filter hook {} priority {}; policy accept;\n", c.name,
                           c.hook_text, c.prio_text);
        for (const auto& r : d.rules) {
            if (r.chain != c.name) continue;
            if (!r.comment.empty()) out += "\t\t# " + r.comment + "\n";
            out += "\t\t" + r.text + "\n";
        }
        out += ci + 1 < d.chains.size() ? "\t}\n\n" : "\t}\n";
    }
    out += "}\n";
    return out;
}

}  // namespace portsentry::kernel
