# make deb builds switchboard-hub and switchboard-agent; they install on
# this machine with dpkg -i, put the binaries, units and sample configs
# where the README says, create the system users, and the installed
# binaries pass -t on the installed configs (hubd -t, agentd -t; hubctl
# answers --help); the units pass systemd-analyze verify; then both
# packages are purged and leave nothing behind.
source "$(dirname "$0")/lib.sh"
top=$(cd "$(dirname "$0")/../.." && pwd)
[ "$(id -u)" = 0 ] || fail "installing packages needs root"
for p in switchboard-hub switchboard-agent; do
    dpkg-query -W "$p" >/dev/null 2>&1 && fail "$p is installed already; remove it first"
done
purge() { dpkg --purge switchboard-hub switchboard-agent >/dev/null 2>&1 || true; }
SWB_CLEANUP+=("purge")

note "make deb"
make_certs "$SWB_TMP/certs"
pin=$(spki_pin "$SWB_TMP/certs/hub.pem")
make -C "$top" --no-print-directory deb HUB_PINS="$pin" >"$SWB_TMP/deb.log" 2>&1 || { tail -20 "$SWB_TMP/deb.log"; fail "make deb"; }
hub_deb=$(ls "$top"/build/deb/switchboard-hub_*.deb | tail -1)
agent_deb=$(ls "$top"/build/deb/switchboard-agent_*.deb | tail -1)
dpkg-deb -f "$hub_deb" Version | grep -q '^[0-9]' || fail "version"
dpkg-deb -c "$hub_deb" >"$SWB_TMP/hub.list"
grep -q ' ./usr/sbin/hubd$' "$SWB_TMP/hub.list" || fail "no hubd in $hub_deb"
grep -q ' ./lib/systemd/system/hubd.service$' "$SWB_TMP/hub.list" || fail "no unit"

note "dpkg -i"
dpkg -i "$hub_deb" "$agent_deb" >"$SWB_TMP/dpkg.log" 2>&1 || { cat "$SWB_TMP/dpkg.log"; fail "dpkg -i"; }
for f in /usr/sbin/hubd /usr/bin/hubctl /usr/bin/agentd; do [ -x "$f" ] || fail "$f missing"; done
for f in /lib/systemd/system/hubd.service /lib/systemd/system/agentd.service \
         /etc/switchboard/hubd.ini /etc/switchboard/agentd.ini \
         /usr/share/doc/switchboard-hub/admin-openapi.yaml; do
    [ -f "$f" ] || fail "$f missing"
done
getent passwd switchboard >/dev/null || fail "no switchboard user"
getent passwd swb-agent >/dev/null || fail "no swb-agent user"
[ "$(stat -c '%U %a' /etc/switchboard/agentd.ini)" = "swb-agent 600" ] || fail "agentd.ini: $(stat -c '%U %a' /etc/switchboard/agentd.ini)"
[ "$(stat -c '%G' /etc/switchboard/hubd.ini)" = switchboard ] || fail "hubd.ini group"
grep -q '^Type=notify$' /lib/systemd/system/hubd.service || fail "hubd.service is not Type=notify"
grep -q '^ExecStart=/usr/sbin/hubd -c /etc/switchboard/hubd.ini$' /lib/systemd/system/hubd.service || fail "ExecStart"
grep -q '^user = switchboard$' /etc/switchboard/hubd.ini || fail "the packaged hubd.ini drops to switchboard"
dpkg-query -W -f='${Conffiles}\n' switchboard-hub | grep -q /etc/switchboard/hubd.ini || fail "hubd.ini is not a conffile"

note "the installed binaries pass -t"
/usr/sbin/hubd -t -c /etc/switchboard/hubd.ini | grep -qx 'configuration OK' || fail "hubd -t"
/usr/bin/agentd -t -c /etc/switchboard/agentd.ini | grep -qx 'configuration OK' || fail "agentd -t"
/usr/bin/hubctl --help >"$SWB_TMP/help" 2>&1 || true
grep -q 'admin-key' "$SWB_TMP/help" || fail "hubctl --help"
if command -v systemd-analyze >/dev/null; then
    systemd-analyze verify /lib/systemd/system/hubd.service /lib/systemd/system/agentd.service \
        >"$SWB_TMP/verify.log" 2>&1 || true
    grep -E 'hubd.service|agentd.service' "$SWB_TMP/verify.log" | grep -v 'Command .* is not executable' |
        grep -qi 'unknown\|invalid\|failed' && fail "systemd-analyze: $(cat "$SWB_TMP/verify.log")"
fi

note "dpkg --purge leaves nothing"
dpkg --purge switchboard-hub switchboard-agent >"$SWB_TMP/purge.log" 2>&1 || { cat "$SWB_TMP/purge.log"; fail "purge"; }
for f in /usr/sbin/hubd /usr/bin/hubctl /usr/bin/agentd /lib/systemd/system/hubd.service /etc/switchboard/hubd.ini; do
    [ -e "$f" ] && fail "$f left behind"
done
getent passwd switchboard >/dev/null && fail "switchboard user left behind"
echo "packages: ok"
