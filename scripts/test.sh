#!/usr/bin/env bash
# Set everything up and run the whole test suite: lint, types, and the tests on SQLite
# and on PostgreSQL. Exits non-zero on any failure.
#
# PostgreSQL: HIRONDELLE_TEST_POSTGRESQL names a server where the tests may create
# databases. Unset, a server on 127.0.0.1:5432 (user postgres) is used if it answers;
# otherwise Debian's postgresql is installed and started. Under CI (CI=true) a missing
# PostgreSQL is a failure, never a silent skip.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$root/scripts/setup.sh"
cd "$root"

# Debian packages the tests use (real clients and reference servers).
apt_install ca-certificates fetchmail swaks libnet-ssleay-perl isync vdirsyncer slapd ldap-utils openssl chromium

pg_answers() {
    .venv/bin/python - "$1" <<'PY' 2>/dev/null
import sys, psycopg
with psycopg.connect(sys.argv[1].replace("postgresql+psycopg://", "postgresql://"), connect_timeout=3) as c:
    c.execute("select 1")
PY
}

find_postgresql() {
    if [ -n "${HIRONDELLE_TEST_POSTGRESQL:-}" ]; then
        pg_answers "$HIRONDELLE_TEST_POSTGRESQL" && return 0
        echo "HIRONDELLE_TEST_POSTGRESQL=$HIRONDELLE_TEST_POSTGRESQL does not answer" >&2
        return 1
    fi
    local candidate="postgresql://postgres@127.0.0.1:5432/postgres"
    if pg_answers "$candidate"; then HIRONDELLE_TEST_POSTGRESQL=$candidate; return 0; fi
    # A cluster that exists but is stopped (the machine's services were not started).
    if command -v pg_lsclusters >/dev/null && [ -n "$(pg_lsclusters -h 2>/dev/null)" ]; then
        say "starting PostgreSQL"
        pg_lsclusters -h | while read -r version cluster _; do
            as_root pg_ctlcluster --skip-systemctl-redirect "$version" "$cluster" start 2>/dev/null || true
        done
        if pg_answers "$candidate"; then HIRONDELLE_TEST_POSTGRESQL=$candidate; return 0; fi
    fi
    # None at all: install Debian's, and let the current user create databases over the
    # local socket (peer authentication).
    apt_install postgresql || return 1
    pg_lsclusters -h | while read -r version cluster _; do
        as_root pg_ctlcluster --skip-systemctl-redirect "$version" "$cluster" start 2>/dev/null || true
    done
    local user; user=$(id -un)
    as_root runuser -u postgres -- psql -qc "DO \$\$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$user') THEN CREATE ROLE \"$user\" SUPERUSER LOGIN; END IF; END\$\$" >/dev/null
    candidate="postgresql:///postgres?host=/var/run/postgresql"
    if pg_answers "$candidate"; then HIRONDELLE_TEST_POSTGRESQL=$candidate; return 0; fi
    return 1
}

if find_postgresql; then
    export HIRONDELLE_TEST_POSTGRESQL
    say "PostgreSQL for the tests: $HIRONDELLE_TEST_POSTGRESQL"
elif [ "${CI:-}" = "true" ]; then
    echo "no PostgreSQL server for the tests; CI runs every test on both backends" >&2
    exit 1
else
    unset HIRONDELLE_TEST_POSTGRESQL
    say "no PostgreSQL found: running the tests on SQLite only"
fi

say "ruff"
lint_paths=(); for path in src tests bench scripts; do [ -e "$path" ] && lint_paths+=("$path"); done
.venv/bin/ruff check "${lint_paths[@]}"
.venv/bin/ruff format --check "${lint_paths[@]}"
say "mypy --strict"
.venv/bin/mypy
say "configuration reference is up to date"
.venv/bin/python scripts/gen_config_docs.py --check
if command -v npm >/dev/null; then
    say "webmail: tsc and vitest"
    (cd webapp && npm run --silent typecheck && npm run --silent test -- --reporter=dot)
elif [ "${CI:-}" = "true" ]; then
    echo "no Node.js (npm): CI runs the webmail's tests" >&2
    exit 1
fi
# The suite is mostly waiting (servers, fsync, real clients): three workers on two cores
# take it from about 35 to 11 minutes. A test file stays on one worker (its fixtures,
# e.g. a node per module, are shared by its tests). PYTEST_WORKERS=0 runs it in-process.
workers=${PYTEST_WORKERS:-3}
say "pytest ($workers workers)"
if [ "$workers" = "0" ]; then
    exec .venv/bin/pytest "$@"
fi
exec .venv/bin/pytest -n "$workers" --dist loadfile "$@"
