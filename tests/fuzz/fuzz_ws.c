/*
 * tests/fuzz/fuzz_ws: libFuzzer target for what a Realtime user sends
 * after the upgrade — the gateway's RFC 6455 parser (gateway/gw_ws).
 * Checks: a call never consumes more than it was given, nor anything when
 * it asks for more bytes; a message is never larger than the limit; a
 * text message is valid UTF-8; and the same bytes fed whole or a growing
 * prefix at a time give the same events and the same end.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/gw_ws.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAXMSG	4096

_Noreturn static void
die(const char *why)
{
	fprintf(stderr, "fuzz_ws: %s\n", why);
	abort();
}

/* Run the parser; step 0 = the whole rest each time, else a prefix that
 * grows by step bytes when more are asked for.  Returns a digest of the
 * events and the end. */
static uint64_t
run(const uint8_t *d, size_t n, size_t step)
{
	struct gw_ws_in in = { 0 };
	struct gw_ws_event ev;
	size_t off = 0, avail = step ? (step < n ? step : n) : n, used;
	uint64_t h = 1469598103934665603ull;
	int rc;

	in.max_msg = MAXMSG;
	for (;;) {
		rc = gw_ws_parse(&in, d + off, avail - off, &used, &ev);
		if (used > avail - off)
			die("consumed more than given");
		if (rc == -1) {
			h = (h ^ (0x10000u + in.close_code)) * 1099511628211ull;
			break;
		}
		if (rc == 1) {
			if (ev.len > MAXMSG)
				die("message over the limit");
			if (ev.op == GW_WS_TEXT && !gw_ws_utf8_ok(ev.data, ev.len))
				die("text not UTF-8");
			h = (h ^ ev.op) * 1099511628211ull;
			for (size_t i = 0; i < ev.len; i++)
				h = (h ^ ev.data[i]) * 1099511628211ull;
		}
		off += used;
		if (rc == 0 && used == 0) {
			if (avail == n)
				break;
			avail = avail + step < n ? avail + step : n;
		}
		if (off == avail && avail == n)
			break;
	}
	gw_ws_in_free(&in);
	return h ^ off;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint64_t whole = run(data, size, 0);

	if (run(data, size, 1) != whole || run(data, size, 7) != whole)
		die("split input parsed differently");
	return 0;
}
