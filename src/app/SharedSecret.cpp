#include "app/SharedSecret.h"

#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "reactor/Fd.h"

namespace sbx::app {

Result<std::string> loadOrCreateSecret(const std::string& path) {
  Fd in(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (in) {
    char buf[256];
    ssize_t n = ::read(in.get(), buf, sizeof buf);
    if (n <= 0) return Error("read " + path + ": empty or unreadable");
    std::string s(buf, static_cast<size_t>(n));
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
    if (s.size() < 16) return Error(path + ": secret shorter than 16 characters");
    return s;
  }
  if (errno != ENOENT) return Error("open " + path + ": " + std::strerror(errno));
  std::error_code ec;
  std::filesystem::path dir = std::filesystem::path(path).parent_path();
  if (!dir.empty()) {
    if (std::filesystem::create_directories(dir, ec)) ::chmod(dir.c_str(), 0700);
    if (ec) return Error("create " + dir.string() + ": " + ec.message());
  }
  unsigned char raw[32];
  if (::getrandom(raw, sizeof raw, 0) != static_cast<ssize_t>(sizeof raw)) {
    return Error(std::string("getrandom: ") + std::strerror(errno));
  }
  static const char kHex[] = "0123456789abcdef";
  std::string secret;
  for (unsigned char b : raw) {
    secret.push_back(kHex[b >> 4]);
    secret.push_back(kHex[b & 15]);
  }
  // O_EXCL: if two starts race, one wins and the other reads its secret.
  Fd out(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!out) {
    if (errno == EEXIST) return loadOrCreateSecret(path);
    return Error("create " + path + ": " + std::strerror(errno));
  }
  std::string line = secret + "\n";
  if (::write(out.get(), line.data(), line.size()) != static_cast<ssize_t>(line.size()) ||
      ::fsync(out.get()) != 0) {
    return Error("write " + path + ": " + std::strerror(errno));
  }
  return secret;
}

std::string secretFileWarning(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return "stat " + path + ": " + std::strerror(errno);
  if ((st.st_mode & 077) == 0) return "";
  char mode[8];
  std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
  return path + " has mode " + mode + ": other users can read it or write it (chmod 600)";
}

bool bearerMatches(const std::string* header, const std::string& secret) {
  if (!header || secret.empty()) return false;
  static const std::string kPrefix = "Bearer ";
  if (header->size() < kPrefix.size() || header->compare(0, kPrefix.size(), kPrefix) != 0) {
    return false;
  }
  // Constant time in the secret's length: no early exit on the first
  // differing byte, and the length difference folded into the result.
  const char* given = header->data() + kPrefix.size();
  size_t givenLen = header->size() - kPrefix.size();
  unsigned char diff = givenLen == secret.size() ? 0 : 1;
  for (size_t i = 0; i < secret.size(); ++i) {
    unsigned char g = i < givenLen ? static_cast<unsigned char>(given[i]) : 0;
    diff |= static_cast<unsigned char>(g ^ static_cast<unsigned char>(secret[i]));
  }
  return diff == 0;
}

}  // namespace sbx::app
