# Signed over-the-air updates of agentd (agent/ag_update, tunnel/tun_files,
# hubctl release): a running agent (a copy of the test build, so it may
# replace itself) refuses an older release, a tampered binary and a
# manifest whose signature does not verify, each with a log line, and keeps
# running; a signed release that cannot start (a script that exits 1) is
# installed, fails, and is rolled back by the watchdog: the old binary
# reconnects and that version is not tried again; a signed newer build (the
# same binary with another version stamp, which is what it then reports)
# is installed, re-executed and reconnects reporting the new version.
source "$(dirname "$0")/lib.sh"
start_release_hub
TUN=$(status_json | jq -r .listen.tunnel)
OS=linux
ARCH=$(uname -m)
REL=$SWB_TMP/releases

note "hubctl release key creates the release key and prints its public half"
PK=$(ctl release key)
[ "$(printf '%s' "$PK" | base64 -d | wc -c)" = 32 ] || fail "release key: '$PK'"
[ "$(stat -c %a "$SWB_TMP/release.key")" = 600 ] || fail "release key file mode"
[ "$(ctl release key)" = "$PK" ] || fail "a second call made another key"
cmp -s "$SWB_TMP/release.key" "$SWB_TMP/ledger.key" && fail "the release key is the ledger key"

# The agent runs from a copy it may replace.
mkdir -p "$SWB_TMP/bin"
cp "$AGENTD" "$SWB_TMP/bin/agentd"
cp "$AGENTD" "$SWB_TMP/orig"
CUR=$(strings "$SWB_TMP/orig" | sed -n 's/^swb-agent-version=//p' | head -1)
[ -n "$CUR" ] || fail "no version stamp in agentd"
NEW=$(( ${CUR%%.*} + 1 )).0.0
# The newer build: the same program with its version stamp changed (so the
# version it reports comes from the running file).
patch_build "$SWB_TMP/orig" "$SWB_TMP/newer" "$NEW"
stamps=$(strings "$SWB_TMP/newer" | grep '^swb-agent-version=')
[ "$stamps" = "swb-agent-version=$NEW" ] || fail "patching the stamp failed: $stamps"

new_agent upd
write_agent_ini "$SWB_TMP/agentd.ini" "$AGENT_ID" "$AGENT_KEY" "" "[update]
auto = yes
deadline = 15s"
sed -i "/^\[test\]/a release_key = $PK" "$SWB_TMP/agentd.ini"
"$SWB_TMP/bin/agentd" -c "$SWB_TMP/agentd.ini" >"$SWB_TMP/agent.log" 2>&1 &
AG_PID=$!
SWB_CLEANUP+=("kill $AG_PID")
wait_until 10 agent_online "$AGENT_ID" || fail "agent not online"
version() { ctl --json agents | jq -r --argjson id "$AGENT_ID" '.agents[] | select(.id==$id) | .version'; }
is_version() { [ "$(version)" = "$1" ]; }
wait_until 5 is_version "$CUR" || fail "agent reports '$(version)', not $CUR"
logged() { grep -qF -- "$1" "$SWB_TMP/agent.log"; }
unchanged() {
    cmp -s "$SWB_TMP/bin/agentd" "$SWB_TMP/orig" || fail "$1: the binary changed"
    [ ! -e "$SWB_TMP/bin/agentd.new" ] || fail "$1: agentd.new left behind"
    kill -0 "$AG_PID" || fail "$1: the agent died"
    is_version "$CUR" || fail "$1: agent reports '$(version)'"
}

note "the tunnel serves the manifest and the binary; nothing outside the release dir"
U="https://localhost:${TUN##*:}"
C=(curl -s --cacert "$SWB_TMP/certs/ca.pem" --resolve "localhost:${TUN##*:}:127.0.0.1")
code=$("${C[@]}" -o /dev/null -w '%{http_code}' "$U/files/agent/latest?os=$OS&arch=$ARCH")
[ "$code" = 404 ] || fail "latest before any publish: $code"
code=$("${C[@]}" -o /dev/null -w '%{http_code}' "$U/files/agent/latest")
[ "$code" = 400 ] || fail "latest without os/arch: $code"
code=$("${C[@]}" -o /dev/null -w '%{http_code}' --path-as-is "$U/files/agent/../release.key")
[ "$code" = 404 ] || [ "$code" = 400 ] || [ "$code" = 403 ] || fail "path traversal answered $code"

note "an older release is refused"
ctl release publish "$SWB_TMP/orig" --version 0 --os "$OS" --arch "$ARCH" >/dev/null
m=$("${C[@]}" "$U/files/agent/latest?os=$OS&arch=$ARCH")
[ "$(jq -r .version <<<"$m")" = 0 ] || fail "manifest: $m"
"${C[@]}" -o "$SWB_TMP/dl" "$U$(jq -r .path <<<"$m")"
cmp -s "$SWB_TMP/dl" "$SWB_TMP/orig" || fail "the served binary differs"
wait_until 10 logged "version 0 is not newer than the running $CUR" || fail "older release not refused"
unchanged "older release"

note "a tampered binary is refused"
ctl release publish "$SWB_TMP/newer" --version "$NEW" --os "$OS" --arch "$ARCH" --no-announce >/dev/null
printf 'X' | dd of="$REL/agentd-$NEW-$OS-$ARCH" bs=1 seek=4096 conv=notrunc status=none
ctl release announce "$OS" "$ARCH" >/dev/null
wait_until 20 logged "$NEW: SHA-256 mismatch" || fail "tampered binary not refused"
unchanged "tampered binary"

note "a manifest whose signature does not verify is refused"
ctl release publish "$SWB_TMP/newer" --version "$NEW" --os "$OS" --arch "$ARCH" --no-announce >/dev/null
sed -i "s/\"version\":\"$NEW\"/\"version\":\"$NEW.1\"/" "$REL/agent-$OS-$ARCH.json"
grep -q "\"$NEW.1\"" "$REL/agent-$OS-$ARCH.json" || fail "editing the manifest failed"
ctl release announce "$OS" "$ARCH" >/dev/null
wait_until 10 logged "bad signature on the manifest of $NEW.1" || fail "bad signature not refused"
unchanged "bad signature"

note "a signed release that cannot start is rolled back"
BAD=$(( ${CUR%%.*} + 50 )).0.0
printf '#!/bin/sh\necho "broken build starting" >&2\nexit 1\n' >"$SWB_TMP/broken"
ctl release publish "$SWB_TMP/broken" --version "$BAD" --os "$OS" --arch "$ARCH" >/dev/null
wait_until 20 logged "version $BAD exited before reaching the hub: rolled back to $CUR" ||
    fail "the broken release was not rolled back"
logged "broken build starting" || fail "the broken build never ran (was it installed?)"
NPID=$(sed -n "s/.*version $BAD exited before .*(pid \([0-9]*\) re-executes it).*/\1/p" "$SWB_TMP/agent.log" | tail -1)
[ -n "$NPID" ] || fail "no pid of the rolled-back agent"
SWB_CLEANUP+=("kill $NPID")
AG_PID=$NPID
cmp -s "$SWB_TMP/bin/agentd" "$SWB_TMP/orig" || fail "agentd is not the old binary again"
wait_until 15 logged "version $BAD failed to come online here before" ||
    fail "the old agent did not refuse the failed version again"
wait_until 10 is_version "$CUR" || fail "after the rollback the agent reports '$(version)'"
agent_online "$AGENT_ID" || fail "the old agent did not reconnect"
[ ! -e "$SWB_TMP/agent-$AGENT_ID/update.pending" ] || fail "the marker was left"

note "a signed newer build is installed, re-executed and reconnects"
ctl release publish "$SWB_TMP/newer" --version "$NEW" --os "$OS" --arch "$ARCH" >/dev/null
wait_until 30 is_version "$NEW" || { tail -30 "$SWB_TMP/agent.log"; fail "agent reports '$(version)', not $NEW"; }
wait_until 10 logged "update: version $NEW confirmed: online with the hub" || fail "no confirmation"
kill -0 "$AG_PID" || fail "the update did not keep the pid (exec)"
cmp -s "$SWB_TMP/bin/agentd" "$SWB_TMP/newer" || fail "agentd is not the new build"
cmp -s "$SWB_TMP/bin/agentd.old" "$SWB_TMP/orig" || fail "agentd.old is not the old build"
[ ! -e "$SWB_TMP/agent-$AGENT_ID/update.pending" ] || fail "the marker was left"
sleep 1
agent_online "$AGENT_ID" || fail "the new agent went away"
grep -q "rolled back to $CUR" <(grep "version $NEW" "$SWB_TMP/agent.log") && fail "the good update was rolled back"
echo "ota: ok"
