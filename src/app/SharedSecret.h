#pragma once
// The shared secret of a daemon when none is configured: generated once
// (32 random bytes, hex) into a 0600 file and read from there afterwards.
// Callers log the path, never the value.

#include <string>

#include "base/Result.h"

namespace sbx::app {

// Reads the secret at `path`, or creates it (and its directory, 0700).
Result<std::string> loadOrCreateSecret(const std::string& path);

// What is wrong with the permissions of the secret file at `path`, or ""
// when only its owner can read or write it (an operator may have written it
// with a loose umask). Callers warn; the secret is still used.
std::string secretFileWarning(const std::string& path);

// Whether an Authorization header is "Bearer <secret>", compared in
// constant time (in the secret's length). A null header or an empty secret
// never matches.
bool bearerMatches(const std::string* header, const std::string& secret);

}  // namespace sbx::app
