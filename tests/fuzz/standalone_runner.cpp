// Replays fuzz inputs through a harness without libFuzzer, so every harness is
// also an ordinary test built by any compiler (STYLE §15; the idea follows
// PowerDNS' standalone_fuzz_target_runner). Arguments are files or
// directories (each regular file inside, sorted, not recursive).
//
// Each input is copied into a heap buffer of exactly its size, so a sanitized
// build reports any read past the end, as libFuzzer would.
#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);
extern "C" __attribute__((weak)) int LLVMFuzzerInitialize(int* argc, char*** argv);

namespace fs = std::filesystem;

namespace {

bool replay(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    if (!in) {
        std::fprintf(stderr, "%s: cannot open: %s\n", p.c_str(), std::strerror(errno));
        return false;
    }
    const std::vector<char> content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (in.bad()) {
        std::fprintf(stderr, "%s: read error\n", p.c_str());
        return false;
    }
    const size_t n = content.size();
    std::unique_ptr<uint8_t[]> buf(new uint8_t[n ? n : 1]);
    if (n > 0) std::memcpy(buf.get(), content.data(), n);  // data() may be null when empty
    // libFuzzer passes a null-free pointer even for empty inputs; so do we.
    LLVMFuzzerTestOneInput(buf.get(), n);
    return true;
}

}  // namespace

int main(int argc, char** argv) {
    if (LLVMFuzzerInitialize) LLVMFuzzerInitialize(&argc, &argv);
    if (argc < 2) {
        std::fprintf(stderr, "usage: %s FILE_OR_DIR...\n", argv[0]);
        return 2;
    }
    size_t count = 0;
    bool ok = true;
    for (int i = 1; i < argc; ++i) {
        const fs::path arg(argv[i]);
        std::error_code ec;
        if (fs::is_directory(arg, ec)) {
            std::vector<fs::path> files;
            for (const auto& e : fs::directory_iterator(arg, ec))
                if (e.is_regular_file()) files.push_back(e.path());
            if (ec) {
                std::fprintf(stderr, "%s: %s\n", argv[i], ec.message().c_str());
                ok = false;
                continue;
            }
            std::sort(files.begin(), files.end());
            for (const auto& f : files) {
                std::printf("replay %s\n", f.c_str());
                std::fflush(stdout);  // so a crash names its input
                ok = replay(f) && ok;
                ++count;
            }
        } else {
            std::printf("replay %s\n", arg.c_str());
            std::fflush(stdout);
            ok = replay(arg) && ok;
            ++count;
        }
    }
    std::printf("%zu inputs replayed\n", count);
    // An empty corpus proves nothing: fail rather than pass vacuously.
    if (count == 0) {
        std::fprintf(stderr, "no inputs found\n");
        return 1;
    }
    return ok ? 0 : 1;
}
