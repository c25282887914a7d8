#!/usr/bin/env bash
# tests/services/redis.sh: a throwaway Redis server for tests.
#   redis.sh start DIR   start redis-server on a free loopback TCP port, no
#                        persistence, daemonized with its pidfile and log in
#                        DIR; wait until it answers; print its URL
#   redis.sh url DIR     print the URL again
#   redis.sh stop DIR    stop it (DIR is the caller's to remove)
# Environment: SWB_REDIS_SERVER (default: redis-server on PATH).
# stdout carries only the URL; progress and errors go to stderr.
set -euo pipefail

die() { echo "redis.sh: $*" >&2; exit 1; }

cmd=${1:-}; dir=${2:-}
[[ -n $cmd && -n $dir ]] || die "usage: redis.sh start|stop|url DIR"

server=${SWB_REDIS_SERVER:-$(command -v redis-server || true)}
[[ -n $server && -x $server ]] || die "redis-server not found (apt-get install redis-server)"

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

pid_alive() {
    local pid
    [[ -f $dir/redis.pid ]] || return 1
    pid=$(cat "$dir/redis.pid" 2>/dev/null) || return 1
    [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null
}

# The process id the server on $1 reports (INFO server), or "".
server_pid() {
    local port=$1 line
    exec 3<>"/dev/tcp/127.0.0.1/$port" || return 0
    printf 'INFO server\r\nQUIT\r\n' >&3
    while IFS= read -r -t 2 line <&3; do
        line=${line%$'\r'}
        if [[ $line == process_id:* ]]; then
            echo "${line#process_id:}"
            break
        fi
    done
    exec 3<&- 3>&-
}

url() {
    [[ -f $dir/redis.port ]] || die "no server in $dir"
    echo "redis://127.0.0.1:$(cat "$dir/redis.port")"
}

start() {
    local port i pid got
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    if [[ -f $dir/redis.port ]] && pid_alive; then
        url; return
    fi
    for _ in $(seq 1 20); do
        port=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
        port_free "$port" || continue
        rm -f "$dir/redis.pid" "$dir/redis.log"
        "$server" --bind 127.0.0.1 --port "$port" --protected-mode yes \
            --save '' --appendonly no --daemonize yes \
            --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" \
            --dir "$dir" >/dev/null 2>&1 || continue
        # The daemon writes its pidfile, then binds; a lost race for the
        # port makes it exit, so wait for an answer from *our* pid.
        for i in $(seq 1 100); do
            if pid_alive; then
                pid=$(cat "$dir/redis.pid")
                got=$(server_pid "$port" 2>/dev/null || true)
                if [[ $got == "$pid" ]]; then
                    echo "$port" >"$dir/redis.port"
                    url; return
                fi
            elif [[ -f $dir/redis.pid ]] || ((i > 20)); then
                break   # started and died, or never started
            fi
            sleep 0.1
        done
        if pid_alive; then
            kill "$(cat "$dir/redis.pid")" 2>/dev/null || true
        fi
        grep -qi "address already in use\|could not create server tcp" \
            "$dir/redis.log" 2>/dev/null || break
    done
    tail -n 20 "$dir/redis.log" >&2 2>/dev/null || true
    die "redis-server did not start"
}

stop() {
    local pid i
    [[ -d $dir ]] || return 0
    pid_alive || { rm -f "$dir/redis.pid"; return 0; }
    pid=$(cat "$dir/redis.pid")
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || { rm -f "$dir/redis.pid"; return 0; }
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    rm -f "$dir/redis.pid"
}

case $cmd in
start) start ;;
stop)  stop ;;
url)   dir=$(cd "$dir" 2>/dev/null && pwd) || die "no server in $2"; url ;;
*)     die "usage: redis.sh start|stop|url DIR" ;;
esac
