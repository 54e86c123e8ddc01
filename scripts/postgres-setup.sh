#!/usr/bin/env bash
# Starts the Debian PostgreSQL cluster on loopback for the tests (scripts/test.sh sources it after
# installing the `postgresql` package) and makes a role that may create databases: each test
# creates a database of its own and drops it. Exports ORION_TEST_POSTGRES_URL, the address of the
# maintenance database the tests connect to first.
set -euo pipefail

ORION_TEST_PG_PORT="${ORION_TEST_PG_PORT:-5432}"
version="$(ls /usr/lib/postgresql | sort -V | tail -1)"
[ -n "$version" ] || { echo "postgres-setup: no PostgreSQL under /usr/lib/postgresql; install the postgresql package" >&2; exit 1; }
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

if ! pg_lsclusters -h 2>/dev/null | awk '{print $1" "$2}' | grep -qx "$version main"; then
  $SUDO pg_createcluster "$version" main -p "$ORION_TEST_PG_PORT" -- --auth-local=peer --auth-host=scram-sha-256 >/dev/null
fi
port="$(pg_lsclusters -h | awk -v v="$version" '$1 == v && $2 == "main" {print $3}')"
if ! pg_lsclusters -h | awk -v v="$version" '$1 == v && $2 == "main" {print $4}' | grep -q online; then
  $SUDO pg_ctlcluster "$version" main start -- -o "-c listen_addresses=127.0.0.1"
fi
for _ in $(seq 1 100); do
  pg_isready -q -h 127.0.0.1 -p "$port" && break
  sleep 0.2
done
pg_isready -q -h 127.0.0.1 -p "$port" || { echo "postgres-setup: PostgreSQL $version did not start on 127.0.0.1:$port" >&2; exit 1; }

# The tests' role: a password login on loopback, allowed to create (and drop) its databases.
$SUDO runuser -u postgres -- psql -q -p "$port" -v ON_ERROR_STOP=1 <<'SQL'
DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'orion_test') THEN
    CREATE ROLE orion_test LOGIN CREATEDB PASSWORD 'orion_test';
  END IF;
END
$$;
SQL
export ORION_TEST_POSTGRES_URL="postgres://orion_test:orion_test@127.0.0.1:$port/postgres"
echo "postgres-setup: PostgreSQL $version on 127.0.0.1:$port" >&2
