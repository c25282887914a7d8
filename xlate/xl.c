/*
 * xlate/xl: the pair table, the dispatch of the public API (parse, call
 * the row, dump), the error shapes of each dialect and the error type
 * table, stop reasons, and the buffer and JSON helpers the pair files
 * share.  See xl.h.
 */
#include "xlate/xl_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- the pair table: a new dialect pair is a row ---- */

static const struct xl_pair pairs[] = {
	{ DIA_OPENAI, DIA_ANTHROPIC, xl_oa_an_request, xl_oa_an_response,
	    xl_oa_an_event, xl_oa_an_end },
	{ DIA_ANTHROPIC, DIA_OPENAI, xl_an_oa_request, xl_an_oa_response,
	    xl_an_oa_event, xl_an_oa_end },
	{ DIA_OPENAI, DIA_GEMINI, xl_oa_gm_request, xl_oa_gm_response,
	    xl_oa_gm_event, xl_oa_gm_end },
	{ DIA_OPENAI, DIA_CONVERSE, xl_oa_cv_request, xl_oa_cv_response,
	    xl_oa_cv_event, xl_oa_cv_end },
	/* Anthropic on Bedrock (lib/prov's table): Claude's native body */
	{ DIA_ANTHROPIC, DIA_NATIVE, xl_an_br_request, xl_an_br_response,
	    xl_an_br_event, xl_an_br_end },
	{ DIA_GEMINI, DIA_OPENAI, xl_gm_oa_request, xl_gm_oa_response,
	    xl_gm_oa_event, xl_gm_oa_end },
	/* the Bedrock surface on OpenAI-dialect providers: its stream
	 * functions write event-stream frames, not SSE */
	{ DIA_CONVERSE, DIA_OPENAI, xl_cv_oa_request, xl_cv_oa_response,
	    xl_cv_oa_event, xl_cv_oa_end },
};

static const struct xl_pair *
pair(enum prov_dialect from, enum prov_dialect to)
{
	for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++)
		if (pairs[i].from == from && pairs[i].to == to)
			return &pairs[i];
	return NULL;
}

int
xl_can(enum prov_dialect from, enum prov_dialect to)
{
	return pair(from, to) != NULL;
}

/* ---- buffers ---- */

void
xl_buf_free(struct xl_buf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}

void
xl_buf_reset(struct xl_buf *b)
{
	b->len = 0;
	if (b->p != NULL)
		b->p[0] = '\0';
}

int
xl_buf_add(struct xl_buf *b, const void *p, size_t n)
{
	if (b->cap - b->len <= n || b->p == NULL) {
		size_t cap = b->cap ? b->cap : 256;
		char *np;

		while (cap - b->len <= n) {
			if (cap > ((size_t)-1) / 2)
				return -1;
			cap *= 2;
		}
		if ((np = realloc(b->p, cap)) == NULL)
			return -1;
		b->p = np;
		b->cap = cap;
	}
	if (n > 0)
		memcpy(b->p + b->len, p, n);
	b->len += n;
	b->p[b->len] = '\0';
	return 0;
}

int
xl_buf_adds(struct xl_buf *b, const char *s)
{
	return xl_buf_add(b, s, strlen(s));
}

static int
dump_cb(const char *p, size_t n, void *arg)
{
	return xl_buf_add(arg, p, n);
}

int
xl_buf_json(struct xl_buf *b, const json_t *o)
{
	size_t was = b->len;

	if (o == NULL || json_dump_callback(o, dump_cb, b,
	    JSON_COMPACT | JSON_REAL_PRECISION(15)) != 0) {
		if (b->p != NULL) {
			b->len = was;
			b->p[was] = '\0';
		}
		return -1;
	}
	return 0;
}

int
xl_sse(struct xl_buf *b, const char *name, json_t *o)
{
	size_t was = b->len;
	int rc = 0;

	if (o == NULL)
		return -1;
	if (name != NULL && (xl_buf_adds(b, "event: ") == -1 ||
	    xl_buf_adds(b, name) == -1 || xl_buf_adds(b, "\n") == -1))
		rc = -1;
	if (rc == 0 && (xl_buf_adds(b, "data: ") == -1 ||
	    xl_buf_json(b, o) == -1 || xl_buf_adds(b, "\n\n") == -1))
		rc = -1;
	if (rc == -1 && b->p != NULL) {
		b->len = was;
		b->p[was] = '\0';
	}
	json_decref(o);
	return rc;
}

/* ---- JSON helpers ---- */

json_t *
xl_fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err != NULL && errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return NULL;
}

const char *
xl_str(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

long long
xl_count(const json_t *v)
{
	json_int_t n;

	if (!json_is_integer(v))
		return 0;
	n = json_integer_value(v);
	if (n < 0)
		return 0;
	return n > XL_MAX_COUNT ? XL_MAX_COUNT : (long long)n;
}

int
xl_set(json_t *o, const char *key, json_t *v)
{
	if (v == NULL)
		return -1;
	return json_object_set_new(o, key, v);
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0. */
static size_t
utf8_len(const unsigned char *s, size_t n)
{
	size_t need;
	unsigned cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		need = 2, cp = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		need = 3, cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		need = 4, cp = s[0] & 0x07;
	else
		return 0;
	if (n < need)
		return 0;
	for (size_t i = 1; i < need; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((need == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (need == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return need;
}

json_t *
xl_text(const char *s, size_t n, size_t max)
{
	struct xl_buf b = { 0 };
	json_t *j;
	size_t i = 0;

	while (i < n) {
		size_t k = s[i] == '\0' ? 0 :	/* NUL: '?' too */
		    utf8_len((const unsigned char *)s + i, n - i);

		if (b.len + (k ? k : 1) > max)
			break;
		if (xl_buf_add(&b, k ? s + i : "?", k ? k : 1) == -1)
			break;
		i += k ? k : 1;
	}
	j = json_stringn(b.p ? b.p : "", b.len);
	xl_buf_free(&b);
	return j;
}

void
xl_make_id(char *dst, size_t dstlen, const char *prefix, const char *src)
{
	size_t n = 0, pl = strlen(prefix);

	snprintf(dst, dstlen, "%s", prefix);
	if (src == NULL || pl >= dstlen)
		return;
	/* whole UTF-8 sequences of printable ids only; stop at the first
	 * byte that is not */
	while (n < XL_MAX_ID && pl + n + 1 < dstlen && src[n] != '\0') {
		size_t k = utf8_len((const unsigned char *)src + n,
		    strlen(src + n));

		if (k == 0 || (k == 1 && (unsigned char)src[n] < 0x20) ||
		    n + k > XL_MAX_ID || pl + n + k + 1 > dstlen)
			break;
		n += k;
	}
	memcpy(dst + pl, src, n);
	dst[pl + n] = '\0';
}

/* ---- stop reasons ---- */

static const struct {
	const char *anthropic, *openai;
} stops[] = {
	/* first row per name wins in each direction */
	{ "end_turn", "stop" },
	{ "max_tokens", "length" },
	{ "tool_use", "tool_calls" },
	{ "refusal", "content_filter" },
	{ "stop_sequence", "stop" },
	{ "pause_turn", "stop" },
	{ "model_context_window_exceeded", "length" },
	{ "tool_use", "function_call" },
};

const char *
xl_stop_to_openai(const char *a)
{
	for (size_t i = 0; a != NULL && i < sizeof(stops) / sizeof(stops[0]);
	    i++)
		if (strcmp(stops[i].anthropic, a) == 0)
			return stops[i].openai;
	return "stop";
}

const char *
xl_stop_to_anthropic(const char *o)
{
	for (size_t i = 0; o != NULL && i < sizeof(stops) / sizeof(stops[0]);
	    i++)
		if (strcmp(stops[i].openai, o) == 0)
			return stops[i].anthropic;
	return "end_turn";
}

/*
 * One OpenAI stream event's data for a user of dialect `user`: 1 with *jp
 * the chunk (the caller frees it; its choices an array and its usage an
 * object when present), 0 when it was an error chunk (written to out as
 * the user's error event, s->done set, *rc the writer's result), -1 when
 * it is not a chunk.
 */
int
xl_openai_event_parse(struct xl_stream *s, enum prov_dialect user,
    const char *data, size_t len, json_t **jp, struct xl_buf *out, int *rc)
{
	json_t *j = json_loadb(data, len, 0, NULL), *chs, *u;

	*jp = NULL;
	if (!json_is_object(j)) {	/* json_is_* evaluate twice */
		json_decref(j);
		return -1;
	}
	if (json_object_get(j, "error") != NULL &&
	    !json_is_null(json_object_get(j, "error"))) {
		s->done = 1;
		*rc = xl_stream_error_json(user, DIA_OPENAI, j, out);
		json_decref(j);
		return 0;
	}
	chs = json_object_get(j, "choices");
	u = json_object_get(j, "usage");
	if ((chs != NULL && !json_is_null(chs) && !json_is_array(chs)) ||
	    (u != NULL && !json_is_null(u) && !json_is_object(u))) {
		json_decref(j);
		return -1;
	}
	*jp = j;
	return 1;
}

/* One OpenAI chat.completion.chunk with one choice (delta, finish reason
 * or null), "usage":null when the user asked for the usage chunk; the
 * delta is taken (NULL: -1). */
int
xl_openai_chunk(struct xl_stream *s, json_t *delta, const char *finish,
    struct xl_buf *out)
{
	json_t *c;

	if (delta == NULL)
		return -1;
	c = json_pack("{s:s, s:s, s:I, s:s, s:[{s:i, s:o, s:n, s:s?}]}",
	    "id", s->id[0] ? s->id : "chatcmpl-0", "object",
	    "chat.completion.chunk", "created", (json_int_t)s->created,
	    "model", s->model ? s->model : "", "choices", "index", 0,
	    "delta", delta, "logprobs", "finish_reason", finish);
	if (c != NULL && s->include_usage)
		json_object_set_new(c, "usage", json_null());
	return xl_sse(out, NULL, c);
}

json_t *
xl_openai_usage(long long in, long long out, long long cache_read,
    long long cache_write)
{
	long long prompt = in + cache_read + cache_write;	/* <= 3e12 */

	return json_pack("{s:I, s:I, s:I, s:{s:I}}",
	    "prompt_tokens", (json_int_t)prompt,
	    "completion_tokens", (json_int_t)out,
	    "total_tokens", (json_int_t)(prompt + out),
	    "prompt_tokens_details", "cached_tokens", (json_int_t)cache_read);
}

/* ---- errors: one class table, a reader and a writer per dialect ---- */

enum xl_ecls {
	XE_INVALID = 0, XE_AUTH, XE_BILLING, XE_PERMISSION, XE_NOT_FOUND,
	XE_TOO_LARGE, XE_RATE, XE_SERVER, XE_OVERLOADED, XE_TIMEOUT,
	XE_COUNT
};

/* Row per class: each dialect's type name and the status it goes with. */
static const struct {
	const char *anthropic, *openai, *gemini;
	int status;
} ecls[XE_COUNT] = {
	[XE_INVALID]	= { "invalid_request_error", "invalid_request_error",
			    "INVALID_ARGUMENT", 400 },
	[XE_AUTH]	= { "authentication_error", "authentication_error",
			    "UNAUTHENTICATED", 401 },
	[XE_BILLING]	= { "billing_error", "insufficient_quota",
			    "FAILED_PRECONDITION", 402 },
	[XE_PERMISSION]	= { "permission_error", "permission_error",
			    "PERMISSION_DENIED", 403 },
	[XE_NOT_FOUND]	= { "not_found_error", "not_found_error", "NOT_FOUND",
			    404 },
	[XE_TOO_LARGE]	= { "request_too_large", "invalid_request_error",
			    "INVALID_ARGUMENT", 413 },
	[XE_RATE]	= { "rate_limit_error", "rate_limit_error",
			    "RESOURCE_EXHAUSTED", 429 },
	[XE_SERVER]	= { "api_error", "server_error", "INTERNAL", 500 },
	[XE_OVERLOADED]	= { "overloaded_error", "server_error", "UNAVAILABLE",
			    529 },
	[XE_TIMEOUT]	= { "timeout_error", "timeout", "DEADLINE_EXCEEDED",
			    504 },
};

/* OpenAI type names beyond the table's (read only). */
static const struct {
	const char *openai;
	enum xl_ecls cls;
} oa_alias[] = {
	{ "requests", XE_RATE }, { "tokens", XE_RATE },
	{ "rate_limit_exceeded", XE_RATE }, { "api_error", XE_SERVER },
};

/* An error read from a provider body. */
struct xl_err {
	enum xl_ecls cls;
	const char *type;	/* the provider's type, or NULL */
	json_t	*message;	/* a JSON string (owned) */
	json_t	*param, *code;	/* OpenAI's, borrowed, or NULL */
	enum prov_dialect dialect;
};

static enum xl_ecls
cls_of_status(int status)
{
	for (int c = 0; c < XE_COUNT; c++)
		if (ecls[c].status == status)
			return c;
	if (status == 503)
		return XE_OVERLOADED;
	return status >= 500 || status < 400 ? XE_SERVER : XE_INVALID;
}

static int
cls_of_type(enum prov_dialect d, const char *t)
{
	if (t == NULL)
		return -1;
	for (int c = 0; c < XE_COUNT; c++)
		if (strcmp(d == DIA_ANTHROPIC ? ecls[c].anthropic :
		    d == DIA_GEMINI ? ecls[c].gemini : ecls[c].openai, t) == 0)
			return c;
	for (size_t i = 0; d == DIA_OPENAI &&
	    i < sizeof(oa_alias) / sizeof(oa_alias[0]); i++)
		if (strcmp(oa_alias[i].openai, t) == 0)
			return oa_alias[i].cls;
	return -1;
}

/* Anthropic's types are precise: the type decides, the status otherwise. */
static int
err_read_anthropic(json_t *j, int status, struct xl_err *e)
{
	json_t *er = json_object_get(j, "error");
	json_t *msg = json_object_get(er, "message");
	int c;

	if (!json_is_object(er) || !json_is_string(msg))
		return -1;
	e->type = xl_str(er, "type");
	c = cls_of_type(DIA_ANTHROPIC, e->type);
	e->cls = c >= 0 ? (enum xl_ecls)c : cls_of_status(status);
	e->message = json_incref(msg);
	return 0;
}

/* OpenAI says invalid_request_error for a bad key too: a status with a
 * class of its own decides, else the type, else the status. */
static int
err_read_openai(json_t *j, int status, struct xl_err *e)
{
	json_t *er = json_object_get(j, "error");
	json_t *msg = json_object_get(er, "message");
	int c, sc;

	if (json_is_string(er)) {		/* some compatibles */
		e->message = json_incref(er);
		e->cls = cls_of_status(status);
		return 0;
	}
	if (!json_is_object(er) || !json_is_string(msg))
		return -1;
	e->type = xl_str(er, "type");
	e->param = json_object_get(er, "param");
	e->code = json_object_get(er, "code");
	e->message = json_incref(msg);
	c = cls_of_type(DIA_OPENAI, e->type);
	sc = cls_of_status(status);
	if (c < 0 || (status >= 400 && status <= 599 && sc != XE_INVALID &&
	    sc != XE_SERVER && c != XE_BILLING))
		c = sc;
	e->cls = (enum xl_ecls)c;
	return 0;
}

static json_t *
err_write_openai(const struct xl_err *e)
{
	json_t *param = e->param && e->dialect == DIA_OPENAI ?
	    json_incref(e->param) : json_null();
	json_t *code;

	if (e->dialect == DIA_OPENAI)
		code = e->code ? json_incref(e->code) : json_null();
	else
		code = e->type ? json_string(e->type) : json_null();
	return json_pack("{s:{s:O, s:s, s:o, s:o}}", "error", "message",
	    e->message, "type", ecls[e->cls].openai, "param", param,
	    "code", code);
}

/* Google's status names: the status decides when it has a class of its
 * own (a bad key is 400 INVALID_ARGUMENT there), else the name. */
static int
err_read_gemini(json_t *j, int status, struct xl_err *e)
{
	json_t *er = json_object_get(j, "error");
	json_t *msg = json_object_get(er, "message");
	int c;

	if (json_is_array(j))		/* a stream without alt=sse */
		return err_read_gemini(json_array_get(j, 0), status, e);
	if (!json_is_object(er) || !json_is_string(msg))
		return -1;
	e->type = xl_str(er, "status");
	c = cls_of_type(DIA_GEMINI, e->type);
	if (c < 0 || (status >= 400 && status <= 599 &&
	    cls_of_status(status) != XE_INVALID))
		c = cls_of_status(status);
	e->cls = (enum xl_ecls)c;
	e->message = json_incref(msg);
	return 0;
}

static json_t *
err_write_gemini(const struct xl_err *e)
{
	return json_pack("{s:{s:i, s:O, s:s}}", "error", "code",
	    ecls[e->cls].status == 529 ? 503 : ecls[e->cls].status,
	    "message", e->message, "status", ecls[e->cls].gemini);
}

static json_t *
err_write_anthropic(const struct xl_err *e)
{
	return json_pack("{s:s, s:{s:s, s:O}}", "type", "error", "error",
	    "type", ecls[e->cls].anthropic, "message", e->message);
}

/* Bedrock's errors: {"message": ...} (the type is in the x-amzn-errortype
 * header, which the hub does not see): the status decides the class. */
static int
err_read_bedrock(json_t *j, int status, struct xl_err *e)
{
	json_t *msg = json_object_get(j, "message");

	if (!json_is_string(msg))
		msg = json_object_get(j, "Message");
	if (!json_is_string(msg))
		return -1;
	e->type = NULL;
	e->cls = cls_of_status(status);
	e->message = json_incref(msg);
	return 0;
}

static json_t *
err_write_bedrock(const struct xl_err *e)
{
	return json_pack("{s:O}", "message", e->message);
}

/* Per dialect: read its error body, write an error in its shape, and
 * the SSE event name its stream errors use (NULL: a data-only event). */
static const struct {
	int	(*read)(json_t *, int, struct xl_err *);
	json_t	*(*write)(const struct xl_err *);
	const char *sse_name;
} dialects[DIA_COUNT] = {
	[DIA_OPENAI] = { err_read_openai, err_write_openai, NULL },
	[DIA_ANTHROPIC] = { err_read_anthropic, err_write_anthropic, "error" },
	[DIA_GEMINI] = { err_read_gemini, err_write_gemini, NULL },
	[DIA_CONVERSE] = { err_read_bedrock, err_write_bedrock, NULL },
	[DIA_NATIVE] = { err_read_bedrock, err_write_bedrock, NULL },
};

/* Write e in dialect from's shape; falls back to OpenAI's for a dialect
 * without a row. */
static json_t *
err_write(enum prov_dialect from, const struct xl_err *e)
{
	if ((unsigned)from >= DIA_COUNT || dialects[from].write == NULL)
		from = DIA_OPENAI;
	return dialects[from].write(e);
}

static void
err_fallback(struct xl_buf *out)
{
	xl_buf_adds(out, "{\"error\":{\"message\":\"error\"}}");
}

void
xl_error(enum prov_dialect from, enum prov_dialect to, int status,
    const char *body, size_t len, struct xl_buf *out)
{
	struct xl_err e = { .cls = cls_of_status(status), .dialect = to };
	json_t *j = NULL, *o;
	char msg[64];

	if (body != NULL && len > 0)
		j = json_loadb(body, len, 0, NULL);
	if (j == NULL || (unsigned)to >= DIA_COUNT ||
	    dialects[to].read == NULL || dialects[to].read(j, status, &e) == -1) {
		e.type = NULL;
		e.param = e.code = NULL;
		if (body != NULL && len > 0)
			e.message = xl_text(body, len, 1024);
		else {
			snprintf(msg, sizeof(msg),
			    "provider returned HTTP %d", status);
			e.message = json_string(msg);
		}
	}
	o = e.message ? err_write(from, &e) : NULL;
	if (xl_buf_json(out, o) == -1)
		err_fallback(out);
	json_decref(o);
	json_decref(e.message);
	json_decref(j);
}

void
xl_error_msg(enum prov_dialect from, int status, const char *message,
    struct xl_buf *out)
{
	/* ours: no provider type or code */
	struct xl_err e = { .cls = cls_of_status(status), .dialect = DIA_COUNT };
	json_t *o;

	e.message = xl_text(message ? message : "", message ?
	    strlen(message) : 0, 4096);
	o = e.message ? err_write(from, &e) : NULL;
	if (xl_buf_json(out, o) == -1)
		err_fallback(out);
	json_decref(o);
	json_decref(e.message);
}

int
xl_stream_error(enum prov_dialect d, const char *an_type,
    const char *message, struct xl_buf *out)
{
	struct xl_err e = { .cls = XE_SERVER, .dialect = DIA_COUNT };
	int c = cls_of_type(DIA_ANTHROPIC, an_type), rc;

	if (c >= 0)
		e.cls = (enum xl_ecls)c;
	e.message = json_string(message);
	if (e.message == NULL)
		return -1;
	rc = xl_sse(out, dialects[d].sse_name, err_write(d, &e));
	json_decref(e.message);
	return rc;
}

int
xl_stream_error_json(enum prov_dialect from, enum prov_dialect to,
    json_t *j, struct xl_buf *out)
{
	struct xl_err e = { .cls = XE_SERVER, .dialect = to };
	int rc;

	if (dialects[to].read(j, 0, &e) == -1)
		return xl_stream_error(from, "api_error",
		    "provider stream error", out);
	rc = xl_sse(out, dialects[from].sse_name, err_write(from, &e));
	json_decref(e.message);
	return rc;
}

/* ---- the public calls ---- */

static json_t *
parse(const char *body, size_t len, const char *what, char *err,
    size_t errlen)
{
	json_error_t je;
	json_t *j;

	if (body == NULL)
		return xl_fail(err, errlen, "%s is empty", what);
	if ((j = json_loadb(body, len, 0, &je)) == NULL)
		return xl_fail(err, errlen, "%s is not JSON: %s", what,
		    je.text);
	if (!json_is_object(j)) {
		json_decref(j);
		return xl_fail(err, errlen, "%s is not a JSON object", what);
	}
	return j;
}

static int
finish(json_t *in, json_t *res, struct xl_buf *out, char *err,
    size_t errlen)
{
	int rc = 0;

	json_decref(in);
	if (res == NULL)
		return -1;
	if (xl_buf_json(out, res) == -1) {
		xl_fail(err, errlen, "out of memory");
		rc = -1;
	}
	json_decref(res);
	return rc;
}

int
xl_request(enum prov_dialect from, enum prov_dialect to, const char *body,
    size_t len, const char *model, int stream, struct xl_buf *out,
    char *err, size_t errlen)
{
	const struct xl_pair *p = pair(from, to);
	json_t *in;

	if (p == NULL) {
		xl_fail(err, errlen, "no translation between these APIs");
		return -1;
	}
	if ((in = parse(body, len, "request body", err, errlen)) == NULL)
		return -1;
	return finish(in, p->request(in, model, stream, err, errlen), out,
	    err, errlen);
}

int
xl_include_usage(enum prov_dialect from, const char *body, size_t len)
{
	json_t *j, *v;
	int r;

	if (from != DIA_OPENAI || body == NULL ||
	    (j = json_loadb(body, len, 0, NULL)) == NULL)
		return 0;
	v = json_object_get(json_object_get(j, "stream_options"),
	    "include_usage");
	r = json_is_true(v);
	json_decref(j);
	return r;
}

int
xl_response(enum prov_dialect from, enum prov_dialect to, const char *body,
    size_t len, const char *model, struct xl_buf *out, char *err,
    size_t errlen)
{
	const struct xl_pair *p = pair(from, to);
	json_t *in;

	if (p == NULL) {
		xl_fail(err, errlen, "no translation between these APIs");
		return -1;
	}
	if ((in = parse(body, len, "provider response", err, errlen)) == NULL)
		return -1;
	return finish(in, p->response(in, model, err, errlen), out, err,
	    errlen);
}

struct xl_stream *
xl_stream_new(enum prov_dialect from, enum prov_dialect to,
    const char *model, int include_usage)
{
	const struct xl_pair *p = pair(from, to);
	struct xl_stream *s;

	if (p == NULL || (s = calloc(1, sizeof(*s))) == NULL)
		return NULL;
	s->pair = p;
	if (model != NULL && (s->model = strdup(model)) == NULL) {
		free(s);
		return NULL;
	}
	s->created = (long long)time(NULL);
	s->include_usage = include_usage != 0;
	return s;
}

int
xl_stream_event(struct xl_stream *s, const char *name, const char *data,
    size_t len, struct xl_buf *out)
{
	size_t was = out->len;
	int rc;

	if (s->done)
		return 1;
	if (data == NULL)
		return 0;		/* a comment-only block */
	rc = s->pair->event(s, name, data, len, out);
	if (rc == -1 && out->p != NULL) {
		out->len = was;
		out->p[was] = '\0';
	}
	return rc == -1 ? -1 : s->done;
}

void
xl_stream_end(struct xl_stream *s, int ok, struct xl_buf *out)
{
	if (s->done)
		return;
	s->pair->end(s, ok, out);
	s->done = 1;
}

void
xl_stream_free(struct xl_stream *s)
{
	if (s == NULL)
		return;
	if (s->priv_free != NULL)
		s->priv_free(s->priv);
	free(s->model);
	free(s);
}
