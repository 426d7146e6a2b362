#!/usr/bin/env bash
# Start a local PostgreSQL for the search test that shares a study through a database URL (CI runs as root).
# Prints the URL for SEARCH_POSTGRES_URL; prints nothing (and the test skips) where that is not possible.
set -u
[ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 || exit 0
if ! command -v pg_ctlcluster >/dev/null 2>&1; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null) >&2 || exit 0
fi
ver=$(pg_lsclusters -h 2>/dev/null | awk 'NR==1 {print $1}')
if [ -z "$ver" ]; then
  ver=$(ls /usr/lib/postgresql | sort -n | tail -1)
  pg_createcluster "$ver" main >&2 || exit 0
fi
pg_ctlcluster "$ver" main start >&2 2>/dev/null || true
sql() { su postgres -c "psql -qtAc \"$1\""; }
sql "SELECT 1 FROM pg_roles WHERE rolname = 'search'" | grep -q 1 || sql "CREATE ROLE search LOGIN PASSWORD 'search'" >&2
sql "SELECT 1 FROM pg_database WHERE datname = 'search'" | grep -q 1 || su postgres -c "createdb -O search search" >&2
echo "postgresql+psycopg2://search:search@127.0.0.1/search"
