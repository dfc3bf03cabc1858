// Test helper run by CommandRunner: records the argv it received, exactly.
// Usage: record_argv OUTFILE [ARGS...] — writes each ARG followed by a NUL
// byte to OUTFILE, so the test can tell one word with a space from two words.
#include <fcntl.h>
#include <unistd.h>

#include <cstring>

int main(int argc, char** argv) {
    if (argc < 2) return 2;
    int fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return 3;
    for (int i = 2; i < argc; ++i) {
        size_t n = std::strlen(argv[i]) + 1;  // include the NUL terminator
        if (write(fd, argv[i], n) != static_cast<ssize_t>(n)) return 4;
    }
    return close(fd) == 0 ? 0 : 5;
}
