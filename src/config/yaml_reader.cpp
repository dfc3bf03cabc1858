// The YAML reader: yaml-cpp's event parser, not its node tree. Values are
// stored as they arrive, so memory does not grow with a file's junk (a tree
// of 7.5 million bad list items took 6.9 GB), and every event carries the
// position where it was written: an alias is reported where it is used, an
// unclosed '[' where it opens, a second document where it starts.
#include <streambuf>

#include <fmt/format.h>
#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/exceptions.h>
#include <yaml-cpp/mark.h>
#include <yaml-cpp/parser.h>

#include "internal.hpp"
#include "yaml_reader.hpp"

namespace portsentry::config::detail {

namespace {

// An istream over text we already hold (an istringstream would copy 16 MiB).
class ViewBuf : public std::streambuf {
public:
    explicit ViewBuf(std::string_view s) {
        char* p = const_cast<char*>(s.data());  // read-only: the get area is never written
        setg(p, p, p + s.size());
    }
};

unsigned line_of(const YAML::Mark& m) { return m.line >= 0 ? static_cast<unsigned>(m.line + 1) : 0; }

// A parse that cannot go on meaningfully (second document, broken quote).
struct Stop {};

}  // namespace

YamlEvents::YamlEvents(ParseState& st, std::string_view text) : st_(st), text_(text) {}

void YamlEvents::err(unsigned line, std::string msg) { st_.error(st_.cfg.source_file, line, std::move(msg)); }

void YamlEvents::OnDocumentStart(const YAML::Mark& mark) {
    if (++docs_ == 2) {
        err(line_of(mark), "a second YAML document starts here: a configuration file holds exactly one "
                           "(remove this '---' and merge the settings into the first)");
        throw Stop{};
    }
}

void YamlEvents::OnAnchor(const YAML::Mark&, const std::string& name) { pending_anchor_ = name; }

void YamlEvents::OnNull(const YAML::Mark& mark, YAML::anchor_t) { node(Kind::null, line_of(mark), "", {}); }

void YamlEvents::OnScalar(const YAML::Mark& mark, const std::string& tag, YAML::anchor_t anchor,
                          const std::string& value) {
    if (tag == "!") check_quote(mark);
    if (anchor != 0 && anchors_.size() < kMaxAnchors) anchors_[anchor] = Anchored{pending_anchor_, value, {}, true};
    node(Kind::scalar, line_of(mark), value, {});
}

void YamlEvents::OnAlias(const YAML::Mark& mark, YAML::anchor_t anchor) {
    auto it = anchors_.find(anchor);
    if (it == anchors_.end() || !it->second.scalar) {
        // Aliases of port lists are resolved in node(); anything else is rare
        // enough in a config file to ask for the value written out.
        if (it != anchors_.end() && expecting_port_list()) {
            node(Kind::alias_ports, line_of(mark), "", it->second.ports);
            return;
        }
        node(Kind::bad_alias, line_of(mark), it == anchors_.end() ? "" : it->second.name, {});
        return;
    }
    node(Kind::scalar, line_of(mark), it->second.value, {});
}

void YamlEvents::OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                                 YAML::EmitterStyle::value style) {
    open_.push_back({style == YAML::EmitterStyle::Flow, line_of(mark)});
    remember_collection_anchor(anchor);
    seq_anchor_ = anchor;
    node(Kind::seq, line_of(mark), "", {});
}

void YamlEvents::OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                            YAML::EmitterStyle::value style) {
    open_.push_back({style == YAML::EmitterStyle::Flow, line_of(mark)});
    remember_collection_anchor(anchor);
    node(Kind::map, line_of(mark), "", {});
}

void YamlEvents::remember_collection_anchor(YAML::anchor_t anchor) {
    // Its name, for messages about aliases of it; a port list's items are
    // added when it ends.
    if (anchor != 0 && anchors_.size() < kMaxAnchors) anchors_[anchor] = Anchored{pending_anchor_, "", {}, false};
}

void YamlEvents::OnSequenceEnd() { end(); }
void YamlEvents::OnMapEnd() { end(); }

void YamlEvents::end() {
    if (!open_.empty()) open_.pop_back();
    if (stack_.empty()) return;
    Frame& f = stack_.back();
    if (f.kind == Frame::skip && --f.depth > 0) return;
    if (f.kind == Frame::list && f.key->kind == ValueKind::url_list) {
        *std::get<std::vector<std::string>*>(f.key->field(st_.cfg)) = std::move(f.urls);
    } else if (f.kind == Frame::list) {
        *std::get<std::vector<PortRange>*>(f.key->field(st_.cfg)) = f.ranges;
        if (auto it = anchors_.find(f.anchor); f.anchor != 0 && it != anchors_.end()) it->second.ports = f.ranges;
    }
    stack_.pop_back();
}

bool YamlEvents::expecting_port_list() const {
    return !stack_.empty() && stack_.back().kind == Frame::map && !stack_.back().want_key && stack_.back().key &&
           stack_.back().key->kind == ValueKind::port_list;
}

void YamlEvents::check_quote(const YAML::Mark& mark) {
    // yaml-cpp lets a quoted value run over line ends and even to the end of
    // the file, silently swallowing the settings below it.
    if (mark.pos < 0 || static_cast<size_t>(mark.pos) >= text_.size()) return;
    const char q = text_[static_cast<size_t>(mark.pos)];
    if (q != '"' && q != '\'') return;  // a block scalar (| or >)
    for (size_t i = static_cast<size_t>(mark.pos) + 1; i < text_.size(); ++i) {
        const char c = text_[i];
        if (q == '"' && c == '\\') {
            ++i;
            continue;
        }
        if (c == q) {
            if (q == '\'' && i + 1 < text_.size() && text_[i + 1] == '\'') {
                ++i;  // '' is a quote inside single quotes
                continue;
            }
            return;
        }
        if (c == '\n') break;
    }
    err(line_of(mark), fmt::format("the {} quote opened on this line is not closed on it: close it (a quoted "
                                   "value must end on the line it starts)",
                                   q == '"' ? "double" : "single"));
    throw Stop{};
}

}  // namespace portsentry::config::detail

namespace portsentry::config::detail {

namespace {

constexpr std::string_view kSections[] = {"tcp", "udp", "protect", "metrics", "crowdsec"};

bool is_section(std::string_view s) {
    for (auto sec : kSections)
        if (s == sec) return true;
    return false;
}

const char* kind_name(int k) {
    // Kind values: null, scalar, seq, map (aliases are resolved before).
    static constexpr const char* names[] = {"nothing", "a single value", "a list", "a mapping"};
    return k >= 0 && k < 4 ? names[k] : "an alias";
}

std::string unknown_key_message(const std::string& path, const std::string& prefix) {
    // Candidates: keys at the same level, plus 1.2 names so that a pasted
    // "TCP_PORTS:" is pointed at tcp.ports.
    std::vector<std::string> same_level;
    for (const auto& k : keys()) {
        const std::string y(k.yaml);
        const auto dot = y.rfind('.');
        if ((dot == std::string::npos ? "" : y.substr(0, dot)) == prefix) same_level.push_back(y);
    }
    if (prefix.empty())
        for (auto sec : kSections) same_level.emplace_back(sec);
    const std::string leaf = path.substr(prefix.empty() ? 0 : prefix.size() + 1);
    for (const auto& k : keys())
        if (!k.legacy.empty() && k.legacy == leaf)
            return fmt::format("unknown key '{}': the portsentry.conf key {} is {} in YAML", path, k.legacy, k.yaml);
    // Compare without the section prefix so that the leaf's typo decides.
    std::vector<std::string> leaves;
    for (const auto& s : same_level) leaves.push_back(prefix.empty() ? s : s.substr(prefix.size() + 1));
    auto hint = did_you_mean(leaf, leaves);
    if (!hint.empty())
        return fmt::format("unknown key '{}' (did you mean {}{}?)", path, prefix.empty() ? "" : prefix + ".", hint);
    return fmt::format("unknown key '{}': expected one of {}", path, fmt::join(same_level, ", "));
}

}  // namespace

void YamlEvents::node(Kind kind, unsigned line, const std::string& value, const std::vector<PortRange>& ports) {
    pending_anchor_.clear();
    const YAML::anchor_t anchor = kind == Kind::seq ? seq_anchor_ : 0;
    seq_anchor_ = 0;
    if (stack_.empty()) {
        if (root_seen_) return;
        root_seen_ = true;
        if (kind == Kind::map) {
            stack_.push_back(Frame{Frame::map, "", true, {}, nullptr, 0, false, {}, 0, 1, false, 0, {}});
        } else if (kind != Kind::null) {
            err(line, fmt::format("expected a mapping of settings (key: value lines), got {}",
                                  kind_name(static_cast<int>(kind))));
            push_skip(kind, line);
        }
        return;
    }
    Frame& f = stack_.back();
    switch (f.kind) {
    case Frame::skip:
        if (f.depth == 1) count_item(f);
        if (kind == Kind::seq || kind == Kind::map) ++f.depth;
        return;
    case Frame::list:
        count_item(f);
        list_item(f, kind, line, value);
        return;
    case Frame::map:
        if (f.want_key) {
            key_node(f, kind, line, value);
        } else {
            f.want_key = true;
            value_node(f, kind, line, value, ports);
            if (kind == Kind::seq && !stack_.empty() && stack_.back().kind == Frame::list)
                stack_.back().anchor = anchor;
        }
        return;
    }
}

void YamlEvents::count_item(Frame& f) {
    if (!f.seq || ++f.items <= kMaxListItems) return;
    err(f.key_line, fmt::format("{}a list of more than {} items: not a configuration value{}",
                                f.key ? std::string(f.key->yaml) + ": " : std::string(), kMaxListItems,
                                f.key && f.key->kind == ValueKind::url_list
                                    ? ""
                                    : " (ports can be given as ranges, e.g. 1024-65535)"));
    throw Stop{};
}

void YamlEvents::key_node(Frame& f, Kind kind, unsigned line, const std::string& value) {
    f.want_key = false;
    f.skip_value = true;
    f.key = nullptr;
    f.key_line = line;
    if (kind != Kind::scalar) {
        err(line, kind == Kind::bad_alias ? "expected a key name, got an alias"
                                          : fmt::format("expected a key name, got {}", kind_name(static_cast<int>(kind))));
        push_skip(kind, line);  // the key itself is a collection: skip it, then its value
        return;
    }
    f.path = f.prefix.empty() ? value : f.prefix + "." + value;
    const bool section = f.prefix.empty() && is_section(f.path);
    const KeyInfo* k = section ? nullptr : find_yaml_key(f.path);
    if (!section && !k) {
        // Past the kept diagnostics only the count matters: skip the costly hint.
        err(line, st_.full() ? std::string() : unknown_key_message(f.path, f.prefix));
        return;
    }
    if (auto prev = st_.where.find(f.path); prev != st_.where.end() && prev->second.file == st_.cfg.source_file) {
        st_.key_error(f.path, {st_.cfg.source_file, line},
                      fmt::format("{} is set twice (first on line {}): keep one", f.path, prev->second.line));
        return;
    }
    st_.where[f.path] = Where{st_.cfg.source_file, line};
    f.key = k;
    f.skip_value = false;
}

void YamlEvents::value_node(Frame& f, Kind kind, unsigned line, const std::string& value,
                            const std::vector<PortRange>& ports) {
    if (f.skip_value) {
        push_skip(kind, line);
        return;
    }
    if (!f.key) {  // a section: tcp, udp, protect
        if (kind == Kind::map) {
            stack_.push_back(Frame{Frame::map, f.path, true, {}, nullptr, 0, false, {}, 0, 1, false, 0, {}});
        } else if (kind != Kind::null) {
            err(f.key_line, fmt::format("{}: expected a mapping of {} settings (mode, ports, ...), got {}", f.path,
                                        f.path, kind == Kind::bad_alias ? "an alias" : kind_name(static_cast<int>(kind))));
            push_skip(kind, line);
        }
        return;
    }
    const KeyInfo& k = *f.key;
    if (kind == Kind::alias_ports) {
        *std::get<std::vector<PortRange>*>(k.field(st_.cfg)) = ports;
        return;
    }
    if (kind == Kind::bad_alias) {
        st_.key_error(k.yaml, {st_.cfg.source_file, line},
                      fmt::format("{}: alias *{} does not name a single value: write the value out", k.yaml, value));
        return;
    }
    if (kind == Kind::seq && (k.kind == ValueKind::port_list || k.kind == ValueKind::url_list)) {
        // Each element may be a port, "a-b" or even "1,2", or one URL; reported at its own line.
        stack_.push_back(Frame{Frame::list, {}, true, {}, &k, f.key_line, false, {}, 0, 1, true, 0, {}});
        return;
    }
    if (kind == Kind::seq || kind == Kind::map) {
        st_.key_error(k.yaml, {st_.cfg.source_file, f.key_line},
                      fmt::format("{}: expected {}, got {}", k.yaml, expected_text(k, Syntax::yaml),
                                  kind_name(static_cast<int>(kind))));
        push_skip(kind, line);
        return;
    }
    // Values are reported where they are written (an alias: where it is used).
    if (auto e = set_value(k, st_.cfg, kind == Kind::scalar ? value : std::string(), Syntax::yaml))
        st_.key_error(k.yaml, {st_.cfg.source_file, line}, fmt::format("{}: {}", k.yaml, *e));
}

void YamlEvents::list_item(Frame& f, Kind kind, unsigned line, const std::string& value) {
    const bool urls = f.key->kind == ValueKind::url_list;
    if (kind != Kind::scalar) {
        st_.failed.emplace(f.key->yaml);
        err(line, fmt::format("{}: expected {}, got {}", f.key->yaml, urls ? "a URL" : "a port or \"a-b\" range",
                              kind == Kind::bad_alias || kind == Kind::alias_ports ? "an alias"
                                                                                   : kind_name(static_cast<int>(kind))));
        push_skip(kind, line);
        return;
    }
    if (urls) {
        const std::string_view url = trim_space(value);
        if (auto e = url_item_error(*f.key, url, Syntax::yaml))
            st_.key_error(f.key->yaml, {st_.cfg.source_file, line}, fmt::format("{}: {}", f.key->yaml, *e));
        else
            f.urls.emplace_back(url);
        return;
    }
    auto r = parse_port_list(value);
    if (!r.error.empty()) {
        st_.key_error(f.key->yaml, {st_.cfg.source_file, line},
                      fmt::format("{}: {}: expected {}", f.key->yaml, r.error, expected_text(*f.key, Syntax::yaml)));
        return;
    }
    f.ranges.insert(f.ranges.end(), r.ranges.begin(), r.ranges.end());
}

}  // namespace portsentry::config::detail

namespace portsentry::config::detail {

namespace {

std::string_view nth_line(std::string_view text, unsigned n) {
    std::string_view found;
    for_each_line(text, [&](std::string_view l, unsigned i) {
        if (i == n) found = l;
    });
    return found;
}

// A line with content but no "key:" (e.g. "scan_trigger = 3"): yaml-cpp
// takes it for the start of a multi-line value and complains a line later.
bool lacks_colon(std::string_view line) {
    std::string_view t = trim(line);
    if (t.empty() || t.front() == '#' || t.front() == '-' || t.front() == '[' || t.front() == '{' ||
        t.front() == '"' || t.front() == '\'' || t.front() == '|' || t.front() == '>')
        return false;
    return t.find(':') == std::string_view::npos;
}

}  // namespace

void YamlEvents::run() {
    ViewBuf buf(text_);
    std::istream in(&buf);
    try {
        YAML::Parser p(in);
        if (p.HandleNextDocument(*this)) (void)p.HandleNextDocument(*this);
    } catch (const Stop&) {
        st_.truncated = true;
    } catch (const YAML::Exception& e) {
        // Events just before a syntax error are unreliable (a value may have
        // absorbed the next line): the syntax error is the one to fix.
        st_.diags.clear();
        st_.dropped = 0;
        st_.truncated = true;
        if (dynamic_cast<const YAML::DeepRecursion*>(&e))
            err(open_.empty() ? line_of(e.mark) : open_.back().second,
                "nested too deeply: settings are at most two levels deep (section: key: value)");
        else
            syntax_error(line_of(e.mark), e.msg);
    }
}

void YamlEvents::syntax_error(unsigned line, const std::string& msg) {
    if (msg == YAML::ErrorMsg::END_OF_SEQ_FLOW || msg == YAML::ErrorMsg::END_OF_MAP_FLOW) {
        const bool seq = msg == YAML::ErrorMsg::END_OF_SEQ_FLOW;
        for (auto it = open_.rbegin(); it != open_.rend(); ++it) {
            if (!it->first) continue;
            err(it->second, fmt::format("YAML syntax error: the '{}' opened on this line is never closed: expected '{}'",
                                        seq ? '[' : '{', seq ? ']' : '}'));
            return;
        }
    }
    // The offending line is the reported one or the content line before it.
    unsigned prev = 0;
    for_each_line(text_, [&](std::string_view l, unsigned i) {
        if (i < line && !trim(l).empty() && trim(l).front() != '#') prev = i;
    });
    for (unsigned n : {line, prev}) {
        if (n == 0) continue;
        const std::string_view l = nth_line(text_, n);
        if (const size_t tab = l.find('\t'); tab != std::string_view::npos && tab < l.find_first_not_of(" \t")) {
            err(n, fmt::format("YAML syntax error: this line is indented with a tab: YAML indents with spaces only "
                               "({})",
                               msg));
            return;
        }
    }
    for (unsigned n : {line, prev}) {
        if (n == 0 || !lacks_colon(nth_line(text_, n))) continue;
        err(n, fmt::format("YAML syntax error: '{}' is not a 'key: value' line ({})", trim(nth_line(text_, n)), msg));
        return;
    }
    err(line, fmt::format("YAML syntax error: {}", msg));
}

}  // namespace portsentry::config::detail
