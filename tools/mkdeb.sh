#!/usr/bin/env bash
# tools/mkdeb.sh OUTDIR: the Debian packages of the release build in
# $BUILD — switchboard-hub (hubd, hubctl, hubd.service, a sample
# /etc/switchboard/hubd.ini, the switchboard system user) and
# switchboard-agent (agentd, agentd.service, a sample
# /etc/switchboard/agentd.ini, the swb-agent system user).  dpkg-deb only:
# no network, no debhelper.
set -euo pipefail
out=${1:?usage: tools/mkdeb.sh OUTDIR}
BUILD=${BUILD:-build}
top=$(cd "$(dirname "$0")/.." && pwd)
arch=$(dpkg --print-architecture)
ver=${VERSION:-$(cd "$top" && git describe --tags --always 2>/dev/null | sed 's/^v//; s/[^A-Za-z0-9.+~]/./g')}
[[ $ver =~ ^[0-9]+\.[0-9] ]] || ver="0.0~git$ver"
libs="libc6, libssl3, libsodium23, libwebsockets17, libev4, libmsgpackc2, libhiredis0.14, libpq5, libsqlite3-0, libcurl4, libinih1, libjansson4"
mkdir -p "$out"
rm -f "$out"/switchboard-*.deb
out=$(cd "$out" && pwd)

stage() {   # stage NAME WHAT: a tree under $out/NAME
    local d=$out/$1
    rm -rf "$d"
    mkdir -p "$d/DEBIAN"
    DESTDIR=$d PREFIX=/usr SBINDIR=/usr/sbin BINDIR=/usr/bin SYSCONFDIR=/etc \
        UNITDIR=/lib/systemd/system DOCDIR=/usr/share/doc/$1 BUILD=$BUILD \
        "$top/tools/install.sh" "$2" >/dev/null
    (cd "$d" && find etc -type f | sed 's|^|/|') >"$d/DEBIAN/conffiles"
}

control() {  # control NAME DESCRIPTION [MORE-DEPENDS]
    cat >"$out/$1/DEBIAN/control" <<CTL
Package: $1
Version: $ver
Architecture: $arch
Maintainer: switchboard operators <root@localhost>
Depends: $libs${3:+, $3}, adduser
Section: net
Priority: optional
Description: $2
CTL
}

# ---- the hub ----
stage switchboard-hub hub
control switchboard-hub "switchboard hub: LLM API gateway (hubd, hubctl)
 hubd serves users' API calls with virtual tokens, routes them to agents
 over pinned tunnels and bills them; hubctl administers it." \
    libwebsockets-evlib-ev
cat >"$out/switchboard-hub/DEBIAN/postinst" <<'SH'
#!/bin/sh
set -e
if [ "$1" = configure ]; then
    getent passwd switchboard >/dev/null || adduser --system --group \
        --home /var/lib/switchboard --no-create-home --quiet switchboard
    install -d -m 0750 -o root -g switchboard /var/lib/switchboard
    chgrp switchboard /etc/switchboard/hubd.ini 2>/dev/null || true
    if [ -d /run/systemd/system ]; then
        systemctl daemon-reload >/dev/null 2>&1 || true
        systemctl enable hubd.service >/dev/null 2>&1 || true
    fi
fi
exit 0
SH
cat >"$out/switchboard-hub/DEBIAN/prerm" <<'SH'
#!/bin/sh
set -e
if [ -d /run/systemd/system ] && [ "$1" = remove ]; then
    systemctl stop hubd.service >/dev/null 2>&1 || true
    systemctl disable hubd.service >/dev/null 2>&1 || true
fi
exit 0
SH
cat >"$out/switchboard-hub/DEBIAN/postrm" <<'SH'
#!/bin/sh
set -e
if [ "$1" = purge ]; then
    rm -rf /var/lib/switchboard
    getent passwd switchboard >/dev/null && deluser --system --quiet switchboard || true
fi
[ -d /run/systemd/system ] && systemctl daemon-reload >/dev/null 2>&1 || true
exit 0
SH

# ---- the agent ----
stage switchboard-agent agent
control switchboard-agent "switchboard agent (agentd)
 agentd serves a switchboard hub's requests with this host's provider
 credentials, which never leave the host; it dials out over a pinned,
 Ed25519-authenticated tunnel."
cat >"$out/switchboard-agent/DEBIAN/postinst" <<'SH'
#!/bin/sh
set -e
if [ "$1" = configure ]; then
    getent passwd swb-agent >/dev/null || adduser --system --group \
        --home /var/lib/switchboard-agent --no-create-home --quiet swb-agent
    install -d -m 0700 -o swb-agent -g swb-agent /var/lib/switchboard-agent
    # It holds provider keys: the agent's user alone reads it.
    chown swb-agent:swb-agent /etc/switchboard/agentd.ini
    chmod 0600 /etc/switchboard/agentd.ini
    if [ -d /run/systemd/system ]; then
        systemctl daemon-reload >/dev/null 2>&1 || true
    fi
fi
exit 0
SH
cat >"$out/switchboard-agent/DEBIAN/prerm" <<'SH'
#!/bin/sh
set -e
if [ -d /run/systemd/system ] && [ "$1" = remove ]; then
    systemctl stop agentd.service >/dev/null 2>&1 || true
fi
exit 0
SH
cat >"$out/switchboard-agent/DEBIAN/postrm" <<'SH'
#!/bin/sh
set -e
if [ "$1" = purge ]; then
    rm -rf /var/lib/switchboard-agent
    getent passwd swb-agent >/dev/null && deluser --system --quiet swb-agent || true
fi
exit 0
SH

for p in switchboard-hub switchboard-agent; do
    chmod 0755 "$out/$p/DEBIAN/postinst" "$out/$p/DEBIAN/prerm" "$out/$p/DEBIAN/postrm"
    dpkg-deb --root-owner-group -Zxz --build "$out/$p" "$out/${p}_${ver}_$arch.deb" >/dev/null
    rm -rf "${out:?}/$p"
    echo "$out/${p}_${ver}_$arch.deb"
done
