#!/usr/bin/env bash
# Installs everything Forethought needs on a fresh Debian machine: Chromium and the Python package.
set -euo pipefail
cd "$(dirname "$0")/.."

# Chromium for the agent, and its headless shell: the same engine without the browser's UI and
# profile services, a third of the CPU per task for the eval workers.
if [ -z "${FORETHOUGHT_CHROMIUM:-}" ] && ! { command -v chromium && command -v chromium-headless-shell; } >/dev/null 2>&1; then
    echo "forethought setup: installing Debian's chromium and chromium-headless-shell (about 50 s)..." >&2
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium chromium-headless-shell >/dev/null
fi

# Installed from this checkout? (-I: not found through the current directory; an editable install of
# another checkout, since moved or deleted, must not count.)
installed_here() {
    command -v forethought >/dev/null 2>&1 && python3 -I -c '
import importlib.util, pathlib, sys
spec = importlib.util.find_spec("agent")
sys.exit(not (spec and pathlib.Path(spec.origin).resolve().parents[1] == pathlib.Path(sys.argv[1]).resolve()))
' "$PWD" 2>/dev/null
}
if ! installed_here || [ "${FORETHOUGHT_REINSTALL:-0}" = 1 ]; then
    echo "forethought setup: installing the Python package and test tools..." >&2
    python3 -m pip install -q --disable-pip-version-check -e ".[test]"
fi
