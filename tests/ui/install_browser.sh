#!/bin/sh
# What tests/ui needs on a fresh machine, installed only when missing (idempotent):
#   - Debian's Chromium (/usr/bin/chromium), as root or through sudo, like the Makefile's redis-server;
#   - Playwright for Python in the project's venv, pinned by constraints.txt when it lists it. Playwright's own
#     browser download (`playwright install`) is not used: the tests launch /usr/bin/chromium (executable_path).
# Usage: tests/ui/install_browser.sh [python]   (default .venv/bin/python)
set -eu
PYTHON=${1:-.venv/bin/python}
if [ ! -x /usr/bin/chromium ]; then
	SUDO=$( [ "$(id -u)" = 0 ] || echo sudo )
	$SUDO apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi
if ! "$PYTHON" -c "import playwright.sync_api" 2>/dev/null; then
	"$PYTHON" -m pip install --quiet -c constraints.txt playwright
fi
/usr/bin/chromium --version 2>/dev/null
"$PYTHON" -c "from importlib.metadata import version; print('playwright', version('playwright'))"
