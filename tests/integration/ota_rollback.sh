# The rollback paths of agentd's over-the-air updates (agent/ag_update)
# that ota.sh does not take, with a short [update] deadline (3 s):
#  1. a signed newer release that starts but never reaches the hub (a
#     script that stays alive, asleep): the watchdog kills it at the
#     deadline, puts agentd.old back and re-executes it; the old version
#     reconnects and refuses that release when it is announced again;
#  2. `agentd update -c FILE`, which only installs (the new binary runs at
#     the next start, on probation by itself):
#     a. a good newer build: the next start reconnects reporting the new
#        version and clears the marker;
#     b. a newer build that cannot connect (a real agentd whose tunnel
#        subprotocol the hub does not speak): it rolls itself back at the
#        deadline, re-executes the previous binary, which reconnects.
source "$(dirname "$0")/lib.sh"
start_release_hub
OS=linux
ARCH=$(uname -m)
DEADLINE_MS=3000
MARGIN_MS=2500		# the watchdog polls every second at most; ASan start-up
PK=$(ctl release key)

mkdir -p "$SWB_TMP/bin"
cp "$AGENTD" "$SWB_TMP/bin/agentd"
cp "$AGENTD" "$SWB_TMP/orig"
CUR=$(strings "$SWB_TMP/orig" | sed -n 's/^swb-agent-version=//p' | head -1)
[ -n "$CUR" ] || fail "no version stamp in agentd"
MAJ=${CUR%%.*}
HANG=$((MAJ + 10)).0.0		# starts, sleeps, never connects
NEW=$((MAJ + 20)).0.0		# a good newer build
NOCONN=$((MAJ + 30)).0.0	# a real agentd that cannot connect

patch_build "$SWB_TMP/orig" "$SWB_TMP/newer" "$NEW"
patch_build "$SWB_TMP/orig" "$SWB_TMP/noconn" "$NOCONN" swb-tunnel swb-tunnex
[ "$(strings "$SWB_TMP/noconn" | grep '^swb-agent-version=')" = "swb-agent-version=$NOCONN" ] ||
    fail "patching the stamp failed"
cat >"$SWB_TMP/hang" <<SH
#!/bin/sh
echo "hanging build \$\$ starting" >&2
echo \$\$ >"$SWB_TMP/hang.pid"
exec sleep 600
SH
chmod 755 "$SWB_TMP/hang"

new_agent upd
ST=$SWB_TMP/agent-$AGENT_ID
INI=$SWB_TMP/agentd.ini
ini() {	# ini yes|no: the agent's config with [update] auto
    write_agent_ini "$INI" "$AGENT_ID" "$AGENT_KEY" "" "[update]
auto = $1
deadline = ${DEADLINE_MS}ms"
    sed -i "/^\[test\]/a release_key = $PK" "$INI"
}
LOG=$SWB_TMP/agent.log
logged() { grep -qF -- "$1" "$LOG"; }
version() { ctl --json agents | jq -r --argjson id "$AGENT_ID" '.agents[] | select(.id==$id) | .version'; }
is_version() { [ "$(version)" = "$1" ]; }
publish() { ctl release publish "$SWB_TMP/$1" --version "$2" --os "$OS" --arch "$ARCH" "${@:3}" >/dev/null; }
# ms_of LINE: the milliseconds of day of a log line's timestamp.
ms_of() {
    local t=${1:11:12}	# HH:MM:SS.mmm
    echo $(( (10#${t:0:2} * 3600 + 10#${t:3:2} * 60 + 10#${t:6:2}) * 1000 + 10#${t:9:3} ))
}
# within A B: B came DEADLINE_MS to DEADLINE_MS + MARGIN_MS after A.
within() {
    local d=$(( $(ms_of "$2") - $(ms_of "$1") ))
    ((d < 0)) && d=$((d + 86400000))
    echo "    ${d} ms (deadline ${DEADLINE_MS} ms)"
    ((d >= DEADLINE_MS - 50 && d <= DEADLINE_MS + MARGIN_MS)) ||
        fail "$3: ${d} ms, not within [$DEADLINE_MS, $((DEADLINE_MS + MARGIN_MS))] ms"
}
stop_agent() {
    kill -TERM "$1"
    wait_until 10 eval "! kill -0 $1" || fail "agent $1 did not stop"
}

note "1. a signed newer release that never reaches the hub is killed at the deadline and rolled back"
ini yes
"$SWB_TMP/bin/agentd" -c "$INI" >"$LOG" 2>&1 &
AG_PID=$!
SWB_CLEANUP+=("kill $AG_PID")
wait_until 10 agent_online "$AGENT_ID" || fail "agent not online"
wait_until 5 is_version "$CUR" || fail "agent reports '$(version)', not $CUR"
publish hang "$HANG"
wait_until 20 logged "hanging build" || fail "the hanging build never ran (was it installed?)"
HPID=$(cat "$SWB_TMP/hang.pid")
SWB_CLEANUP+=("kill $HPID")
[ "$HPID" = "$AG_PID" ] || fail "the new build is not the agent's pid ($HPID, not $AG_PID): no exec"
# It inherited the watchdog's pipe and nothing of the old agentd's: no
# tunnel or page socket, no ledger handle.
fds=$(ls -l "/proc/$HPID/fd")
grep -E 'socket:|ledger|eventfd|urandom' <<<"$fds" && fail "fds leaked into the new binary: $fds"
UFD=$(tr '\0' '\n' <"/proc/$HPID/environ" | sed -n 's/^SWB_UPDATE_FD=\([0-9]*\):[0-9]*$/\1/p')
[ -n "$UFD" ] && [[ $(readlink "/proc/$HPID/fd/$UFD") == pipe:* ]] ||
    fail "SWB_UPDATE_FD '$UFD' is not the watchdog's pipe: $fds"
wait_until $((DEADLINE_MS / 1000 + 10)) logged "version $HANG was not online with the hub within the [update] deadline: rolled back to $CUR" ||
    fail "the hanging release was not rolled back"
REEXEC=$(grep -F "re-executing $SWB_TMP/bin/agentd ($HANG)" "$LOG" | tail -1)
[ -n "$REEXEC" ] || fail "no re-exec line"
WD=$(sed -n 's/.*watchdog pid \([0-9]*\)$/\1/p' <<<"$REEXEC")
ROLL=$(grep -F "version $HANG was not online with the hub within the [update] deadline" "$LOG" | tail -1)
NPID=$(sed -n 's/.*(pid \([0-9]*\) re-executes it).*/\1/p' <<<"$ROLL")
SWB_CLEANUP+=("kill $NPID")
[ -n "$WD" ] && [ "$NPID" = "$WD" ] || fail "the watchdog ($WD) is not what re-executes the old binary ($NPID)"
grep -qF ":$WD] " <<<"$ROLL" || fail "the rollback was not logged by the watchdog: $ROLL"
within "$REEXEC" "$ROLL" "re-exec to rollback"
wait_until 5 eval "! kill -0 $HPID" || fail "the hanging build ($HPID) is still alive"
cmp -s "$SWB_TMP/bin/agentd" "$SWB_TMP/orig" || fail "agentd is not the old binary again"
[ ! -e "$SWB_TMP/bin/agentd.old" ] || fail "agentd.old is still there (not moved back)"
[ ! -e "$SWB_TMP/bin/agentd.new" ] || fail "agentd.new left behind"
[ "$(cat "$ST/update.failed")" = "$HANG" ] || fail "update.failed: '$(cat "$ST/update.failed" 2>/dev/null)'"
[ ! -e "$ST/update.pending" ] || fail "the marker was left"
wait_until 10 agent_online "$AGENT_ID" || fail "the old agent did not reconnect"
wait_until 10 is_version "$CUR" || fail "after the rollback the agent reports '$(version)'"
wait_until 10 logged "version $HANG failed to come online here before" ||
    fail "the old agent did not refuse the failed version at reconnect"
n=$(grep -c "failed to come online here before" "$LOG")
ctl release announce "$OS" "$ARCH" >/dev/null
wait_until 10 eval '[ "$(grep -c "failed to come online here before" "$LOG")" -gt '"$n"' ]' ||
    fail "an announcement of the failed version was not refused"
[ "$(grep -c "re-executing" "$LOG")" = 1 ] || fail "the failed version was installed again"
cmp -s "$SWB_TMP/bin/agentd" "$SWB_TMP/orig" || fail "the binary changed after the refusal"
kill -0 "$NPID" || fail "the rolled-back agent died"
stop_agent "$NPID"

note "2. agentd update -c FILE installs a newer build; it runs at the next start"
ini no
publish newer "$NEW" --no-announce
rc=0; out=$("$SWB_TMP/bin/agentd" update -c "$INI" 2>"$SWB_TMP/update.log") || rc=$?
[ "$rc" = 0 ] || { cat "$SWB_TMP/update.log"; fail "agentd update exited $rc"; }
[ "$out" = "installed agentd $NEW; restart agentd to run it" ] || fail "agentd update said '$out'"
cmp -s "$SWB_TMP/bin/agentd" "$SWB_TMP/newer" || fail "agentd is not the new build"
cmp -s "$SWB_TMP/bin/agentd.old" "$SWB_TMP/orig" || fail "agentd.old is not the old build"
[ "$(cat "$ST/update.pending")" = "$CUR $NEW" ] || fail "marker: '$(cat "$ST/update.pending" 2>/dev/null)'"

note "2a. the next start reports the new version and clears the marker"
"$SWB_TMP/bin/agentd" -c "$INI" >"$LOG" 2>&1 &
AG_PID=$!
SWB_CLEANUP+=("kill $AG_PID")
wait_until 10 logged "version $NEW on probation" || fail "the new build is not on probation"
wait_until 10 is_version "$NEW" || fail "agent reports '$(version)', not $NEW"
wait_until 5 logged "update: version $NEW confirmed: online with the hub" || fail "no confirmation"
[ ! -e "$ST/update.pending" ] || fail "the marker was left"
sleep $((DEADLINE_MS / 1000 + 1))
kill -0 "$AG_PID" || fail "the new build went away"
is_version "$NEW" || fail "agent reports '$(version)' after the deadline"
logged "rolled back" && fail "the good update was rolled back"
cmp -s "$SWB_TMP/bin/agentd" "$SWB_TMP/newer" || fail "agentd is not the new build after the deadline"
stop_agent "$AG_PID"
rc=0; out=$("$SWB_TMP/bin/agentd" update -c "$INI" 2>/dev/null) || rc=$?
[ "$rc" = 0 ] && [ "$out" = "agentd $NEW is up to date" ] || fail "agentd update once up to date: $rc '$out'"

note "2b. a build installed by agentd update that cannot connect rolls itself back"
publish noconn "$NOCONN" --no-announce
"$SWB_TMP/bin/agentd" update -c "$INI" >/dev/null 2>>"$SWB_TMP/update.log" || fail "agentd update exited $?"
cmp -s "$SWB_TMP/bin/agentd" "$SWB_TMP/noconn" || fail "agentd is not the no-connect build"
cmp -s "$SWB_TMP/bin/agentd.old" "$SWB_TMP/newer" || fail "agentd.old is not the previous build"
[ "$(cat "$ST/update.pending")" = "$NEW $NOCONN" ] || fail "marker: '$(cat "$ST/update.pending" 2>/dev/null)'"
# Not over a build that has not been online yet: agentd.old is the one
# known to work and must stay.
NEWER2=$((MAJ + 40)).0.0
publish newer "$NEWER2" --no-announce
rc=0; out=$("$SWB_TMP/bin/agentd" update -c "$INI" 2>&1) || rc=$?
[ "$rc" = 1 ] || fail "agentd update over an unconfirmed build exited $rc: $out"
grep -qF "version $NOCONN installed earlier has not been online with the hub yet" <<<"$out" ||
    fail "agentd update over an unconfirmed build: $out"
grep -qF "on probation" <<<"$out" && fail "agentd update put itself on probation: $out"
cmp -s "$SWB_TMP/bin/agentd" "$SWB_TMP/noconn" || fail "the unconfirmed build was replaced"
cmp -s "$SWB_TMP/bin/agentd.old" "$SWB_TMP/newer" || fail "agentd.old is no longer the build known to work"
[ "$(cat "$ST/update.pending")" = "$NEW $NOCONN" ] || fail "marker: '$(cat "$ST/update.pending" 2>/dev/null)'"
publish noconn "$NOCONN" --no-announce
"$SWB_TMP/bin/agentd" -c "$INI" >"$LOG" 2>&1 &
AG_PID=$!
SWB_CLEANUP+=("kill $AG_PID")
wait_until 10 logged "version $NOCONN on probation" || fail "the no-connect build is not on probation"
wait_until $((DEADLINE_MS / 1000 + 10)) logged "version $NOCONN was not online with the hub in time: rolled back to $NEW (pid $AG_PID re-executes it)" ||
    fail "the no-connect build was not rolled back"
PROB=$(grep -F "version $NOCONN on probation" "$LOG" | tail -1)
LATE=$(grep -F "version $NOCONN was not online with the hub within $DEADLINE_MS ms: rolling back" "$LOG" | tail -1)
[ -n "$LATE" ] || fail "no deadline line"
within "$PROB" "$LATE" "probation to rollback"
cmp -s "$SWB_TMP/bin/agentd" "$SWB_TMP/newer" || fail "agentd is not the previous build again"
[ ! -e "$SWB_TMP/bin/agentd.old" ] || fail "agentd.old is still there"
[ "$(cat "$ST/update.failed")" = "$NOCONN" ] || fail "update.failed: '$(cat "$ST/update.failed" 2>/dev/null)'"
[ ! -e "$ST/update.pending" ] || fail "the marker was left"
wait_until 10 is_version "$NEW" || fail "after the rollback the agent reports '$(version)'"
kill -0 "$AG_PID" || fail "the rollback did not keep the pid (exec)"
wait_until 10 logged "agentd $NEW (" || fail "the previous build did not start"
out=$("$SWB_TMP/bin/agentd" update -c "$INI" 2>&1) && fail "agentd update installed the failed version again: $out"
grep -qF "version $NOCONN failed to come online here before" <<<"$out" || fail "agentd update: $out"
cmp -s "$SWB_TMP/bin/agentd" "$SWB_TMP/newer" || fail "the binary changed after the refusal"
stop_agent "$AG_PID"
echo "ota_rollback: ok"
