#!/usr/bin/env bash
# tools/install.sh: what `make install` and `make deb` put where.
#   tools/install.sh hub|agent|all
# Environment (from the Makefile): BUILD (binaries), DESTDIR, PREFIX,
# SYSCONFDIR, UNITDIR.  The sample configurations are written only when
# none is there yet (an operator's edits are never replaced).
set -euo pipefail
what=${1:-all}
BUILD=${BUILD:-build}
PREFIX=${PREFIX:-/usr/local}
SYSCONFDIR=${SYSCONFDIR:-/etc}
UNITDIR=${UNITDIR:-/lib/systemd/system}
DESTDIR=${DESTDIR:-}
SBINDIR=${SBINDIR:-$PREFIX/sbin}
BINDIR=${BINDIR:-$PREFIX/bin}
DOCDIR=${DOCDIR:-$PREFIX/share/doc/switchboard}
top=$(cd "$(dirname "$0")/.." && pwd)

unit() {    # unit NAME: the unit with this install's paths
    install -d "$DESTDIR$UNITDIR"
    sed -e "s|@SBINDIR@|$SBINDIR|g" -e "s|@BINDIR@|$BINDIR|g" \
        -e "s|@SYSCONFDIR@|$SYSCONFDIR|g" "$top/etc/systemd/$1.service.in" \
        >"$DESTDIR$UNITDIR/$1.service"
    chmod 0644 "$DESTDIR$UNITDIR/$1.service"
}

conf() {    # conf SRC DST MODE SED...: a sample config, if none exists
    local src=$1 dst=$2 mode=$3; shift 3
    install -d "$(dirname "$DESTDIR$dst")"
    if [ -e "$DESTDIR$dst" ]; then
        echo "install: keeping $DESTDIR$dst" >&2
        return 0
    fi
    sed "$@" "$top/$src" >"$DESTDIR$dst"
    chmod "$mode" "$DESTDIR$dst"
}

hub() {
    install -d "$DESTDIR$SBINDIR" "$DESTDIR$BINDIR" "$DESTDIR$DOCDIR"
    install -m 0755 "$BUILD/hubd" "$DESTDIR$SBINDIR/hubd"
    install -m 0755 "$BUILD/hubctl" "$DESTDIR$BINDIR/hubctl"
    install -m 0644 "$top/docs/admin-openapi.yaml" "$DESTDIR$DOCDIR/admin-openapi.yaml"
    unit hubd
    # A system install: sockets in /run, the store and ledger key in
    # /var/lib, children as the switchboard user.
    conf etc/hubd.ini "$SYSCONFDIR/switchboard/hubd.ini" 0640 \
        -e 's|^run_dir = .*|run_dir = /run/switchboard|' \
        -e 's|^user = *$|user = switchboard|' \
        -e 's|^url = sqlite:var/hubd.db|url = sqlite:/var/lib/switchboard/hubd.db|' \
        -e 's|^ledger_key = .*|ledger_key = /var/lib/switchboard/ledger.key|'
}

agent() {
    install -d "$DESTDIR$BINDIR"
    install -m 0755 "$BUILD/agentd" "$DESTDIR$BINDIR/agentd"
    unit agentd
    conf etc/agentd.ini "$SYSCONFDIR/switchboard/agentd.ini" 0600 \
        -e 's|^key_file = .*|key_file = /var/lib/switchboard-agent/agent.key|' \
        -e 's|^state_dir = .*|state_dir = /var/lib/switchboard-agent|'
}

case $what in
    hub) hub ;;
    agent) agent ;;
    all) hub; agent ;;
    *) echo "usage: tools/install.sh hub|agent|all" >&2; exit 2 ;;
esac
