/*
 * tests/fuzz/fuzz_route: libFuzzer target for the gateway's route table
 * (gateway/gw_route.c): method + path pattern to surface and operation,
 * '*' capturing one path segment (or its part before a fixed ":action"
 * suffix, Gemini's models/{m}:generateContent), and the body parsers that
 * turn that capture into the model (Azure's deployment, Bedrock's
 * %-encoded model id, Gemini's model with ?alt=sse).
 *
 * Input: "METHOD SP TARGET", the target split at its first '?' as the
 * user port does.  Invariants, not only "does not crash":
 *  - a match's pattern with its '*' replaced by the capture is exactly
 *    the path (so the capture lies within the path, at its place); the
 *    capture is non-empty, NUL-terminated within its buffer and holds no
 *    '/', NUL, control byte or space;
 *  - a path that holds a NUL or a control byte never matches, nor one
 *    longer than any pattern plus the largest capture;
 *  - a capture that does not fit its buffer is refused, never truncated:
 *    with a buffer one byte short the same route does not match;
 *  - the parser of a relaying route either stops with exactly one error
 *    reply, or goes on with a non-empty, NUL-terminated model free of
 *    control bytes, equal to the capture (Azure, Gemini) or to its
 *    %-decoding (Bedrock: no '/', no NUL);
 *  - the Gemini stream route goes on only with ?alt=sse.
 *
 * The rest of the gateway is stubbed here (replies recorded, no I/O).
 * Built with -DFUZZ_SEEDGEN it writes a seed for every route into DIR.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/gw.h"
#include "gateway/gw_form.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

_Noreturn static void
die(const char *why, const char *path, size_t plen)
{
	fprintf(stderr, "fuzz_route: %s (path '%.*s')\n", why, (int)plen, path);
	abort();
}

/* ---- stubs of the gateway around gw_route.c ---------------------------- */

const struct gw_surface gw_surface_openai, gw_surface_anthropic,
    gw_surface_bedrock, gw_surface_gemini;

static unsigned replies;		/* gw_reply_error/json calls */
static const char *cur_query;		/* the input's query, for gw_query */
static size_t cur_qlen;

void
gw_reply_error(struct gw_req *r, unsigned status, const char *kind,
    const char *code, const char *message)
{
	(void)r; (void)kind; (void)code; (void)message;
	if (status < 400 || status > 599)
		die("an error reply with a non-error status", "", 0);
	replies++;
}

void
gw_reply_json(struct gw_req *r, unsigned status, const char *json)
{
	(void)r; (void)status; (void)json;
	replies++;
}

struct child_env *
gw_env(void)
{
	return NULL;	/* only the answered routes use it: never called */
}

const struct gw_token *
gw_req_token(const struct gw_req *r)
{
	return &r->tok;
}

void
rt_models(const struct sb *sb, void (*fn)(const char *model, void *arg),
    void *arg)
{
	(void)sb; (void)fn; (void)arg;
}

int
rt_model_in(const char *csv, const char *model, int empty_is_all)
{
	(void)csv; (void)model;
	return empty_is_all;
}

int
gw_form_field(const char *ctype, const void *body, size_t len,
    const char *name, char *out, size_t outlen)
{
	(void)ctype; (void)body; (void)len; (void)name; (void)out; (void)outlen;
	return 0;
}

/* name=value in the input's query (no decoding): length, or 0. */
int
gw_query(struct gw_req *r, const char *name, char *out, size_t outlen)
{
	size_t nl = strlen(name), i = 0;

	(void)r;
	while (i < cur_qlen) {
		size_t e = i;
		while (e < cur_qlen && cur_query[e] != '&')
			e++;
		if (e - i > nl && memcmp(cur_query + i, name, nl) == 0 &&
		    cur_query[i + nl] == '=') {
			size_t vl = e - i - nl - 1;
			if (vl + 1 > outlen)
				return 0;
			memcpy(out, cur_query + i + nl + 1, vl);
			out[vl] = '\0';
			return (int)vl;
		}
		i = e + 1;
	}
	return 0;
}

enum gw_verdict
gw_rt_parse(struct gw_req *r, const struct gw_body *b)
{
	(void)b;
	snprintf(r->model, sizeof(r->model), "rt");
	return GW_GO;
}

/* Video jobs' parsers ask billing for the job (gateway/gw_video.c): here
 * they only name a model, like Realtime's. */
enum gw_verdict
gw_video_parse_create(struct gw_req *r, const struct gw_body *b)
{
	(void)b;
	snprintf(r->model, sizeof(r->model), "sora-2");
	return GW_GO;
}

enum gw_verdict
gw_video_parse_get(struct gw_req *r, const struct gw_body *b)
{
	(void)b;
	snprintf(r->model, sizeof(r->model), "sora-2");
	return GW_GO;
}

/* ---- the target --------------------------------------------------------- */

/* Every pattern of the table, for the length bound and the seeds. */
static const char *const patterns[] = {
	"/healthz", "/v1/models", "/v1/chat/completions", "/v1/responses",
	"/v1/embeddings", "/v1/messages", "/v1/messages/count_tokens",
	"/v1/images/generations", "/v1/images/edits", "/v1/audio/speech",
	"/v1/audio/transcriptions", "/v1/audio/translations",
	"/v1beta/models/*:generateContent",
	"/v1beta/models/*:streamGenerateContent",
	"/v1beta/models/*:embedContent",
	"/v1beta/models/*:batchEmbedContents",
	"/v1beta/models/*:countTokens", "/v1/realtime",
	"/openai/deployments/*/chat/completions",
	"/openai/deployments/*/embeddings",
	"/model/*/converse", "/model/*/converse-stream", "/model/*/invoke",
	"/model/*/invoke-with-response-stream",
	"/v1/videos", "/v1/videos/*", "/v1/videos/*/content",
};

static int
bad_byte(unsigned char c)
{
	return c < 0x21 || c == 0x7f;
}

/* pat with its '*' replaced by star equals path[0..plen). */
static int
rebuilds(const char *pat, const char *star, const char *path, size_t plen)
{
	const char *st = strchr(pat, '*');
	size_t pre, sl = strlen(star), post;

	if (st == NULL)
		return star[0] == '\0' && strlen(pat) == plen &&
		    memcmp(pat, path, plen) == 0;
	pre = (size_t)(st - pat);
	post = strlen(st + 1);
	return pre + sl + post == plen && memcmp(path, pat, pre) == 0 &&
	    memcmp(path + pre, star, sl) == 0 &&
	    memcmp(path + pre + sl, st + 1, post) == 0;
}

/* The %-decoding of s (Bedrock's rule); -1 on a bad escape. */
static int
pct_decode(const char *s, char *out, size_t outlen)
{
	size_t o = 0;

	for (size_t i = 0; s[i] != '\0'; i++) {
		int c = (unsigned char)s[i];
		if (c == '%') {
			unsigned v;
			char hx[3] = { s[i + 1], s[i + 1] ? s[i + 2] : 0, 0 };
			if (hx[0] == 0 || hx[1] == 0 ||
			    strspn(hx, "0123456789abcdefABCDEF") != 2 ||
			    sscanf(hx, "%2x", &v) != 1)
				return -1;
			c = (int)v;
			i += 2;
		}
		if (o + 1 >= outlen)
			return -1;
		out[o++] = (char)c;
	}
	out[o] = '\0';
	return (int)o;
}

static void
check_parse(const struct gw_route *rt, const char *star, const char *path,
    size_t plen)
{
	static struct gw_req r;
	char dec[256];
	static const char body[] = "{\"model\":\"body-model\"}";
	struct gw_body b;
	char msg[128];
	enum gw_verdict v;
	size_t ml;

	memset(&r, 0, sizeof(r));
	snprintf(r.path_model, sizeof(r.path_model), "%s", star);
	r.op = rt->op;
	r.surface = rt->surface;
	if (gw_body_read(&b, body, sizeof(body) - 1, msg, sizeof(msg)) != 0)
		die("the body of the parsers' check does not read", path, plen);
	replies = 0;
	v = rt->parse(&r, &b);
	if (v == GW_STOP) {
		if (replies != 1)
			die("a parser stopped without exactly one reply", path,
			    plen);
		return;
	}
	if (v != GW_GO || replies != 0)
		die("a parser went on after replying", path, plen);
	ml = strnlen(r.model, sizeof(r.model));
	if (ml == 0 || ml == sizeof(r.model))
		die("a parser went on with an empty or unterminated model",
		    path, plen);
	if (rt->op == OP_REALTIME || rt->parse == NULL)
		return;
	for (size_t i = 0; i < ml; i++)
		if (bad_byte((unsigned char)r.model[i]))
			die("a model with a control byte or space", path, plen);
	if (star[0] == '\0')
		return;		/* the body named it */
	if (rt->surface == &gw_surface_bedrock) {
		if (pct_decode(star, dec, sizeof(dec)) < 0 ||
		    strcmp(dec, r.model) != 0 || strchr(r.model, '/') != NULL)
			die("Bedrock's model is not its path segment %-decoded",
			    path, plen);
	} else if (strcmp(star, r.model) != 0) {
		die("the model is not the path's capture", path, plen);
	}
	if (rt->op == OP_GEM_STREAM) {
		char alt[16];
		if (gw_query(&r, "alt", alt, sizeof(alt)) <= 0 ||
		    strcmp(alt, "sse") != 0)
			die("a Gemini stream went on without alt=sse", path,
			    plen);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *in = (const char *)data, *sp, *q;
	const char *path;
	size_t mlen, plen, maxpat = 0;
	char star[128], small[128];
	const struct gw_route *rt, *rt2;
	int bad = 0;

	sp = memchr(in, ' ', size);
	if (sp == NULL)
		return 0;
	mlen = (size_t)(sp - in);
	path = sp + 1;
	plen = size - mlen - 1;
	q = memchr(path, '?', plen);
	cur_query = q ? q + 1 : "";
	cur_qlen = q ? plen - (size_t)(q + 1 - path) : 0;
	if (q != NULL)
		plen = (size_t)(q - path);
	for (size_t i = 0; i < plen; i++)
		bad |= bad_byte((unsigned char)path[i]);
	for (size_t i = 0; i < sizeof(patterns) / sizeof(patterns[0]); i++)
		if (strlen(patterns[i]) > maxpat)
			maxpat = strlen(patterns[i]);

	memset(star, 0x55, sizeof(star));
	rt = gw_route_find(in, mlen, path, plen, star, sizeof(star));
	if (rt == NULL)
		return 0;
	if (bad)
		die("a path with a NUL or control byte matched", path, plen);
	if (plen > maxpat + sizeof(star))
		die("an over-long path matched", path, plen);
	if (strlen(rt->method) != mlen || memcmp(rt->method, in, mlen) != 0)
		die("matched another method", path, plen);
	if (memchr(star, '\0', sizeof(star)) == NULL)
		die("the capture is not terminated within its buffer", path,
		    plen);
	if (!rebuilds(rt->pattern, star, path, plen))
		die("pattern + capture is not the path", path, plen);
	if (strchr(rt->pattern, '*') != NULL) {
		size_t sl = strlen(star);
		if (sl == 0 || strchr(star, '/') != NULL)
			die("an empty capture or one with '/'", path, plen);
		/* One byte short: refused, never truncated. */
		rt2 = gw_route_find(in, mlen, path, plen, small, sl);
		if (rt2 == rt)
			die("a capture that does not fit matched", path, plen);
		rt2 = gw_route_find(in, mlen, path, plen, small, sl + 1);
		if (rt2 != rt || strcmp(small, star) != 0)
			die("a capture that just fits did not match the same",
			    path, plen);
	}
	if (rt->parse != NULL)
		check_parse(rt, star, path, plen);
	return 0;
}

#ifdef FUZZ_SEEDGEN
static void
seed_bin(const char *dir, int n, const char *data, size_t len)
{
	char p[512];
	FILE *f;

	snprintf(p, sizeof(p), "%s/seed-%02d", dir, n);
	if ((f = fopen(p, "w")) == NULL) {
		perror(p);
		exit(1);
	}
	fwrite(data, 1, len, f);
	fclose(f);
}

static void
seed(const char *dir, int n, const char *text)
{
	seed_bin(dir, n, text, strlen(text));
}

int
main(int argc, char **argv)
{
	static const char *const models[] = {
		"gemini-2.0-flash", "my-deploy", "amazon.nova-lite-v1%3A0",
	};
	char buf[512];
	int n = 0;

	if (argc != 2) {
		fprintf(stderr, "usage: %s DIR\n", argv[0]);
		return 2;
	}
	for (size_t i = 0; i < sizeof(patterns) / sizeof(patterns[0]); i++) {
		const char *p = patterns[i], *st = strchr(p, '*');
		const char *m = strncmp(p, "/v1beta", 7) == 0 ? models[0] :
		    strncmp(p, "/openai", 7) == 0 ? models[1] : models[2];
		const char *meth = strcmp(p, "/healthz") == 0 ||
		    strcmp(p, "/v1/models") == 0 ||
		    strcmp(p, "/v1/realtime") == 0 ? "GET" : "POST";
		const char *qs = strstr(p, "stream") && st ? "?alt=sse" :
		    strcmp(p, "/v1/realtime") == 0 ? "?model=gpt-realtime" :
		    strncmp(p, "/openai", 7) == 0 ? "?api-version=2024-10-21" : "";

		if (st == NULL)
			snprintf(buf, sizeof(buf), "%s %s%s", meth, p, qs);
		else
			snprintf(buf, sizeof(buf), "%s %.*s%s%s%s", meth,
			    (int)(st - p), p, m, st + 1, qs);
		seed(argv[1], n++, buf);
		/* The table still has this pattern (a renamed route shows). */
		{
			const char *path = strchr(buf, ' ') + 1;
			size_t plen = strcspn(path, "?");
			char star[128];
			const struct gw_route *rt = gw_route_find(meth,
			    strlen(meth), path, plen, star, sizeof(star));
			if (rt == NULL || strcmp(rt->pattern, p) != 0) {
				fprintf(stderr, "no route %s %s\n", meth, p);
				return 1;
			}
		}
		LLVMFuzzerTestOneInput((const uint8_t *)buf, strlen(buf));
		if (st == NULL)
			continue;
		/* The same route with an over-long and an empty capture. */
		snprintf(buf, sizeof(buf), "%s %.*s%0200d%s", meth,
		    (int)(st - p), p, 7, st + 1);
		seed(argv[1], n++, buf);
		snprintf(buf, sizeof(buf), "%s %.*s%s", meth, (int)(st - p), p,
		    st + 1);
		seed(argv[1], n++, buf);
	}
	seed(argv[1], n++, "POST /model/a%2Fb/converse");
	seed(argv[1], n++, "POST /model/a%zz/invoke");
	seed(argv[1], n++, "POST /v1beta/models/m:streamGenerateContent?alt=json");
	seed(argv[1], n++, "POST /v1beta/models/a:b:generateContent");
	seed(argv[1], n++, "GET /v1/chat/completions");
	/* Captures with a NUL, a control byte, a space: no route. */
	{
		static const char nul[] = "POST /model/nova\001\000x/converse";
		seed_bin(argv[1], n++, nul, sizeof(nul) - 1);
	}
	seed(argv[1], n++, "POST /v1beta/models/a b:generateContent");
	seed(argv[1], n++, "POST /openai/deployments/d\tx/embeddings");
	return 0;
}
#endif
