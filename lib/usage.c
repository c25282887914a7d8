/*
 * lib/usage: token usage readers for OpenAI-compatible, Anthropic and
 * Gemini payloads, and the include_usage request rewrite (rules in
 * usage.h).  Owns the count validation and the per-provider
 * normalisation.  The OpenAI readers and the rewrites read the text in
 * place with lib/jscan (the rewrites splice into the user's own bytes).
 */
#include "lib/usage.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include "lib/evstream.h"
#include "lib/jscan.h"
#include "lib/money.h"

/* Response payloads: NUL escapes are harmless, keep the last duplicate. */
#define LOAD_FLAGS	(JSON_ALLOW_NUL)
/* Requests: a duplicate key could mean one thing to us and another to the
 * provider (e.g. two "stream" members), so refuse it. */
#define REQ_FLAGS	(JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES)

static json_t *
load(const char *s, size_t len, size_t flags)
{
	json_error_t e;

	if (s == NULL)
		return NULL;
	return json_loadb(s, len, flags, &e);
}

/*
 * Read one count.  1: present, 0: absent or null (*out = 0), -1: not a
 * non-negative integer within USAGE_MAX_TOKENS.
 */
static int
count(const json_t *obj, const char *key, int64_t *out)
{
	const json_t *v = json_object_get(obj, key);
	json_int_t n;

	*out = 0;
	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_integer(v))
		return -1;
	n = json_integer_value(v);
	if (n < 0 || n > USAGE_MAX_TOKENS)
		return -1;
	*out = (int64_t)n;
	return 1;
}

/* A member that must be an object when present.  -1: wrong type. */
static int
member_object(const json_t *obj, const char *key, json_t **out)
{
	json_t *v = json_object_get(obj, key);

	*out = NULL;
	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_object(v))
		return -1;
	*out = v;
	return 1;
}

/* Check the parts add up, then store (the content count is kept). */
static int
commit(struct usage *u, const struct usage *n)
{
	int64_t chars = u->content_chars;

	if (n->cached_tokens + n->cache_write_tokens > n->input_tokens)
		return -1;
	*u = *n;
	u->seen = 1;
	u->estimated = 0;
	u->content_chars = chars;
	return 1;
}

static int
is_done(const char *data, size_t len)
{
	while (len > 0 && (data[len - 1] == ' ' || data[len - 1] == '\t' ||
	    data[len - 1] == '\r' || data[len - 1] == '\n'))
		len--;
	while (len > 0 && (data[0] == ' ' || data[0] == '\t')) {
		data++;
		len--;
	}
	return len == 6 && memcmp(data, "[DONE]", 6) == 0;
}

/* ---- OpenAI ----
 *
 * Read in place with lib/jscan (no tree): these run on every answer and
 * every stream chunk, in the hub and in the agent.  jscan_check accepts
 * exactly what load() does, and the helpers below read values as count,
 * member_object and str_bytes do, so the rules are the same as jansson's.
 */

static int
js_count(struct jscan_v obj, const char *key, int64_t *out)
{
	struct jscan_v v = jscan_get(obj, key);
	int64_t n;

	*out = 0;
	if (jscan_type(v) == JS_NONE || jscan_type(v) == JS_NULL)
		return 0;
	if (jscan_integer(v, &n) != 0 || n < 0 || n > USAGE_MAX_TOKENS)
		return -1;
	*out = n;
	return 1;
}

static int
js_member_object(struct jscan_v obj, const char *key, struct jscan_v *out)
{
	struct jscan_v v = jscan_get(obj, key);

	out->p = NULL;
	out->n = 0;
	if (jscan_type(v) == JS_NONE || jscan_type(v) == JS_NULL)
		return 0;
	if (jscan_type(v) != JS_OBJECT)
		return -1;
	*out = v;
	return 1;
}

static int64_t
js_str_bytes(struct jscan_v v)
{
	return (int64_t)jscan_string_len(v);
}

static int
openai_usage(struct jscan_v uo, struct usage *n)
{
	struct jscan_v details;
	int r;

	memset(n, 0, sizeof(*n));
	if (jscan_type(jscan_get(uo, "prompt_tokens")) == JS_NONE &&
	    jscan_type(jscan_get(uo, "input_tokens")) != JS_NONE) {
		/* The Responses API: input/output_tokens and their details. */
		if (js_count(uo, "input_tokens", &n->input_tokens) == -1 ||
		    js_count(uo, "output_tokens", &n->output_tokens) == -1 ||
		    js_member_object(uo, "input_tokens_details", &details) == -1)
			return -1;
		if (details.p != NULL &&
		    js_count(details, "cached_tokens", &n->cached_tokens) == -1)
			return -1;
		return 0;
	}
	if (js_count(uo, "prompt_tokens", &n->input_tokens) == -1 ||
	    js_count(uo, "completion_tokens", &n->output_tokens) == -1)
		return -1;
	if (js_member_object(uo, "prompt_tokens_details", &details) == -1)
		return -1;
	r = 0;
	if (details.p != NULL &&
	    (r = js_count(details, "cached_tokens", &n->cached_tokens)) == -1)
		return -1;
	if (r == 0 &&
	    js_count(uo, "prompt_cache_hit_tokens", &n->cached_tokens) == -1)
		return -1;
	return 0;
}

/* Content bytes saturate here, so the estimate stays a valid count. */
#define CHARS_MAX	(4 * USAGE_MAX_TOKENS)

static int64_t
str_bytes(const json_t *v)
{
	return json_is_string(v) ? (int64_t)json_string_length(v) : 0;
}

/*
 * Bytes of content in choices[].<part>.content and
 * choices[].<part>.tool_calls[].function.arguments (part: "delta" in a
 * stream chunk, "message" in a body).  Anything not shaped so counts 0.
 */
static int64_t
openai_content(struct jscan_v choices, const char *part)
{
	static const char *const mkeys[] = { "content", "tool_calls" };
	struct jscan_v ch, m, mv[2], call;
	size_t i = 0, j;
	int64_t n = 0;

	while (jscan_next(choices, &i, &ch)) {
		m = jscan_get(ch, part);
		if (jscan_type(m) != JS_OBJECT)
			continue;
		jscan_getv(m, mkeys, 2, mv);
		n += js_str_bytes(mv[0]);
		for (j = 0; jscan_next(mv[1], &j, &call); )
			n += js_str_bytes(jscan_get(jscan_get(call,
			    "function"), "arguments"));
		if (n > CHARS_MAX)
			break;
	}
	return n;
}

static void
add_chars(struct usage *u, int64_t n)
{
	u->content_chars = n > CHARS_MAX - u->content_chars ? CHARS_MAX :
	    u->content_chars + n;
}

/* The top-level members the OpenAI readers look at, found in one walk. */
enum { OA_CHOICES, OA_TYPE, OA_RESPONSE, OA_USAGE, OA_DELTA, OA_OBJECT,
    OA_STATUS, OA_SECONDS, OA_DATA, OA_NKEYS };
static const char *const oa_keys[OA_NKEYS] = { "choices", "type",
    "response", "usage", "delta", "object", "status", "seconds", "data" };

/*
 * The units of an OpenAI media body (rules in usage.h): 1 read into n
 * (zeroed first), 0 none, -1 malformed.  f: the root's members.
 */
static int
openai_units(const struct jscan_v *f, struct usage *n)
{
	struct jscan_v obj = f[OA_OBJECT], v, uo;
	int is_obj = jscan_type(obj) == JS_STRING;

	memset(n, 0, sizeof(*n));
	if (jscan_string_eq(obj, "video")) {
		int64_t secs = -1;
		char digits[16];
		size_t len;

		if (!jscan_string_eq(f[OA_STATUS], "completed"))
			return 0;
		v = f[OA_SECONDS];
		if (jscan_type(v) == JS_INTEGER) {
			if (jscan_integer(v, &secs) != 0)
				return -1;
		} else if (jscan_type(v) == JS_STRING &&
		    (len = jscan_string_copy(v, digits, sizeof(digits))) > 0 &&
		    len <= 12) {
			/* As a C string: up to a first NUL. */
			secs = 0;
			for (const char *p = digits; *p != '\0'; p++) {
				if (*p < '0' || *p > '9')
					return -1;
				secs = secs * 10 + (*p - '0');
			}
		}
		if (secs < 0 || secs > USAGE_MAX_TOKENS)
			return -1;
		n->video_seconds = secs;
		return 1;
	}
	uo = f[OA_USAGE];
	if (jscan_type(uo) == JS_OBJECT) {
		if (!jscan_string_eq(jscan_get(uo, "type"), "duration"))
			return 0;
		if (js_count(uo, "seconds", &n->audio_seconds) == -1)
			return -1;
		return 1;
	}
	v = f[OA_DATA];
	if (!is_obj && (jscan_type(uo) == JS_NONE ||
	    jscan_type(uo) == JS_NULL) && jscan_array_size(v) > 0) {
		n->images = (int64_t)jscan_array_size(v);
		return 1;
	}
	return 0;
}

/* An OpenAI chunk or body (part: where its content is), checked; f: the
 * root's members. */
static int
openai_root(struct usage *u, const struct jscan_v *f, const char *part)
{
	struct usage n;
	struct jscan_v uo = f[OA_USAGE], type = f[OA_TYPE];
	int64_t chars;
	int rc;

	chars = openai_content(f[OA_CHOICES], part);
	/* A Responses API event (response.completed, ...): the usage is in
	 * its "response". */
	if (jscan_string_eq(type, "response.output_text.delta"))
		chars = js_str_bytes(f[OA_DELTA]);
	if (jscan_string_prefix(type, "response.") &&
	    jscan_type(f[OA_RESPONSE]) == JS_OBJECT)
		uo = jscan_get(f[OA_RESPONSE], "usage");
	rc = 0;
	if (jscan_type(uo) != JS_NONE && jscan_type(uo) != JS_NULL)
		rc = jscan_type(uo) == JS_OBJECT ? 1 : -1;
	if (rc == 1) {
		if (openai_usage(uo, &n) == -1)
			return -1;
		rc = commit(u, &n);	/* -1: the parts do not add up */
	}
	if (rc != -1)	/* 0: usage absent or null; 1: read */
		add_chars(u, chars);
	return rc;
}

/* 1: choices an empty array and usage an object (f: a chunk's members). */
static int
usage_only(const struct jscan_v *f)
{
	return jscan_type(f[OA_CHOICES]) == JS_ARRAY &&
	    jscan_array_size(f[OA_CHOICES]) == 0 &&
	    jscan_type(f[OA_USAGE]) == JS_OBJECT;
}

int
usage_openai_chunk(struct usage *u, const char *data, size_t len,
    int *only)
{
	struct jscan_v root, f[OA_NKEYS];

	if (only != NULL)
		*only = 0;
	if (data != NULL && is_done(data, len))
		return 0;
	if (jscan_check_getv(data, len, &root, oa_keys, OA_NKEYS, f) != 0 ||
	    jscan_type(root) != JS_OBJECT) {
		if (only != NULL)
			*only = -1;
		return -1;
	}
	if (only != NULL)
		*only = usage_only(f);
	return openai_root(u, f, "delta");
}

int
usage_openai_event(struct usage *u, const char *data, size_t len)
{
	return usage_openai_chunk(u, data, len, NULL);
}

int
usage_openai_body(struct usage *u, const char *json, size_t len)
{
	struct usage n;
	struct jscan_v root, f[OA_NKEYS];
	int rc;

	if (jscan_check_getv(json, len, &root, oa_keys, OA_NKEYS, f) != 0 ||
	    jscan_type(root) != JS_OBJECT)
		return -1;
	if ((rc = openai_units(f, &n)) != 0)
		return rc < 0 ? -1 : commit(u, &n);
	return openai_root(u, f, "message");
}

int
usage_speech_request(struct usage *u, const char *json, size_t len)
{
	struct usage n;
	json_t *root = load(json, len, LOAD_FLAGS), *in;
	const unsigned char *p;
	int64_t chars = 0;

	if (root == NULL || !json_is_object(root)) {
		json_decref(root);
		return -1;
	}
	in = json_object_get(root, "input");
	if (!json_is_string(in)) {
		json_decref(root);
		return 0;
	}
	p = (const unsigned char *)json_string_value(in);
	for (size_t i = 0; i < json_string_length(in); i++)
		chars += (p[i] & 0xc0) != 0x80;	/* not a continuation byte */
	json_decref(root);
	memset(&n, 0, sizeof(n));
	n.audio_chars = chars;
	return commit(u, &n);
}

void
usage_units(const struct usage *u, struct money_units *out)
{
	out->images = u->images;
	out->audio_seconds = u->audio_seconds;
	out->audio_chars = u->audio_chars;
	out->video_seconds = u->video_seconds;
}

void
usage_estimate_cut(struct usage *u, int64_t input_est)
{
	if (u->seen)
		return;
	if (input_est < 0)
		input_est = 0;
	if (input_est > USAGE_MAX_TOKENS)
		input_est = USAGE_MAX_TOKENS;
	u->input_tokens = input_est;
	u->output_tokens = (u->content_chars + 3) / 4;
	u->cached_tokens = 0;
	u->cache_write_tokens = 0;
	u->estimated = 1;
}

/* ---- the include_usage rewrite ---- */

static size_t
skip_ws(const char *p, size_t i, size_t n)
{
	while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' ||
	    p[i] == '\r'))
		i++;
	return i;
}

/*
 * The object opening at p[obj] (text jansson loaded, so lib/jscan reads
 * it exactly): find member key, its value at [*va, *vb).  1 found, 0 not.
 */
static int
find_member(const char *p, size_t n, size_t obj, const char *key,
    size_t *va, size_t *vb)
{
	struct jscan_v o = { p + obj, n - obj }, v = jscan_get(o, key);

	if (v.p == NULL)
		return 0;
	*va = (size_t)(v.p - p);
	*vb = *va + v.n;
	return 1;
}

/* out = p[0, a) ins p[b, n), NUL-terminated. */
static int
splice(const char *p, size_t n, size_t a, size_t b, const char *ins,
    char **out, size_t *outlen)
{
	size_t il = strlen(ins), total = a + il + (n - b);
	char *o;

	if ((o = malloc(total + 1)) == NULL)
		return -1;
	memcpy(o, p, a);
	memcpy(o + a, ins, il);
	memcpy(o + a + il, p + b, n - b);
	o[total] = '\0';
	*out = o;
	*outlen = total;
	return 0;
}

/* Splice include_usage = true into text p (facts checked by caller),
 * whose stream_options value so ({NULL, 0}: absent) and its include_usage
 * iu ({NULL, 0}: absent; else false or null) were read from p. */
static int
rewrite_text(const char *p, size_t n, struct jscan_v so, struct jscan_v iu,
    char **out, size_t *outlen)
{
	size_t top, va, ia, i;

	if (so.p == NULL) {
		top = skip_ws(p, 0, n);
		return splice(p, n, top + 1, top + 1,
		    "\"stream_options\":{\"include_usage\":true},", out,
		    outlen);
	}
	va = (size_t)(so.p - p);
	if (p[va] != '{')	/* null */
		return splice(p, n, va, va + so.n, "{\"include_usage\":true}",
		    out, outlen);
	if (iu.p != NULL) {	/* false or null */
		ia = (size_t)(iu.p - p);
		return splice(p, n, ia, ia + iu.n, "true", out, outlen);
	}
	i = skip_ws(p, va + 1, n);
	return splice(p, n, va + 1, va + 1, p[i] == '}' ?
	    "\"include_usage\":true" : "\"include_usage\":true,", out, outlen);
}

static int
copy_out(const char *p, size_t n, char **out, size_t *outlen)
{
	return splice(p, n, n, n, "", out, outlen);
}

/* The rewrite's members: the root's, then stream_options'. */
static const char *const fiu_root[] = { "stream", "stream_options" };
static const char *const fiu_so[] = { "include_usage" };

/*
 * Read stream and stream_options from text p, each at most once
 * (jscan_check_getv_once): 0, or -1 when p is not a JSON object or
 * repeats one of them.
 */
static int
fiu_root_read(const char *p, size_t n, struct jscan_v r[2])
{
	struct jscan_v root;

	return p != NULL && jscan_check_getv_once(p, n, &root, fiu_root, 2,
	    r) == 0 && jscan_type(root) == JS_OBJECT ? 0 : -1;
}

/* stream_options' include_usage, at most once: 0 (*iu {NULL, 0} when
 * stream_options is absent or null), -1 when stream_options is neither
 * an object nor null, or repeats it. */
static int
fiu_so_read(struct jscan_v so, struct jscan_v *iu)
{
	struct jscan_v root;
	enum jscan_type t = jscan_type(so);

	iu->p = NULL;
	iu->n = 0;
	if (t == JS_NONE || t == JS_NULL)
		return 0;
	if (t != JS_OBJECT)
		return -1;
	return jscan_check_getv_once(so.p, so.n, &root, fiu_so, 1, iu) == 0 ?
	    0 : -1;
}

int
usage_openai_force_include_usage(const char *body, size_t len, char **out,
    size_t *outlen, int *user_asked)
{
	struct jscan_v r[2], iu;
	enum jscan_type st, it;

	*out = NULL;
	*outlen = 0;
	*user_asked = 0;
	if (fiu_root_read(body, len, r) != 0)
		return -1;
	st = jscan_type(r[0]);
	if (st == JS_NONE || st == JS_NULL || st == JS_FALSE)
		return copy_out(body, len, out, outlen);
	if (st != JS_TRUE || fiu_so_read(r[1], &iu) != 0)
		return -1;
	it = jscan_type(iu);
	if (it == JS_TRUE) {
		*user_asked = 1;
		return copy_out(body, len, out, outlen);
	}
	if (it != JS_NONE && it != JS_NULL && it != JS_FALSE)
		return -1;
	/* The user's bytes kept, the edit spliced in; proven by reading the
	 * result again. */
	if (rewrite_text(body, len, r[1], iu, out, outlen) != 0)
		return -1;
	if (fiu_root_read(*out, *outlen, r) != 0 ||
	    jscan_type(r[0]) != JS_TRUE || fiu_so_read(r[1], &iu) != 0 ||
	    jscan_type(iu) != JS_TRUE) {
		free(*out);
		*out = NULL;
		*outlen = 0;
		return -1;
	}
	return 0;
}

/* ---- the model rewrite ---- */

int
usage_set_model(const char *body, size_t len, const char *model, char **out,
    size_t *outlen)
{
	json_t *root, *check, *m;
	size_t top, va, vb;
	char *ins = NULL;
	int rc = -1;

	*out = NULL;
	*outlen = 0;
	if ((root = load(body, len, REQ_FLAGS)) == NULL)
		return -1;
	m = json_object_get(root, "model");
	if (!json_is_object(root) || !json_is_string(m) ||
	    (m = json_string(model)) == NULL)
		goto out;
	if (json_object_set_new(root, "model", m) == -1 ||
	    (ins = json_dumps(m, JSON_ENCODE_ANY)) == NULL)
		goto out;
	top = skip_ws(body, 0, len);
	if (find_member(body, len, top, "model", &va, &vb) != 1 ||
	    splice(body, len, va, vb, ins, out, outlen) != 0)
		goto out;
	/* Proven by re-parsing, as the include_usage rewrite. */
	check = load(*out, *outlen, REQ_FLAGS);
	if (check != NULL && json_equal(check, root))
		rc = 0;
	json_decref(check);
	if (rc != 0) {
		free(*out);
		*out = NULL;
		*outlen = 0;
	}
out:
	free(ins);
	json_decref(root);
	return rc;
}

/* ---- Anthropic ---- */

/* Raw Anthropic counts: input excludes cache reads and writes. */
struct anth {
	int64_t in, out, read, write;
};

/* Each count present in uo replaces the one in *a. */
static int
anth_read(const json_t *uo, struct anth *a)
{
	int64_t v;
	int r;

	if ((r = count(uo, "input_tokens", &v)) == -1)
		return -1;
	if (r == 1)
		a->in = v;
	if ((r = count(uo, "output_tokens", &v)) == -1)
		return -1;
	if (r == 1)
		a->out = v;
	if ((r = count(uo, "cache_read_input_tokens", &v)) == -1)
		return -1;
	if (r == 1)
		a->read = v;
	if ((r = count(uo, "cache_creation_input_tokens", &v)) == -1)
		return -1;
	if (r == 1)
		a->write = v;
	return 0;
}

static int
anth_commit(struct usage *u, const struct anth *a)
{
	struct usage n;

	memset(&n, 0, sizeof(n));
	n.input_tokens = a->in + a->read + a->write;
	n.output_tokens = a->out;
	n.cached_tokens = a->read;
	n.cache_write_tokens = a->write;
	return commit(u, &n);
}

/* A whole message (message_start's "message", or a non-stream body). */
static int
anth_message(struct usage *u, const json_t *msg)
{
	struct anth a;
	json_t *uo;
	int r;

	if ((r = member_object(msg, "usage", &uo)) != 1)
		return r;
	memset(&a, 0, sizeof(a));
	if (anth_read(uo, &a) == -1)
		return -1;
	return anth_commit(u, &a);
}

/* Bytes of generated text in a content_block_delta's delta. */
static int64_t
anth_delta_chars(const json_t *d)
{
	return str_bytes(json_object_get(d, "text")) +
	    str_bytes(json_object_get(d, "partial_json")) +
	    str_bytes(json_object_get(d, "thinking"));
}

int
usage_anthropic_event(struct usage *u, const char *event_name,
    const char *data, size_t len)
{
	json_t *root, *msg, *uo;
	const char *type;
	struct anth a;
	int rc = -1;

	if ((root = load(data, len, LOAD_FLAGS)) == NULL)
		return -1;
	if (!json_is_object(root))
		goto out;
	type = json_string_value(json_object_get(root, "type"));
	if (type != NULL && event_name != NULL && strcmp(type, event_name) != 0)
		goto out;
	if (type == NULL && (type = event_name) == NULL)
		goto out;

	if (strcmp(type, "message_start") == 0) {
		if ((rc = member_object(root, "message", &msg)) == 1)
			rc = anth_message(u, msg);
	} else if (strcmp(type, "message_delta") == 0) {
		if ((rc = member_object(root, "usage", &uo)) != 1)
			goto out;
		/* Start from what message_start said, then replace. */
		memset(&a, 0, sizeof(a));
		if (u->seen) {
			a.read = u->cached_tokens;
			a.write = u->cache_write_tokens;
			a.in = u->input_tokens - a.read - a.write;
			a.out = u->output_tokens;
		}
		rc = anth_read(uo, &a) == -1 ? -1 : anth_commit(u, &a);
	} else if (strcmp(type, "content_block_delta") == 0) {
		rc = 0;
		add_chars(u, anth_delta_chars(json_object_get(root, "delta")));
	} else
		rc = 0;
out:
	json_decref(root);
	return rc;
}

int
usage_anthropic_body(struct usage *u, const char *json, size_t len)
{
	json_t *root;
	const char *type;
	int rc = -1;

	if ((root = load(json, len, LOAD_FLAGS)) == NULL)
		return -1;
	if (!json_is_object(root))
		goto out;
	type = json_string_value(json_object_get(root, "type"));
	if (type != NULL && strcmp(type, "message") != 0)
		rc = 0;		/* an error body, say */
	else if ((rc = anth_message(u, root)) != -1) {
		const json_t *content = json_object_get(root, "content"), *b;
		size_t i;
		int64_t n = 0;

		if (json_is_array(content))
			json_array_foreach(content, i, b)
				n += str_bytes(json_object_get(b, "text")) +
				    str_bytes(json_object_get(b, "thinking"));
		add_chars(u, n);
	}
out:
	json_decref(root);
	return rc;
}

/* ---- Gemini ---- */

static int
gemini_object(struct usage *u, const json_t *obj)
{
	int64_t prompt, tool, cand, thoughts;
	struct usage n;
	json_t *md;
	int r;

	if (!json_is_object(obj))
		return -1;
	if ((r = member_object(obj, "usageMetadata", &md)) != 1)
		return r;
	memset(&n, 0, sizeof(n));
	if (count(md, "promptTokenCount", &prompt) == -1 ||
	    count(md, "toolUsePromptTokenCount", &tool) == -1 ||
	    count(md, "candidatesTokenCount", &cand) == -1 ||
	    count(md, "thoughtsTokenCount", &thoughts) == -1 ||
	    count(md, "cachedContentTokenCount", &n.cached_tokens) == -1)
		return -1;
	n.input_tokens = prompt + tool;
	n.output_tokens = cand + thoughts;
	return commit(u, &n);
}

int
usage_gemini_event(struct usage *u, const char *data, size_t len)
{
	json_t *root;
	int rc;

	if ((root = load(data, len, LOAD_FLAGS)) == NULL)
		return -1;
	rc = gemini_object(u, root);
	json_decref(root);
	return rc;
}

int
usage_gemini_body(struct usage *u, const char *json, size_t len)
{
	struct usage n;
	json_t *root, *el;
	size_t i;
	int rc = 0, r;

	if ((root = load(json, len, LOAD_FLAGS)) == NULL)
		return -1;
	if (!json_is_array(root)) {
		rc = gemini_object(u, root);
		json_decref(root);
		return rc;
	}
	/* All or nothing: work on a copy. */
	n = *u;
	json_array_foreach(root, i, el) {
		if ((r = gemini_object(&n, el)) == -1) {
			rc = -1;
			break;
		}
		if (r == 1)
			rc = 1;
	}
	if (rc == 1)
		*u = n;
	json_decref(root);
	return rc;
}

/* ---- Bedrock (Converse, and InvokeModel's model-native bodies) ---- */

/*
 * A Bedrock usage object whose input count excludes cache reads and
 * writes (as Anthropic's input_tokens does), its four counts named by
 * key[]: input, output, cache read, cache write.  Converse's usage and
 * InvokeModel's "amazon-bedrock-invocationMetrics" differ only in names.
 */
static int
bedrock_usage(struct usage *u, const json_t *uo, const char *const key[4])
{
	int64_t in, out, rd, wr;
	struct usage n;

	if (!json_is_object(uo))
		return -1;
	if (count(uo, key[0], &in) == -1 || count(uo, key[1], &out) == -1 ||
	    count(uo, key[2], &rd) == -1 || count(uo, key[3], &wr) == -1)
		return -1;
	memset(&n, 0, sizeof(n));
	n.input_tokens = in + rd + wr;
	n.output_tokens = out;
	n.cached_tokens = rd;
	n.cache_write_tokens = wr;
	return commit(u, &n);
}

/* Converse's usage object. */
static int
converse_usage(struct usage *u, const json_t *uo)
{
	static const char *const key[4] = { "inputTokens", "outputTokens",
	    "cacheReadInputTokens", "cacheWriteInputTokens" };

	return bedrock_usage(u, uo, key);
}

/* Bytes of generated content in a Converse delta. */
static int64_t
converse_delta_chars(const json_t *d)
{
	return str_bytes(json_object_get(d, "text")) +
	    str_bytes(json_object_get(json_object_get(d, "toolUse"), "input")) +
	    str_bytes(json_object_get(json_object_get(d, "reasoningContent"),
	    "text"));
}

int
usage_converse_event(struct usage *u, const char *event_name,
    const char *data, size_t len)
{
	json_t *root, *uo;
	int rc = -1;

	if ((root = load(data, len, LOAD_FLAGS)) == NULL)
		return -1;
	if (!json_is_object(root))
		goto out;
	if (event_name == NULL || strcmp(event_name, "metadata") == 0) {
		if ((rc = member_object(root, "usage", &uo)) == 1)
			rc = converse_usage(u, uo);
	} else if (strcmp(event_name, "contentBlockDelta") == 0) {
		add_chars(u, converse_delta_chars(json_object_get(root,
		    "delta")));
		rc = 0;
	} else
		rc = 0;
out:
	json_decref(root);
	return rc;
}

int
usage_converse_body(struct usage *u, const char *json, size_t len)
{
	json_t *root, *uo, *content, *b;
	int64_t n = 0;
	size_t i;
	int rc = -1;

	if ((root = load(json, len, LOAD_FLAGS)) == NULL)
		return -1;
	if (!json_is_object(root))
		goto out;
	if ((rc = member_object(root, "usage", &uo)) == 1)
		rc = converse_usage(u, uo);
	if (rc != -1) {
		content = json_object_get(json_object_get(json_object_get(root,
		    "output"), "message"), "content");
		if (json_is_array(content))
			json_array_foreach(content, i, b)
				n += str_bytes(json_object_get(b, "text"));
		add_chars(u, n);
	}
out:
	json_decref(root);
	return rc;
}

/* "amazon-bedrock-invocationMetrics" of an invoke stream's last chunk:
 * Bedrock's own count, which replaces what the model's events said. */
static int
invocation_metrics(struct usage *u, const json_t *m)
{
	static const char *const key[4] = { "inputTokenCount",
	    "outputTokenCount", "cacheReadInputTokenCount",
	    "cacheWriteInputTokenCount" };

	return bedrock_usage(u, m, key);
}

/* One model-native event (the decoded "bytes" of a chunk). */
static int
native_inner(struct usage *u, const char *p, size_t n)
{
	json_t *root, *m, *md;
	int rc = -1;

	if ((root = load(p, n, LOAD_FLAGS)) == NULL)
		return -1;
	if (!json_is_object(root))
		goto out;
	m = json_object_get(root, "amazon-bedrock-invocationMetrics");
	if (json_is_string(json_object_get(root, "type"))) {
		/* Claude: Anthropic's events, then Bedrock's metrics */
		rc = usage_anthropic_event(u, NULL, p, n);
		if (rc != -1 && m != NULL)
			rc = invocation_metrics(u, m);
	} else if (m != NULL)
		rc = invocation_metrics(u, m);
	else if ((md = json_object_get(root, "metadata")) != NULL)
		rc = json_is_object(md) && json_object_get(md, "usage") ?
		    converse_usage(u, json_object_get(md, "usage")) : 0;
	else {
		/* Nova's native stream: contentBlockDelta.delta.text */
		add_chars(u, converse_delta_chars(json_object_get(
		    json_object_get(root, "contentBlockDelta"), "delta")));
		rc = 0;
	}
out:
	json_decref(root);
	return rc;
}

int
usage_bedrock_invoke_event(struct usage *u, const char *event_name,
    const char *data, size_t len)
{
	json_t *root, *b;
	unsigned char *raw = NULL;
	size_t rl = 0, bl;
	int rc = -1;

	if (event_name != NULL && strcmp(event_name, "chunk") != 0)
		return 0;		/* an exception, say */
	if ((root = load(data, len, LOAD_FLAGS)) == NULL)
		return -1;
	b = json_object_get(root, "bytes");
	if (!json_is_object(root) || !json_is_string(b))
		goto out;
	bl = json_string_length(b);
	if ((raw = malloc(3 * (bl / 4) + 3)) == NULL ||
	    evs_b64_decode(json_string_value(b), bl, raw, &rl) != 0)
		goto out;
	rc = native_inner(u, (const char *)raw, rl);
out:
	free(raw);
	json_decref(root);
	return rc;
}

int
usage_bedrock_invoke_body(struct usage *u, const char *json, size_t len)
{
	json_t *root, *uo;
	int rc = -1;

	if ((root = load(json, len, LOAD_FLAGS)) == NULL)
		return -1;
	if (!json_is_object(root))
		goto out;
	if ((rc = member_object(root, "usage", &uo)) == 1) {
		if (json_object_get(uo, "input_tokens") != NULL)
			rc = usage_anthropic_body(u, json, len);	/* Claude */
		else
			rc = converse_usage(u, uo);		/* Nova */
	}
out:
	json_decref(root);
	return rc;
}

int
usage_read_evs(enum prov_dialect d, struct usage *u, const struct evs_msg *m)
{
	char name[128];
	const char *v;
	size_t n;

	if ((v = evs_str(m, ":event-type", &n)) == NULL &&
	    (v = evs_str(m, ":exception-type", &n)) == NULL)
		return 0;
	if (!evs_str_is(m, ":message-type", "event") || n >= sizeof(name))
		return 0;		/* exceptions carry no usage */
	memcpy(name, v, n);
	name[n] = '\0';
	return usage_read_event(d, u, name, (const char *)m->payload,
	    m->payload_len);
}

/* ---- by dialect ---- */

int
usage_read_event(enum prov_dialect d, struct usage *u, const char *event_name,
    const char *data, size_t len)
{
	if (data == NULL)
		return 0;
	switch (d) {
	case DIA_OPENAI:
		return usage_openai_event(u, data, len);
	case DIA_ANTHROPIC:
		return usage_anthropic_event(u, event_name, data, len);
	case DIA_GEMINI:
		return usage_gemini_event(u, data, len);
	case DIA_CONVERSE:
		return usage_converse_event(u, event_name, data, len);
	case DIA_NATIVE:
		return usage_bedrock_invoke_event(u, event_name, data, len);
	default:
		return 0;
	}
}

int
usage_read_body(enum prov_dialect d, struct usage *u, const char *json,
    size_t len)
{
	switch (d) {
	case DIA_OPENAI:
		return usage_openai_body(u, json, len);
	case DIA_ANTHROPIC:
		return usage_anthropic_body(u, json, len);
	case DIA_GEMINI:
		return usage_gemini_body(u, json, len);
	case DIA_CONVERSE:
		return usage_converse_body(u, json, len);
	case DIA_NATIVE:
		return usage_bedrock_invoke_body(u, json, len);
	default:
		return 0;
	}
}
/* ---- OpenAI Realtime ---- */

int
usage_realtime_event(struct usage *u, const char *data, size_t len)
{
	struct usage n;
	json_t *root, *resp, *uo, *details;
	const char *type;
	int rc = -1;

	if ((root = load(data, len, LOAD_FLAGS)) == NULL)
		return -1;
	if (!json_is_object(root))
		goto out;
	type = json_string_value(json_object_get(root, "type"));
	rc = 0;
	if (type == NULL || strcmp(type, "response.done") != 0)
		goto out;
	rc = -1;
	if (member_object(root, "response", &resp) == -1)
		goto out;
	rc = 0;
	if (resp == NULL)
		goto out;
	rc = -1;
	if (member_object(resp, "usage", &uo) == -1)
		goto out;
	rc = 0;
	if (uo == NULL)
		goto out;
	rc = -1;
	memset(&n, 0, sizeof(n));
	if (count(uo, "input_tokens", &n.input_tokens) == -1 ||
	    count(uo, "output_tokens", &n.output_tokens) == -1 ||
	    member_object(uo, "input_token_details", &details) == -1)
		goto out;
	if (details != NULL &&
	    count(details, "cached_tokens", &n.cached_tokens) == -1)
		goto out;
	rc = commit(u, &n);
out:
	json_decref(root);
	return rc;
}
