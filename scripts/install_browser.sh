#!/usr/bin/env bash
# Installs what the dashboard's browser test needs on Debian: Chromium, its WebDriver and
# the Noto CJK fonts (so Chinese renders in the screenshot). Idempotent: installs only the
# packages that are missing, and says what it does. Needs root (or sudo) and apt-get.
set -euo pipefail

PACKAGES=(chromium chromium-driver fonts-noto-cjk)
missing=()
for pkg in "${PACKAGES[@]}"; do
    if dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
        echo "install_browser: $pkg already installed"
    else
        missing+=("$pkg")
    fi
done

if [ ${#missing[@]} -eq 0 ]; then
    echo "install_browser: nothing to do"
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install_browser: apt-get not found; install ${missing[*]} with the system's package manager" >&2
    exit 1
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
    else
        echo "install_browser: not root and no sudo; run as root: apt-get install ${missing[*]}" >&2
        exit 1
    fi
fi

echo "install_browser: apt-get update"
$SUDO apt-get update -qq
echo "install_browser: apt-get install ${missing[*]}"
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "install_browser: done ($(command -v chromium || echo 'chromium not on PATH'), $(command -v chromedriver || echo 'chromedriver not on PATH'))"
