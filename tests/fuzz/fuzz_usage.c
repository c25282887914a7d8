/*
 * tests/fuzz/fuzz_usage: libFuzzer target for the usage readers and the
 * include_usage rewrite (lib/usage), which read what providers send (and,
 * for the rewrite, what users send) on both the agent and the hub.
 *
 * Input: byte 0 picks an Anthropic event name (none, or one of a few,
 * mismatched ones included); the rest is one payload, given as an
 * exact-size copy (no NUL after it) to every reader in turn.  Checked, as
 * usage.h promises:
 *   - each reader returns -1, 0 or 1; -1 leaves struct usage untouched; 0
 *     leaves the counts untouched; 1 sets seen and counts within
 *     0..USAGE_MAX_TOKENS with cached + cache_write <= input;
 *     content_chars only grows and saturates at 4 * USAGE_MAX_TOKENS;
 *   - usage_openai_force_include_usage: on 0 a NUL-terminated copy whose
 *     rewrite is a fixed point (rewriting it again asks nothing new and
 *     copies it unchanged); on -1 no output;
 *   - usage_estimate_cut changes nothing once usage was seen.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/usage.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

_Noreturn static void
die(const char *what)
{
	fprintf(stderr, "fuzz_usage: %s\n", what);
	abort();
}

static void
check_counts(const struct usage *u)
{
	if (u->input_tokens < 0 || u->input_tokens > USAGE_MAX_TOKENS ||
	    u->output_tokens < 0 || u->output_tokens > USAGE_MAX_TOKENS ||
	    u->cached_tokens < 0 || u->cached_tokens > USAGE_MAX_TOKENS ||
	    u->cache_write_tokens < 0 ||
	    u->cache_write_tokens > USAGE_MAX_TOKENS)
		die("a count outside 0..USAGE_MAX_TOKENS");
	if (u->cached_tokens + u->cache_write_tokens > u->input_tokens)
		die("cached + cache_write > input");
	if (u->content_chars < 0 || u->content_chars > 4 * USAGE_MAX_TOKENS)
		die("content_chars out of range");
}

static int
same_counts(const struct usage *a, const struct usage *b)
{
	return a->input_tokens == b->input_tokens &&
	    a->output_tokens == b->output_tokens &&
	    a->cached_tokens == b->cached_tokens &&
	    a->cache_write_tokens == b->cache_write_tokens &&
	    a->seen == b->seen && a->estimated == b->estimated;
}

/* One reader's answer against its contract. */
static void
check(const char *who, int rc, const struct usage *before,
    const struct usage *after)
{
	(void)who;
	if (rc < -1 || rc > 1)
		die("a reader returned neither -1, 0 nor 1");
	if (rc == -1 && memcmp(before, after, sizeof(*before)) != 0)
		die("a malformed payload changed the usage");
	if (rc == 0 && !same_counts(before, after))
		die("a payload without usage changed the counts");
	if (rc == 1 && !after->seen)
		die("usage read but seen not set");
	if (after->content_chars < before->content_chars)
		die("content_chars went down");
	check_counts(after);
}

/* Each reader twice: on a fresh usage and on one already holding counts. */
#define READ(call) do {							\
	for (int k = 0; k < 2; k++) {					\
		struct usage *u = k ? &held : &fresh, b = *u;		\
		int rc_ = (call);					\
		check(#call, rc_, &b, u);				\
	}								\
} while (0)

static void
check_rewrite(const char *p, size_t n)
{
	char *out = NULL, *out2 = NULL;
	size_t olen = 0, olen2 = 0;
	int asked = -1, asked2 = -1;

	if (usage_openai_force_include_usage(p, n, &out, &olen, &asked) != 0) {
		if (out != NULL)
			die("rewrite failed but left an output");
		return;
	}
	if (out == NULL || out[olen] != '\0' || (asked != 0 && asked != 1))
		die("rewrite output not NUL-terminated, or user_asked not 0/1");
	if (asked && (olen != n || memcmp(out, p, n) != 0))
		die("include_usage was already asked, yet the body changed");
	/* Its own output rewrites to itself. */
	if (usage_openai_force_include_usage(out, olen, &out2, &olen2,
	    &asked2) != 0)
		die("the rewrite's output does not rewrite");
	if (olen2 != olen || memcmp(out, out2, olen) != 0)
		die("the rewrite is not a fixed point");
	free(out);
	free(out2);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const names[] = { NULL, "message_start",
	    "message_delta", "message_stop", "ping", "" };
	const char *name;
	struct usage fresh, held, keep;
	char *p;
	size_t n;

	if (size < 1)
		return 0;
	name = names[data[0] % (sizeof(names) / sizeof(names[0]))];
	n = size - 1;
	p = malloc(n ? n : 1);
	if (p == NULL)
		die("out of memory");
	memcpy(p, data + 1, n);

	memset(&fresh, 0, sizeof(fresh));
	memset(&held, 0, sizeof(held));
	held.input_tokens = 100;
	held.cached_tokens = 10;
	held.cache_write_tokens = 5;
	held.output_tokens = 7;
	held.seen = 1;
	held.content_chars = 4 * USAGE_MAX_TOKENS - 1;

	READ(usage_openai_event(u, p, n));
	READ(usage_openai_body(u, p, n));
	READ(usage_anthropic_event(u, name, p, n));
	READ(usage_anthropic_body(u, p, n));
	READ(usage_gemini_event(u, p, n));
	READ(usage_gemini_body(u, p, n));
	READ(usage_realtime_event(u, p, n));
	{
		struct usage o;
		int only = 2, rc;

		memset(&o, 0, sizeof(o));
		rc = usage_openai_chunk(&o, p, n, &only);
		if (only < -1 || only > 1)
			die("usage_openai_chunk's only is neither -1, 0 nor 1");
		if (only == -1 && rc != -1)
			die("usage_openai_chunk read a chunk it called not JSON");
	}
	check_rewrite(p, n);

	/* The cut-stream rule: nothing changes once usage was seen. */
	keep = held;
	usage_estimate_cut(&held, (int64_t)n);
	if (memcmp(&keep, &held, sizeof(keep)) != 0)
		die("usage_estimate_cut changed a seen usage");
	if (!fresh.seen) {
		usage_estimate_cut(&fresh, (int64_t)n * 1000000007);
		if (!fresh.estimated || fresh.seen)
			die("usage_estimate_cut did not estimate");
		check_counts(&fresh);
	}
	free(p);
	return 0;
}
