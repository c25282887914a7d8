#!/usr/bin/env bash
# tests/integration/store_pg: the billing store's unit cases against a real
# PostgreSQL server (started here in $SWB_TMP by tests/services/pg.sh and
# stopped on exit), after the same cases against SQLite.
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${SWB_BIN:?SWB_BIN must name the build directory}"
: "${SWB_TMP:?SWB_TMP must name a scratch directory}"

bin=$SWB_BIN/tests/test_store
[[ -x $bin ]] || { echo "store_pg: $bin not built" >&2; exit 1; }

pgdir=$SWB_TMP/pg
trap 'bash tests/services/pg.sh stop "$pgdir" || true' EXIT
url=$(bash tests/services/pg.sh start "$pgdir")
echo "store_pg: PostgreSQL at $url"

out=$SWB_TMP/test_store.out
rc=0
SWB_PG_URL=$url TMPDIR=$SWB_TMP "$bin" >"$out" 2>&1 || rc=$?
cat "$out"
((rc == 0)) || exit "$rc"
# The PostgreSQL group really ran (not skipped for want of a URL).
grep -q "SWB_PG_URL not set" "$out" && { echo "store_pg: PostgreSQL cases skipped" >&2; exit 1; }
grep -q "store/postgresql" "$out" || { echo "store_pg: no PostgreSQL group in the output" >&2; exit 1; }
echo "store_pg: ok"
