#pragma once
// One daemon per state: an exclusive flock(2) on a lock file in the
// daemon's state directory (sbxlet) or beside its database (sandboxd-o),
// held until the process exits. A second sbxlet on the same state directory
// would take the first one's sandboxes for orphans and release them; a
// second sandboxd-o on the same database would schedule twice.
//
// The kernel drops the lock when the process dies, kill -9 included: a
// stale lock file never keeps a restarted daemon out.

#include <string>

#include "base/Result.h"
#include "reactor/Fd.h"

namespace sbx::app {

// Creates the file's directory (0700) if missing, opens the file (0600)
// and locks it. Keep the returned Fd open for the process's lifetime.
// Fails, naming the path and the holder's pid, if another process holds it.
Result<Fd> lockInstance(const std::string& path);

}  // namespace sbx::app
