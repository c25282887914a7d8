/*
 * xlate/xl_int: what the files of xlate/ share and nobody else sees: the
 * row of the pair table, the stream translator's state, and the small
 * JSON and buffer helpers (xl.c).
 */
#ifndef SWB_XL_INT_H
#define SWB_XL_INT_H

#include <stdarg.h>
#include <jansson.h>

#include "xlate/xl.h"

#define XL_MAX_COUNT	1000000000000LL	/* usage counts clamp to 10^12 */
#define XL_MAX_BLOCKS	1024	/* content blocks / tool calls per stream */
#define XL_MAX_ID	128	/* bytes of an upstream id we copy */

struct xl_stream;

/*
 * One row per (user dialect, provider dialect).  request: the user's
 * parsed body -> the provider's (NULL + err on refusal); response: the
 * provider's parsed body -> the user's; event/end: the stream translator
 * (xl_stream_event/xl_stream_end after the generic checks).
 */
struct xl_pair {
	enum prov_dialect from, to;
	json_t	*(*request)(json_t *in, const char *model, int stream,
		    char *err, size_t errlen);
	json_t	*(*response)(json_t *in, const char *model, char *err,
		    size_t errlen);
	int	 (*event)(struct xl_stream *, const char *name,
		    const char *data, size_t len, struct xl_buf *out);
	void	 (*end)(struct xl_stream *, int ok, struct xl_buf *out);
};

/* What a provider block (Anthropic) or tool call (OpenAI) became. */
enum xl_kind { XK_NONE = 0, XK_TEXT, XK_TOOL, XK_THINK, XK_OTHER };

/*
 * One stream translator, written only by its pair's event/end functions.
 * Generic: pair, model, created, include_usage, done.  Usage as Anthropic
 * counts (input excludes cache reads/writes) whichever the direction.
 */
struct xl_stream {
	const struct xl_pair *pair;
	char	*model;			/* the user sees; NULL: provider's */
	char	 id[XL_MAX_ID + 16];	/* the user's message/completion id */
	long long created;		/* OpenAI `created` */
	int	 include_usage;		/* OpenAI user wants the usage chunk */
	int	 done;			/* the user's stream was closed */
	int	 started;		/* role chunk / message_start sent */
	int	 finished;		/* the provider's finish was seen */
	int	 finish_sent;		/* finish chunk / message_delta sent */
	int	 usage_seen;
	long long in, out, cache_read, cache_write;
	const char *stop;		/* the user's stop reason (static) */
	/* Anthropic provider: block index -> kind, OpenAI tool index */
	unsigned char kind[XL_MAX_BLOCKS];
	short	 tool[XL_MAX_BLOCKS];
	int	 ntools;
	/* OpenAI provider: the open Anthropic block and tool calls */
	int	 open;			/* enum xl_kind of the open block */
	int	 nblocks;		/* Anthropic blocks started */
	int	 cur_tool;		/* OpenAI index of the open tool block */
	unsigned char tool_seen[XL_MAX_BLOCKS];	/* OpenAI index started */
	/* A pair's own state, set by its event function; xl_stream_free
	 * calls priv_free(priv) when set. */
	void	*priv;
	void	 (*priv_free)(void *);
};

/* The pair functions (xl_oa_an.c: OpenAI user, Anthropic provider;
 * xl_an_oa.c: Anthropic user, OpenAI provider). */
json_t	*xl_oa_an_request(json_t *, const char *, int, char *, size_t);
json_t	*xl_oa_an_response(json_t *, const char *, char *, size_t);
int	 xl_oa_an_event(struct xl_stream *, const char *, const char *,
	    size_t, struct xl_buf *);
void	 xl_oa_an_end(struct xl_stream *, int, struct xl_buf *);
json_t	*xl_an_oa_request(json_t *, const char *, int, char *, size_t);
json_t	*xl_an_oa_response(json_t *, const char *, char *, size_t);
int	 xl_an_oa_event(struct xl_stream *, const char *, const char *,
	    size_t, struct xl_buf *);
void	 xl_an_oa_end(struct xl_stream *, int, struct xl_buf *);
/* xl_oa_gm.c: OpenAI user, Gemini provider. */
json_t	*xl_oa_gm_request(json_t *, const char *, int, char *, size_t);
json_t	*xl_oa_gm_response(json_t *, const char *, char *, size_t);
int	 xl_oa_gm_event(struct xl_stream *, const char *, const char *,
	    size_t, struct xl_buf *);
void	 xl_oa_gm_end(struct xl_stream *, int, struct xl_buf *);
/* xl_gm_oa.c: Gemini user, OpenAI provider. */
json_t	*xl_gm_oa_request(json_t *, const char *, int, char *, size_t);
json_t	*xl_gm_oa_response(json_t *, const char *, char *, size_t);
int	 xl_gm_oa_event(struct xl_stream *, const char *, const char *,
	    size_t, struct xl_buf *);
void	 xl_gm_oa_end(struct xl_stream *, int, struct xl_buf *);

/* xl_oa_cv.c: OpenAI user, Bedrock Converse provider; xl_an_br.c:
 * Anthropic user, Claude's body on Bedrock's InvokeModel. */
json_t	*xl_oa_cv_request(json_t *, const char *, int, char *, size_t);
json_t	*xl_oa_cv_response(json_t *, const char *, char *, size_t);
int	 xl_oa_cv_event(struct xl_stream *, const char *, const char *,
	    size_t, struct xl_buf *);
void	 xl_oa_cv_end(struct xl_stream *, int, struct xl_buf *);
const char *xl_stop_cv_to_openai(const char *converse);
json_t	*xl_an_br_request(json_t *, const char *, int, char *, size_t);
json_t	*xl_an_br_response(json_t *, const char *, char *, size_t);
int	 xl_an_br_event(struct xl_stream *, const char *, const char *,
	    size_t, struct xl_buf *);
void	 xl_an_br_end(struct xl_stream *, int, struct xl_buf *);
/* xl_cv_oa.c: Bedrock Converse user, OpenAI provider (the stream
 * functions append AWS event-stream frames). */
json_t	*xl_cv_oa_request(json_t *, const char *, int, char *, size_t);
json_t	*xl_cv_oa_response(json_t *, const char *, char *, size_t);
int	 xl_cv_oa_event(struct xl_stream *, const char *, const char *,
	    size_t, struct xl_buf *);
void	 xl_cv_oa_end(struct xl_stream *, int, struct xl_buf *);

/* Buffers. -1 on out of memory (b unchanged). */
int	 xl_buf_add(struct xl_buf *, const void *, size_t);
int	 xl_buf_adds(struct xl_buf *, const char *);
/* Compact JSON, reals with 15 significant digits (so 0.7 stays 0.7). */
int	 xl_buf_json(struct xl_buf *, const json_t *);
/* One SSE event: "event: NAME\n" (when name) "data: JSON\n\n".  Steals o
 * (NULL counts as out of memory). */
int	 xl_sse(struct xl_buf *, const char *name, json_t *o);

/* snprintf into err; returns NULL (for the request/response functions). */
json_t	*xl_fail(char *err, size_t errlen, const char *fmt, ...)
	    __attribute__((format(printf, 3, 4)));

/* Object member helpers: NULL / 0 when absent or of another type. */
const char *xl_str(const json_t *o, const char *key);
/* A usage count: a JSON integer clamped to 0..XL_MAX_COUNT; else 0. */
long long xl_count(const json_t *v);
/* Set key to v (stolen) when v is not NULL; -1 when v is NULL. */
int	 xl_set(json_t *o, const char *key, json_t *v);
/* A JSON string of s[0..n) truncated to max bytes at a UTF-8 boundary,
 * NUL and bytes that are not UTF-8 replaced by '?'. */
json_t	*xl_text(const char *s, size_t n, size_t max);
/* dst = prefix + src (truncated to XL_MAX_ID bytes, UTF-8 safe). */
void	 xl_make_id(char *dst, size_t dstlen, const char *prefix,
	    const char *src);

/* Stop reasons (static strings). */
const char *xl_stop_to_openai(const char *anthropic);	/* NULL -> "stop" */
const char *xl_stop_to_anthropic(const char *openai);	/* NULL -> end_turn */

/* The OpenAI usage object from Anthropic counts, and the user's stream
 * error event in dialect d (message is the text, cls_type an Anthropic
 * error type). */
/* Parse one OpenAI stream event for a user of dialect user (xl.c): 1 a
 * chunk in *jp, 0 an error chunk already written to out (*rc), -1 not a
 * chunk. */
int	xl_openai_event_parse(struct xl_stream *s, enum prov_dialect user,
	    const char *data, size_t len, json_t **jp, struct xl_buf *out,
	    int *rc);
/* An OpenAI stream chunk of s (choices[0]: delta, finish_reason). */
int	xl_openai_chunk(struct xl_stream *s, json_t *delta, const char *finish,
	    struct xl_buf *out);
json_t	*xl_openai_usage(long long in, long long out, long long cache_read,
	    long long cache_write);
int	 xl_stream_error(enum prov_dialect d, const char *an_type,
	    const char *message, struct xl_buf *out);
/* An upstream stream error payload (dialect `to`) -> the user's error
 * event (dialect `from`). */
int	 xl_stream_error_json(enum prov_dialect from, enum prov_dialect to,
	    json_t *err, struct xl_buf *out);

#endif
