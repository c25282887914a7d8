# 1,000 agents (one lightweight swarm process running agentd's own tunnel
# client) connect to one hub; heartbeats keep every one of them up; the
# hub's memory per connected agent is reported: the tunnel process's
# anonymous RSS growth (heap and stacks; the code pages the first
# handshakes touch are shared and paid once, not per agent).
source "$(dirname "$0")/lib.sh"
N=${SWB_SCALE_AGENTS:-1000}
ulimit -n 8192
SWB_HB=1s SWB_HB_TIMEOUT=4s hub_with_tunnel
SWARM=$SWB_BIN/tests/tools/swarm
"$SWARM" keygen "$N" "$SWB_TMP/keys"
note "registering $N agents"
: >"$SWB_TMP/ids"
i=0
while read -r pk sk; do
    i=$((i+1))
    id=$(ctl --json agent add "s$i" "$pk" | jq -r .id)
    echo "$id $sk" >>"$SWB_TMP/ids"
done <"$SWB_TMP/keys"
[ "$(wc -l <"$SWB_TMP/ids")" = "$N" ] || fail "registration incomplete"
rss() { awk -v k="${1:-RssAnon}:" '$1 == k {print $2}' "/proc/$(child_pid tunnel)/status"; }
vm0=$(rss VmRSS)
rss0=$(rss)
first=$(head -1 "$SWB_TMP/ids" | cut -d' ' -f1)
write_agent_ini "$SWB_TMP/swarm.ini" "$first" /unused
sed -i 's/^heartbeat_interval = .*/heartbeat_interval = 2s/' "$SWB_TMP/swarm.ini"
"$SWARM" run -c "$SWB_TMP/swarm.ini" "$SWB_TMP/ids" >"$SWB_TMP/swarm.log" 2>&1 &
SWB_CLEANUP+=("kill $!")
online() { [ "$(ctl --json agents | jq '.agents | length')" = "$N" ]; }
t0=$SECONDS
wait_until 120 online || fail "only $(ctl --json agents | jq '.agents | length') of $N online"
echo "all $N online after $((SECONDS - t0)) s"
rss1=$(rss)
note "heartbeats for 3 timeouts"
hb0=$(ctl --json agents | jq '[.agents[].last_heartbeat_ms] | min')
sleep 12
online || fail "agents dropped: $(ctl --json agents | jq '.agents | length') of $N"
hb1=$(ctl --json agents | jq '[.agents[].last_heartbeat_ms] | min')
[ "$hb1" -gt "$hb0" ] || fail "some agent's heartbeat is stale"
! grep -q "missed heartbeats" "$SWB_TMP/hub.log" || fail "heartbeats were missed"
grep -q "online $N of $N" "$SWB_TMP/swarm.log" || fail "swarm never saw all welcomed"
# Measured once the agents are idle (after the heartbeats), not at the
# peak of the handshakes, which the tunnel gives back (malloc_trim).
rss2=$(rss) vm2=$(rss VmRSS)
per=$(( (rss2 - rss0) * 1024 / N ))
echo "tunnel anonymous RSS: $rss0 kB idle, $rss1 kB once $N agents were online, $rss2 kB with them idle: $per bytes per agent; all RSS $vm0 → $vm2 kB (build: $(basename "$SWB_BIN"))"
echo "$per" >"${SWB_SCALE_OUT:-/dev/null}"
echo OK
