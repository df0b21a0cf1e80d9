#!/usr/bin/env bash
# Set up everything Hirondelle needs to run and to be tested, on a fresh Debian machine
# with Python 3.11 (and Node 20 for the webmail, when it lands). Idempotent: a second
# run only checks. Sourced by demo.sh and test.sh; can be run alone.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else return 1; fi
}

apt_updated=""
apt_install() {
    # Install Debian packages that are missing; quiet when everything is there.
    local missing=()
    for package in "$@"; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    command -v apt-get >/dev/null || { echo "missing Debian packages: ${missing[*]} (no apt-get here)" >&2; return 1; }
    say "installing Debian packages: ${missing[*]}"
    if [ -z "$apt_updated" ]; then as_root apt-get update -qq; apt_updated=1; fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

python=${PYTHON:-python3}
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "Hirondelle needs Python 3.11 or newer ($python is $("$python" --version 2>&1))" >&2
    exit 1
fi

if [ ! -x .venv/bin/python ]; then
    if ! "$python" -c 'import ensurepip, venv' 2>/dev/null; then
        apt_install python3-venv
    fi
    say "creating .venv"
    "$python" -m venv .venv
fi

pip_install() {
    # pip's chatter about this machine's index locations is dropped; its errors and its
    # exit status are kept.
    local log status=0
    log=$(mktemp)
    .venv/bin/python -m pip install --quiet --disable-pip-version-check "$@" >"$log" 2>&1 || status=$?
    grep -vE "is ignored: it is neither a file nor a directory" "$log" >&2 || true
    rm -f "$log"
    return "$status"
}

stamp=.venv/.hirondelle-installed
if [ ! -f "$stamp" ] || [ requirements.lock -nt "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    say "installing Python dependencies (requirements.lock)"
    pip_install --upgrade pip
    pip_install -r requirements.lock
    pip_install --no-deps -e .
    touch "$stamp"
fi

# The webmail (webapp/): built when Node is here; without it "/" shows the status page.
if command -v npm >/dev/null; then
    webapp_stamp=webapp/node_modules/.hirondelle-installed
    if [ ! -f "$webapp_stamp" ] || [ webapp/package-lock.json -nt "$webapp_stamp" ]; then
        say "installing the webmail's dependencies (npm ci)"
        (cd webapp && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
        touch "$webapp_stamp"
    fi
    say "building the webmail"
    (cd webapp && npm run --silent build -- --logLevel error >/dev/null)
else
    say "no Node.js (npm): the webmail is not built"
fi
