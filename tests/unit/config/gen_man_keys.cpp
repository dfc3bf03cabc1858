// gen-man-keys: prints the KEYS section of portsentry-nfq.yaml(5) rendered
// from the key table, or with --update PAGE rewrites it in place between the
// marker lines. test_man_page fails until the page is regenerated.
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include "man_keys.hpp"
#include "portsentry/config/keys.hpp"

int main(int argc, char** argv) {
    const std::string generated = portsentry::config::render_man_keys();
    if (argc == 1) {
        std::cout << generated;
        return 0;
    }
    if (argc != 3 || std::string(argv[1]) != "--update") {
        std::cerr << "usage: gen-man-keys [--update docs/portsentry-nfq.yaml.5]\n";
        return 2;
    }
    std::ifstream in(argv[2]);
    std::stringstream ss;
    ss << in.rdbuf();
    std::string page = ss.str(), why;
    auto updated = man_keys::replace_section(page, generated, &why);
    if (!in || !updated) {
        std::cerr << argv[2] << ": " << (in ? why : "cannot read") << "\n";
        return 1;
    }
    std::ofstream(argv[2]) << *updated;
    return 0;
}
