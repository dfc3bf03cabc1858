// The event handler behind parse_yaml (internal to src/config).
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <yaml-cpp/eventhandler.h>

#include "internal.hpp"

namespace portsentry::config::detail {

class YamlEvents : public YAML::EventHandler {
public:
    YamlEvents(ParseState& st, std::string_view text);

    // Parses the whole text, reporting into st. Throws nothing but bad_alloc.
    void run();

    void OnDocumentStart(const YAML::Mark& mark) override;
    void OnDocumentEnd() override {}
    void OnNull(const YAML::Mark& mark, YAML::anchor_t anchor) override;
    void OnAlias(const YAML::Mark& mark, YAML::anchor_t anchor) override;
    void OnScalar(const YAML::Mark& mark, const std::string& tag, YAML::anchor_t anchor,
                  const std::string& value) override;
    void OnSequenceStart(const YAML::Mark& mark, const std::string& tag, YAML::anchor_t anchor,
                         YAML::EmitterStyle::value style) override;
    void OnSequenceEnd() override;
    void OnMapStart(const YAML::Mark& mark, const std::string& tag, YAML::anchor_t anchor,
                    YAML::EmitterStyle::value style) override;
    void OnMapEnd() override;
    void OnAnchor(const YAML::Mark& mark, const std::string& name) override;

private:
    enum class Kind : uint8_t { null, scalar, seq, map, alias_ports, bad_alias };
    // One open collection we are inside.
    struct Frame {
        enum Type : uint8_t { map, list, skip } kind;  // list: a port_list or url_list value
        std::string prefix;              // map: "" (top level) or a section name
        bool want_key = true;            // map: next node is a key
        std::string path;                // map: the key whose value comes next
        const KeyInfo* key = nullptr;    // map: its table entry; list: the list's key
        unsigned key_line = 0;
        bool skip_value = false;         // map: the key was refused, ignore its value
        std::vector<PortRange> ranges;   // list of ports: collected so far
        YAML::anchor_t anchor = 0;       // list of ports: anchor of the list, for aliases
        int depth = 1;                   // skip: nesting still open
        bool seq = false;                // list, skip: the collection is a list
        size_t items = 0;                // list, skip: its direct items so far
        std::vector<std::string> urls;   // list of URLs: collected so far
    };
    struct Anchored {
        std::string name, value;
        std::vector<PortRange> ports;
        bool scalar = true;
    };
    // Anchors kept for aliases; beyond this an alias is refused (a config
    // needs a handful; a hostile file must not grow memory with them).
    static constexpr size_t kMaxAnchors = 256;
    // yaml-cpp keeps ~50 bytes per block-list item until the document ends,
    // so a list of millions of junk items costs hundreds of MB before we can
    // refuse it. No list in a configuration needs more than one item per port.
    static constexpr size_t kMaxListItems = 65536;

    void node(Kind kind, unsigned line, const std::string& value, const std::vector<PortRange>& ports);
    void key_node(Frame& f, Kind kind, unsigned line, const std::string& value);
    void value_node(Frame& f, Kind kind, unsigned line, const std::string& value, const std::vector<PortRange>& ports);
    void list_item(Frame& f, Kind kind, unsigned line, const std::string& value);
    void end();
    void remember_collection_anchor(YAML::anchor_t anchor);
    bool expecting_port_list() const;
    void check_quote(const YAML::Mark& mark);
    void syntax_error(unsigned line, const std::string& msg);
    void err(unsigned line, std::string msg);
    void push_skip(Kind kind, unsigned line) {
        if (kind == Kind::seq || kind == Kind::map)
            stack_.push_back(
                Frame{Frame::skip, {}, true, {}, nullptr, line, false, {}, 0, 1, kind == Kind::seq, 0, {}});
    }
    void count_item(Frame& f);

    ParseState& st_;
    std::string_view text_;
    std::vector<Frame> stack_;
    std::vector<std::pair<bool, unsigned>> open_;  // every open collection: flow style?, line
    std::map<YAML::anchor_t, Anchored> anchors_;
    std::string pending_anchor_;
    YAML::anchor_t seq_anchor_ = 0;
    int docs_ = 0;
    bool root_seen_ = false;
};

}  // namespace portsentry::config::detail
