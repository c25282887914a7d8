# agentd identity and config: `agentd keygen` makes a 0600 key file and
# prints a 44-character base64 public key, never overwrites without -f;
# `agentd -t` checks agentd.ini (and the sample etc/agentd.ini); agentd
# refuses to start on a key file others can read or a wrong-sized one, and
# with a good one logs the same public key and exits 0 on SIGTERM/SIGINT.
# Needs a test build (hub pins come from the INI), as tests/run.sh uses.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
root=$(cd "$(dirname "$0")/../.." && pwd)
AGENT_PID=
SWB_CLEANUP+=('[ -z "$AGENT_PID" ] || kill -KILL "$AGENT_PID" 2>/dev/null')
key=$SWB_TMP/agent.key
# agentd runs that must end by themselves; a wrongly started one would
# otherwise idle forever (timeout's 124 then fails the checks).
agentd() { timeout -k 5 30 "$AGENTD" "$@"; }

note "keygen"
agentd keygen -o "$key" >"$SWB_TMP/pub" 2>"$SWB_TMP/keygen.err" ||
    fail "keygen failed: $(cat "$SWB_TMP/keygen.err")"
[ "$(wc -l <"$SWB_TMP/pub")" = 1 ] || fail "keygen stdout is not one line"
pub=$(cat "$SWB_TMP/pub")
[[ $pub =~ ^[A-Za-z0-9+/]{43}=$ ]] || fail "public key '$pub' is not 44 base64 chars"
[ "$(printf '%s' "$pub" | base64 -d | wc -c)" = 32 ] || fail "public key is not 32 bytes"
[ "$(stat -c %a "$key")" = 600 ] || fail "key file mode $(stat -c %a "$key"), want 600"
[ "$(stat -c %s "$key")" = 89 ] || fail "key file is $(stat -c %s "$key") bytes, want 89"
[ "$(head -c 88 "$key" | base64 -d | wc -c)" = 64 ] || fail "key file is not base64 of 64 bytes"

note "keygen refuses to overwrite"
cp "$key" "$SWB_TMP/key.orig"
rc=0; agentd keygen -o "$key" >"$SWB_TMP/pub2" 2>"$SWB_TMP/keygen.err" || rc=$?
[ $rc -ne 0 ] || fail "keygen overwrote an existing key file"
grep -q "already exists" "$SWB_TMP/keygen.err" || fail "no 'already exists' message: $(cat "$SWB_TMP/keygen.err")"
[ ! -s "$SWB_TMP/pub2" ] || fail "keygen printed a key it did not save"
cmp -s "$key" "$SWB_TMP/key.orig" || fail "the refused keygen changed the key file"

note "keygen -f overwrites, still 0600"
chmod 644 "$SWB_TMP/key.orig"; cp -p "$SWB_TMP/key.orig" "$SWB_TMP/other.key"
pub3=$(agentd keygen -f -o "$SWB_TMP/other.key" 2>/dev/null) || fail "keygen -f failed"
[ "$pub3" != "$pub" ] || fail "keygen -f made the same key"
[ "$(stat -c %a "$SWB_TMP/other.key")" = 600 ] || fail "keygen -f left mode $(stat -c %a "$SWB_TMP/other.key")"
rc=0; agentd keygen >/dev/null 2>&1 || rc=$?
[ $rc -ne 0 ] || fail "keygen without -o succeeded"

pin=sha256//$(head -c 32 /dev/urandom | base64)
ini=$SWB_TMP/agentd.ini
cat >"$ini" <<INI
[agent]
id = 42
key_file = $key
hub_url = wss://127.0.0.1:8443/tunnel/connect
hub_pin = $pin
state_dir = $SWB_TMP/state
[channel.main]
provider = openai
models = gpt-4o, gpt-4o-mini
key = sk-test-not-real
rpm = 60
grade = A
INI
chmod 600 "$ini"

note "agentd -t"
out=$(agentd -t -c "$ini" 2>&1) || fail "agentd -t refused a valid file: $out"
[ "$out" = "configuration OK" ] || fail "agentd -t said '$out'"

note "agentd -t names the bad line"
sed 's/^provider = openai/provider = openia/' "$ini" >"$SWB_TMP/bad.ini"
rc=0; agentd -t -c "$SWB_TMP/bad.ini" >"$SWB_TMP/t.out" 2>"$SWB_TMP/t.err" || rc=$?
[ $rc = 1 ] || fail "agentd -t on a bad file exited $rc, want 1"
grep -q "bad.ini:8: .*provider = 'openia'" "$SWB_TMP/t.err" || fail "no line number: $(cat "$SWB_TMP/t.err")"
! grep -q "configuration OK" "$SWB_TMP/t.out" || fail "said OK about a bad file"
printf '[agent]\nid = 1\n[bogus]\nx = 1\n' >"$SWB_TMP/bad2.ini"
rc=0; agentd -t -c "$SWB_TMP/bad2.ini" 2>"$SWB_TMP/t.err" >/dev/null || rc=$?
[ $rc = 1 ] && grep -q "bad2.ini:4: unknown section \[bogus\]" "$SWB_TMP/t.err" ||
    fail "unknown section: rc $rc, $(cat "$SWB_TMP/t.err")"

note "the sample etc/agentd.ini parses (with its test-build lines enabled)"
sed -E 's/^#(hub_pin|hub_pin_backup|ca_file|connect_to) =/\1 =/' etc/agentd.ini >"$SWB_TMP/sample.ini"
grep -q '^hub_pin = ' "$SWB_TMP/sample.ini" || fail "sample has no commented hub_pin line"
grep -q '^connect_to = ' "$SWB_TMP/sample.ini" || fail "sample has no commented connect_to line"
out=$(agentd -t -c "$SWB_TMP/sample.ini" 2>&1) || fail "sample: $out"

note "refuses a key file others can read"
chmod 640 "$key"
rc=0; agentd -c "$ini" >"$SWB_TMP/agent.log" 2>&1 || rc=$?
[ $rc -ne 0 ] || fail "agentd started with a mode 640 key file"
grep -q "refusing to start: key file: $key is readable or writable by group or others (mode 0640)" \
    "$SWB_TMP/agent.log" || fail "no clear error: $(cat "$SWB_TMP/agent.log")"
chmod 604 "$key"
rc=0; agentd -c "$ini" >"$SWB_TMP/agent.log" 2>&1 || rc=$?
[ $rc -ne 0 ] && grep -q "group or others" "$SWB_TMP/agent.log" || fail "started with mode 604"

note "refuses a key file of the wrong size, or a directory"
head -c 40 "$SWB_TMP/key.orig" >"$SWB_TMP/short.key"; chmod 600 "$SWB_TMP/short.key"
sed "s|^key_file = .*|key_file = $SWB_TMP/short.key|" "$ini" >"$SWB_TMP/short.ini"
rc=0; agentd -c "$SWB_TMP/short.ini" >"$SWB_TMP/agent.log" 2>&1 || rc=$?
[ $rc -ne 0 ] && grep -q "wrong size or format" "$SWB_TMP/agent.log" ||
    fail "short key: rc $rc, $(cat "$SWB_TMP/agent.log")"
mkdir -m 700 "$SWB_TMP/dir.key"
sed "s|^key_file = .*|key_file = $SWB_TMP/dir.key|" "$ini" >"$SWB_TMP/dir.ini"
rc=0; agentd -c "$SWB_TMP/dir.ini" >"$SWB_TMP/agent.log" 2>&1 || rc=$?
[ $rc -ne 0 ] && grep -q "not a regular file" "$SWB_TMP/agent.log" ||
    fail "directory key: rc $rc, $(cat "$SWB_TMP/agent.log")"

# start_agent LOG: run agentd on $ini, wait until it has loaded its key.
start_agent() {
    "$AGENTD" -c "$ini" >"$1" 2>&1 &
    AGENT_PID=$!
    wait_until 15 grep -q "agent id 42, public key" "$1" ||
        fail "agentd did not start: $(cat "$1")"
}

for sig in TERM INT; do
    note "starts with mode 600 and exits 0 on SIG$sig"
    chmod 600 "$key"
    start_agent "$SWB_TMP/agent-$sig.log"
    grep -q "agent id 42, public key $pub\$" "$SWB_TMP/agent-$sig.log" ||
        fail "logged another public key than keygen printed"
    ! grep -q "sk-test-not-real" "$SWB_TMP/agent-$sig.log" || fail "a provider key was logged"
    kill -0 "$AGENT_PID" 2>/dev/null || fail "agentd exited by itself"
    kill -"$sig" "$AGENT_PID"
    rc=0; wait "$AGENT_PID" || rc=$?
    AGENT_PID=
    [ $rc = 0 ] || fail "agentd exited $rc on SIG$sig: $(cat "$SWB_TMP/agent-$sig.log")"
done
echo "ok"
