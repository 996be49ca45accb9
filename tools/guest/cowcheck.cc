// cowcheck: fork and copy-on-write must keep every process's memory its own.
//
//   cowcheck [--rounds R] [--children C] [--pages P]
//
// Each round the parent writes a pattern (round, page, word) over P pages and
// forks C children. A child checks that it sees the parent's pattern, writes
// its own, checks that, and exits 0 only if every word matched. The parent,
// after the children exit, checks its pages still hold its own pattern. Any
// write that reached the other process's copy (a stale writable translation)
// shows up as a mismatch. Prints COWCHECK PASS / COWCHECK FAIL; exit 0 on PASS.
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace {

constexpr size_t kPage = 4096;
constexpr size_t kWords = kPage / sizeof(uint64_t);

uint64_t Pattern(uint64_t owner, uint64_t round, size_t page, size_t word) {
  return (owner << 48) ^ (round << 32) ^ (page << 12) ^ word ^ 0x5a5a000000000000ULL;
}

void Fill(uint64_t* mem, size_t pages, uint64_t owner, uint64_t round) {
  for (size_t p = 0; p < pages; ++p)
    for (size_t w = 0; w < kWords; ++w) mem[p * kWords + w] = Pattern(owner, round, p, w);
}

size_t Mismatches(const uint64_t* mem, size_t pages, uint64_t owner, uint64_t round) {
  size_t bad = 0;
  for (size_t p = 0; p < pages; ++p)
    for (size_t w = 0; w < kWords; ++w) bad += mem[p * kWords + w] != Pattern(owner, round, p, w);
  return bad;
}

}  // namespace

int main(int argc, char** argv) {
  long rounds = 20, children = 3, pages = 64;
  for (int i = 1; i + 1 < argc; i += 2) {
    const long v = std::strtol(argv[i + 1], nullptr, 10);
    if (!std::strcmp(argv[i], "--rounds")) rounds = v;
    else if (!std::strcmp(argv[i], "--children")) children = v;
    else if (!std::strcmp(argv[i], "--pages")) pages = v;
    else { std::fprintf(stderr, "cowcheck: unknown option %s\n", argv[i]); return 2; }
  }
  auto* mem = static_cast<uint64_t*>(mmap(nullptr, pages * kPage, PROT_READ | PROT_WRITE,
                                          MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  if (mem == MAP_FAILED) { std::perror("cowcheck: mmap"); return 1; }
  size_t failures = 0;
  for (long r = 0; r < rounds; ++r) {
    Fill(mem, pages, 0, r);
    for (long c = 1; c <= children; ++c) {
      const pid_t pid = fork();
      if (pid < 0) { std::perror("cowcheck: fork"); return 1; }
      if (pid == 0) {
        size_t bad = Mismatches(mem, pages, 0, r);
        Fill(mem, pages, c, r);
        bad += Mismatches(mem, pages, c, r);
        _exit(bad == 0 ? 0 : 1);
      }
    }
    // The parent keeps writing while the children run: its copies must not
    // leak into theirs either.
    Fill(mem, pages, 0, r);
    for (long c = 1; c <= children; ++c) {
      int status = 0;
      wait(&status);
      if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        ++failures;
        std::printf("cowcheck: round %ld: a child saw foreign data (status 0x%x)\n", r, status);
      }
    }
    const size_t bad = Mismatches(mem, pages, 0, r);
    if (bad) {
      ++failures;
      std::printf("cowcheck: round %ld: parent lost %zu words to a child\n", r, bad);
    }
  }
  std::printf("cowcheck: %ld rounds x %ld children x %ld pages, %zu failures\n", rounds, children,
              pages, failures);
  std::printf("COWCHECK %s\n", failures ? "FAIL" : "PASS");
  return failures ? 1 : 0;
}
