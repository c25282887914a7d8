#!/usr/bin/env bash
# tests/services/pg.sh: a throwaway PostgreSQL server for tests.
#   pg.sh start DIR   initdb a cluster in DIR, start it on a free loopback
#                     TCP port, wait until it answers, print its URL
#   pg.sh url DIR     print the URL again
#   pg.sh stop DIR    stop it (the files stay; DIR is the caller's to remove)
# Trust authentication, loopback only, no Unix socket, fsync off: for tests
# only.  PostgreSQL refuses to run as root, so as root the server runs as
# the `postgres` system user (created by the postgresql package); DIR is
# handed to that user.  When that user cannot reach DIR (a private parent
# directory), the cluster lives in a directory of its own under /tmp,
# recorded in DIR/pg.datadir and removed by `stop`.
# Environment: SWB_PG_BIN (the directory of initdb/pg_ctl; default
# /usr/lib/postgresql/15/bin, else the newest installed), SWB_PG_USER.
# stdout carries only the URL; progress and errors go to stderr.
set -euo pipefail

die() { echo "pg.sh: $*" >&2; exit 1; }

cmd=${1:-}; dir=${2:-}
[[ -n $cmd && -n $dir ]] || die "usage: pg.sh start|stop|url DIR"

find_bin() {
    local b
    if [[ -n ${SWB_PG_BIN:-} ]]; then
        echo "$SWB_PG_BIN"; return
    fi
    if [[ -x /usr/lib/postgresql/15/bin/initdb ]]; then
        echo /usr/lib/postgresql/15/bin; return
    fi
    b=$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
    [[ -n $b && -x $b/initdb ]] || die "no PostgreSQL server found (apt-get install postgresql)"
    echo "$b"
}

# Runs a command as the server's user, from a directory it can read.
as_pg() {
    if [[ -n $pguser ]]; then
        (cd / && runuser -u "$pguser" -- env LC_ALL=C LANG=C "$@")
    else
        (cd / && env LC_ALL=C LANG=C "$@")
    fi
}

setup_user() {
    pguser=
    if [[ $(id -u) == 0 ]]; then
        pguser=${SWB_PG_USER:-postgres}
        if ! id -u "$pguser" >/dev/null 2>&1; then
            useradd --system --no-create-home --shell /usr/sbin/nologin \
                "$pguser" >/dev/null 2>&1 || id -u "$pguser" >/dev/null 2>&1 ||
                die "cannot create user $pguser"
        fi
        command -v runuser >/dev/null || die "runuser not found (util-linux)"
    fi
}

datadir() {
    if [[ -f $dir/pg.datadir ]]; then
        cat "$dir/pg.datadir"
    else
        echo "$dir/pgdata"
    fi
}

port_free() {
    local port=$1
    if command -v ss >/dev/null; then
        [[ -z $(ss -Htln "sport = :$port" 2>/dev/null) ]]
    else
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            return 1
        fi
    fi
}

running() {
    local data; data=$(datadir)
    [[ -f $data/postmaster.pid ]] && as_pg "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1
}

url() {
    [[ -f $dir/pg.port ]] || die "no server in $dir"
    echo "postgresql://postgres@127.0.0.1:$(cat "$dir/pg.port")/postgres"
}

start() {
    local data port ok=0 got
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    if [[ -f $dir/pg.port ]] && running; then
        url; return
    fi
    data=$dir/pgdata
    rm -f "$dir/pg.datadir"
    if [[ -n $pguser ]]; then
        chown "$pguser" "$dir"
        chmod 0700 "$dir"
        if ! as_pg test -w "$dir"; then
            # A parent of DIR is closed to the server's user.
            data=$(mktemp -d /tmp/swb-pg.XXXXXX)
            chown "$pguser" "$data"
            echo "$data" >"$dir/pg.datadir"
        fi
    fi
    if [[ ! -f $data/PG_VERSION ]]; then
        rm -rf "$data"
        as_pg "$bin/initdb" -D "$data" -U postgres -A trust -E UTF8 \
            --locale=C --no-sync >"$dir/initdb.log" 2>&1 ||
            { cat "$dir/initdb.log" >&2; die "initdb failed"; }
    fi
    cat >"$data/pg_hba.conf" <<EOF
# throwaway test cluster: trust, loopback only
local all all trust
host  all all 127.0.0.1/32 trust
EOF
    [[ -z $pguser ]] || chown "$pguser" "$data/pg_hba.conf"
    for _ in $(seq 1 20); do
        port=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
        port_free "$port" || continue
        rm -f "$data/server.log"
        if as_pg "$bin/pg_ctl" -D "$data" -l "$data/server.log" -w -t 60 \
            -o "-c listen_addresses=127.0.0.1 -p $port -c unix_socket_directories= -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=40 -c shared_buffers=16MB" \
            start >"$dir/pg_ctl.log" 2>&1; then
            ok=1; break
        fi
        # Lost a race for the port?  Try another; anything else is fatal.
        grep -qi "address already in use\|could not bind\|could not create any TCP" \
            "$data/server.log" 2>/dev/null || break
    done
    if ((ok == 0)); then
        cat "$dir/pg_ctl.log" >&2 || true
        tail -n 20 "$data/server.log" >&2 2>/dev/null || true
        die "server did not start"
    fi
    echo "$port" >"$dir/pg.port"
    # It answers, and it is ours (not another server on that port).
    for _ in $(seq 1 60); do
        got=$(as_pg "$bin/psql" -X -q -At -h 127.0.0.1 -p "$port" -U postgres \
            -d postgres -c 'SHOW data_directory' 2>/dev/null || true)
        if [[ -n $got ]]; then
            [[ $got -ef $data ]] || die "port $port answered from $got, not $data"
            url; return
        fi
        sleep 0.5
    done
    die "server on port $port does not answer"
}

stop() {
    local data
    [[ -d $dir ]] || return 0
    dir=$(cd "$dir" && pwd)
    data=$(datadir)
    if [[ -f $data/postmaster.pid ]]; then
        as_pg "$bin/pg_ctl" -D "$data" -m fast -w -t 60 stop >/dev/null 2>&1 ||
            as_pg "$bin/pg_ctl" -D "$data" -m immediate -w -t 30 stop >/dev/null 2>&1 ||
            die "could not stop the server in $data"
    fi
    if [[ -f $dir/pg.datadir ]]; then
        rm -rf "$data"
        rm -f "$dir/pg.datadir"
    fi
}

bin=$(find_bin)
setup_user
case $cmd in
start) start ;;
stop)  stop ;;
url)   dir=$(cd "$dir" 2>/dev/null && pwd) || die "no server in $2"; url ;;
*)     die "usage: pg.sh start|stop|url DIR" ;;
esac
