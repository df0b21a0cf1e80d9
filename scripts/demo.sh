#!/usr/bin/env bash
# Set everything up and start the demo: SQLite, a self-signed certificate, the domain
# example.test with the account demo@example.test, every service on unprivileged ports.
# It prints the URLs and the password; Ctrl+C stops it and removes its data.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$root/scripts/setup.sh"
exec "$root/.venv/bin/hirondelle" demo "$@"
