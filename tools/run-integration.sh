#!/usr/bin/env bash
# Runs the C++ integration suites against a private environment: its own
# containerd (own root, state, socket), a docker-registry on loopback holding
# the test images (tests/env/up.sh). The environment is torn down afterwards
# whatever happens (tests/env/down.sh): processes by PID, mounts, files.
#   tools/run-integration.sh COMMAND [ARGS...]   (e.g. build/integration_tests)
set -uo pipefail
cd "$(dirname "$0")/.."
dir=$(mktemp -d /tmp/sbx-it.XXXXXX)
cleanup() { tests/env/down.sh "$dir" >/dev/null 2>&1 || tests/env/down.sh "$dir"; }
trap cleanup EXIT
if ! tests/env/up.sh "$dir"; then
  echo "integration: environment failed to start"
  echo "env: 0 passed, 1 failed"
  exit 1
fi
set -a
# shellcheck disable=SC1091
. "$dir/env.sh"
set +a
"$@"
rc=$?
if [ "$rc" -ne 0 ] && [ -f "${CONTAINERD_LOG:-}" ]; then
  # What containerd said about the failure, before the environment goes.
  echo "--- last containerd log lines (errors and warnings):"
  grep -E 'level=(error|warning)' "$CONTAINERD_LOG" | tail -n 15 | cut -c1-400
fi
exit "$rc"
