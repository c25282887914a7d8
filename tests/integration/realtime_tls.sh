# Realtime over the TLS user port: the whole of realtime.sh (refusals
# before any 101, a session, per-response billing and the quota close,
# provider closes, a user who stops reading, the agent lost) through
# wss:// on the port where libwebsockets does TLS.  A client that offers
# no HTTP/2 is served by the plain port's HTTP/1.1 code (gateway/gw_tls.c),
# so the upgrade, the relay and the back-pressure are the same code.
# Before that: HTTP/2 and HTTP/1.1 requests still work on that port.
SWB_RT_TLS=1
source "$(dirname "$0")/realtime.sh"
