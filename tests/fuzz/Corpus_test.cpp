// Replays the fuzz corpus and every kept crasher through the harnesses
// (tests/fuzz/<name>_fuzz.cpp): tests/fuzz/corpus/<name>/* must run clean,
// and so must tests/fuzz/crashers/<name>/* once the bug it found is fixed.
// A broken invariant aborts the test binary (SBX_FUZZ_CHECK), naming the
// input; sanitizer builds also catch what ASan/UBSan see; an input still
// running after kInputSeconds (a hang, libFuzzer's "timeout-") aborts too,
// naming it, instead of stalling the whole suite.

#include <doctest/doctest.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "FuzzTarget.h"

namespace fs = std::filesystem;

namespace {

constexpr size_t kMinCorpusFiles = 5;
// Generous: the slowest harness (http_server) takes milliseconds per input,
// even under TSan.
constexpr unsigned kInputSeconds = 30;

// The input being replayed, for the watchdog (a signal handler may only read
// it: set before alarm(), cleared after).
const char* volatile gReplaying = nullptr;

void onWatchdog(int) {
  const char head[] = "fuzz replay: still running after the watchdog's limit (a hang): ";
  (void)!::write(2, head, sizeof head - 1);
  if (const char* name = gReplaying) {
    size_t n = 0;
    while (name[n] != '\0') ++n;
    (void)!::write(2, name, n);
  }
  (void)!::write(2, "\n", 1);
  ::abort();
}

// tests/fuzz from the repository root, which is the working directory of
// `make test`; else the first one found walking up from the working directory.
fs::path fuzzDir() {
  std::error_code ec;
  for (fs::path dir = fs::current_path(ec); !dir.empty(); dir = dir.parent_path()) {
    fs::path candidate = dir / "tests" / "fuzz";
    if (fs::is_directory(candidate / "corpus", ec)) return candidate;
    if (dir == dir.root_path()) break;
  }
  return {};
}

// Regular files under `dir` (none when it does not exist), sorted for a
// stable order. Dot files (.keep) are not inputs.
std::vector<fs::path> inputsIn(const fs::path& dir) {
  std::vector<fs::path> out;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return out;
  for (const auto& entry : fs::recursive_directory_iterator(dir, ec)) {
    if (!entry.is_regular_file(ec)) continue;
    if (entry.path().filename().string().rfind('.', 0) == 0) continue;
    out.push_back(entry.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string readAll(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

size_t replay(const sbx::fuzz::FuzzTarget& target, const fs::path& dir) {
  struct sigaction sa {};
  sa.sa_handler = onWatchdog;
  struct sigaction old {};
  ::sigaction(SIGALRM, &sa, &old);
  size_t n = 0;
  for (const fs::path& file : inputsIn(dir)) {
    const std::string input = readAll(file);
    std::string& current = sbx::fuzz::currentFuzzInput();
    current = file.string();
    gReplaying = current.c_str();
    ::alarm(kInputSeconds);
    target.run(input);
    ::alarm(0);
    gReplaying = nullptr;
    current.clear();
    ++n;
  }
  ::sigaction(SIGALRM, &old, nullptr);
  return n;
}

}  // namespace

TEST_CASE("fuzz corpus: every target replays its corpus and kept crashers") {
  const fs::path dir = fuzzDir();
  REQUIRE_MESSAGE(!dir.empty(), "tests/fuzz/corpus not found from the working directory");
  const auto& targets = sbx::fuzz::fuzzTargets();
  REQUIRE(!targets.empty());
  for (const auto& target : targets) {
    CAPTURE(target.name);
    const size_t corpus = replay(target, dir / "corpus" / target.name);
    CHECK_MESSAGE(corpus >= kMinCorpusFiles, "tests/fuzz/corpus/"
                                                 << target.name << " holds " << corpus
                                                 << " files, want >= " << kMinCorpusFiles);
    replay(target, dir / "crashers" / target.name);
  }
}

TEST_CASE("fuzz corpus: every corpus directory has a target") {
  const fs::path dir = fuzzDir();
  REQUIRE(!dir.empty());
  const auto& targets = sbx::fuzz::fuzzTargets();
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir / "corpus", ec)) {
    if (!entry.is_directory(ec)) continue;
    const std::string name = entry.path().filename().string();
    CAPTURE(name);
    CHECK(std::any_of(targets.begin(), targets.end(),
                      [&](const sbx::fuzz::FuzzTarget& t) { return name == t.name; }));
  }
}
