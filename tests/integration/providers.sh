# tests/integration/providers.sh — owns the agent-side provider check of
# the whole stack (tests/stack up): one agent with a channel per provider,
# and one request per OpenAI-dialect provider (DeepSeek, Qwen, Azure
# OpenAI; streaming and not) through the hub's /v1/chat/completions.  The
# mock must see each provider's official host, path (Azure: deployment and
# api-version), and the channel's credential in that provider's header —
# never the user's token — and every request must be billed the same on
# both sides (hubctl and agentd ledger exports byte-identical), with
# DeepSeek's cache hits as cached tokens.
source "$(dirname "$0")/lib.sh"
top=$(cd "$(dirname "$0")/../.." && pwd)
SWB_CLEANUP+=("SWB_DIR=$SWB_TMP $top/tests/stack down 2>/dev/null")
SWB_DIR=$SWB_TMP "$top/tests/stack" up >"$SWB_TMP/stack.env" 2>"$SWB_TMP/stack.log" ||
    fail "tests/stack up: $(tail -5 "$SWB_TMP/stack.log")"
eval "$(grep -E '^SWB_(URL|TOKEN|ADMIN|DIR)=' "$SWB_TMP/stack.env")"
[ "$SWB_DIR" = "$SWB_TMP" ] || fail "stack dir $SWB_DIR"
[[ $SWB_TOKEN =~ ^sk- ]] || fail "no token: $(cat "$SWB_TMP/stack.env")"
AGENT_ID=$(ctl --json agents | jq -r '.agents[0].id')
AINI=$SWB_TMP/stack.ini
LOG=$SWB_TMP/mock.jsonl

note "the agent announces a channel per provider with an adapter"
for p in openai anthropic azure deepseek qwen; do
    ctl --json channels | jq -e --arg p "$p" '[.. | objects | select(.provider? == $p)] | length >= 1' >/dev/null ||
        fail "no $p channel: $(ctl channels)"
done
for m in deepseek-chat deepseek-reasoner qwen-plus gpt-4.1 claude-haiku-4-5 gpt-4o-mini; do
    curl -s "$SWB_URL/models" -H "Authorization: Bearer $SWB_TOKEN" | jq -e --arg m "$m" '.data[] | select(.id==$m)' >/dev/null ||
        fail "model $m not listed: $(curl -s "$SWB_URL/models" -H "Authorization: Bearer $SWB_TOKEN")"
done

# chat OUT MODEL STREAM TEXT: prints the status; headers in OUT.h
chat() {
    curl -sN -D "$1.h" -o "$1" -w '%{http_code}' "$SWB_URL/chat/completions" \
        -H "Authorization: Bearer $SWB_TOKEN" -H 'content-type: application/json' \
        -d "{\"model\":\"$2\",\"stream\":$3,\"messages\":[{\"role\":\"user\",\"content\":\"$4\"}]}"
}
rid() { tr -d '\r' <"$1.h" | awk -F': ' 'tolower($1)=="x-request-id" {print $2}'; }
# The mock's log line of the request whose user text is TEXT.
seen() { jq -c --arg t "$1" 'select(.body.messages[0].content? == $t)' "$LOG" | tail -1; }

declare -A RIDS=()
n=0
for model in deepseek-chat qwen-plus gpt-4.1; do
    for stream in false true; do
        n=$((n + 1))
        text="hello $model $stream [mock chunks=3 cache_read=2]"
        note "$model, stream=$stream"
        out=$SWB_TMP/r$n
        code=$(chat "$out" "$model" "$stream" "$text")
        [ "$code" = 200 ] || fail "$model stream=$stream: $code $(cat "$out")"
        if [ "$stream" = true ]; then
            grep -q '"content":"tok2 "' "$out" || fail "stream body: $(cat "$out")"
            tail -c 20 "$out" | grep -q 'data: \[DONE\]' || fail "no [DONE]: $(cat "$out")"
        else
            jq -e '.choices[0].message.content == "tok0 tok1 tok2 "' "$out" >/dev/null ||
                fail "body: $(cat "$out")"
        fi
        RIDS[$n]=$(rid "$out")
        line=$(seen "$text")
        [ -n "$line" ] || fail "the mock never saw '$text'"
        # The user's token never reaches a provider, in any header.
        ! grep -qF "$SWB_TOKEN" <<<"$line" || fail "user token upstream: $line"
        jq -e '.auth.ok == true and .method == "POST"' <<<"$line" >/dev/null ||
            fail "credential refused upstream: $line"
        case $model in
        deepseek-chat)
            jq -e '.provider == "deepseek" and .host == "api.deepseek.com"
                and .path == "/chat/completions"
                and .headers.authorization == "Bearer sk-deepseek-test-key"
                and (.headers | has("api-key") | not)' <<<"$line" >/dev/null ||
                fail "deepseek upstream: $line" ;;
        qwen-plus)
            jq -e '.provider == "qwen" and .host == "dashscope.aliyuncs.com"
                and .path == "/compatible-mode/v1/chat/completions"
                and .headers.authorization == "Bearer sk-qwen-test-key"' <<<"$line" >/dev/null ||
                fail "qwen upstream: $line" ;;
        gpt-4.1)
            jq -e '.provider == "azure" and .host == "swb-test.openai.azure.com"
                and .path == "/openai/deployments/gpt41-deploy/chat/completions"
                and .query == "?api-version=2024-10-21"
                and .headers["api-key"] == "azure-test-provider-key"
                and (.headers | has("authorization") | not)' <<<"$line" >/dev/null ||
                fail "azure upstream: $line" ;;
        esac
        if [ "$stream" = true ]; then
            jq -e '.body.stream_options.include_usage == true' <<<"$line" >/dev/null ||
                fail "the stream did not ask for usage upstream: $line"
        fi
    done
done

note "every request billed, the same on both sides"
hub_csv() { ctl ledger export "$AGENT_ID"; }
agent_csv() { "$AGENTD" ledger export -c "$AINI"; }
six() { [ "$(hub_csv | tail -n +2 | wc -l)" = 6 ]; }
same() { [ "$(hub_csv)" = "$(agent_csv)" ]; }
wait_until 15 six || fail "hub ledger: $(hub_csv)"
wait_until 15 same || fail "exports differ:
$(diff <(hub_csv) <(agent_csv))"
for i in "${!RIDS[@]}"; do
    row=$(hub_csv | grep ",${RIDS[$i]},") || fail "request ${RIDS[$i]} not in the ledger: $(hub_csv)"
    IFS=, read -r _ _ model in out cached _ amount _ <<<"$row"
    [ "$out" = 3 ] || fail "output tokens of $model: $row"
    [ "$in" -gt 0 ] || fail "input tokens of $model: $row"
    [ "$amount" != 0.000000 ] || fail "not priced: $row"
    if [ "$model" = deepseek-chat ]; then
        [ "$cached" = 2 ] || fail "DeepSeek's prompt_cache_hit_tokens not billed as cached: $row"
    else
        [ "$cached" = 0 ] || fail "cached tokens of $model: $row"
    fi
done
for m in deepseek-chat qwen-plus gpt-4.1; do
    [ "$(hub_csv | cut -d, -f3 | grep -cx "$m")" = 2 ] || fail "model $m: $(hub_csv)"
done
ctl ledger verify "$AGENT_ID" >/dev/null || fail "hubctl ledger verify"
"$AGENTD" ledger verify -c "$AINI" >/dev/null || fail "agentd ledger verify"
[ "$(ctl --json disputes | jq '.disputes | length')" = 0 ] || fail "disputes: $(ctl disputes)"
echo ok
