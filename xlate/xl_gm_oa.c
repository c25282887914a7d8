/*
 * xlate/xl_gm_oa: a Gemini generateContent user served by an OpenAI chat
 * completions provider (or a compatible one: DeepSeek, Qwen, Azure).  The
 * request goes Gemini -> OpenAI; the response, its stream chunks and its
 * usage come back OpenAI -> Gemini.  The rules are listed in xl.h.
 */
#include "xlate/xl_int.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- request ---- */

/* A member by its lowerCamel name, else by its snake_case name (Google's
 * JSON takes both). */
static json_t *
gf(const json_t *o, const char *camel)
{
	char snake[64];
	size_t n = 0;
	json_t *v = json_object_get(o, camel);

	if (v != NULL)
		return v;
	for (const char *c = camel; *c != '\0' && n + 2 < sizeof(snake); c++) {
		if (isupper((unsigned char)*c)) {
			snake[n++] = '_';
			snake[n++] = (char)tolower((unsigned char)*c);
		} else
			snake[n++] = *c;
	}
	snake[n] = '\0';
	return json_object_get(o, snake);
}

static const char *
gs(const json_t *o, const char *camel)
{
	return json_string_value(gf(o, camel));
}

/* Schema keys Google writes as int64 strings ("minItems": "1"). */
static const char *const int_keys[] = {
	"minItems", "maxItems", "minLength", "maxLength", "minProperties",
	"maxProperties",
};

/* A Gemini Schema -> JSON schema: type names lowercased ("OBJECT" ->
 * "object"; nullable: true -> [type, "null"]), int64 strings to integers,
 * propertyOrdering dropped; nested schemas (properties, items, anyOf)
 * alike.  A new reference. */
static json_t *
schema_of(json_t *s)
{
	json_t *res, *v, *sub;
	const char *k;
	size_t i;

	if (!json_is_object(s))
		return json_incref(s);
	res = json_object();
	json_object_foreach(s, k, v) {
		if (strcmp(k, "propertyOrdering") == 0 ||
		    strcmp(k, "nullable") == 0)
			continue;
		if (strcmp(k, "type") == 0 && json_is_string(v)) {
			char t[32];
			size_t n = json_string_length(v);

			if (n >= sizeof(t) || strcmp(json_string_value(v),
			    "TYPE_UNSPECIFIED") == 0)
				continue;
			for (i = 0; i < n; i++)
				t[i] = (char)tolower((unsigned char)
				    json_string_value(v)[i]);
			t[n] = '\0';
			json_object_set_new(res, k, json_is_true(json_object_get(
			    s, "nullable")) ? json_pack("[s, s]", t, "null") :
			    json_string(t));
			continue;
		}
		if (strcmp(k, "properties") == 0 && json_is_object(v)) {
			json_t *props = json_object();
			const char *pk;

			json_object_foreach(v, pk, sub)
				json_object_set_new(props, pk, schema_of(sub));
			json_object_set_new(res, k, props);
			continue;
		}
		if (strcmp(k, "items") == 0) {
			json_object_set_new(res, k, schema_of(v));
			continue;
		}
		if (strcmp(k, "anyOf") == 0 && json_is_array(v)) {
			json_t *a = json_array();

			json_array_foreach(v, i, sub)
				json_array_append_new(a, schema_of(sub));
			json_object_set_new(res, k, a);
			continue;
		}
		for (i = 0; i < sizeof(int_keys) / sizeof(int_keys[0]); i++)
			if (strcmp(k, int_keys[i]) == 0 && json_is_string(v))
				break;
		if (i < sizeof(int_keys) / sizeof(int_keys[0])) {
			char *end;
			long long n = strtoll(json_string_value(v), &end, 10);

			if (*end == '\0' && end != json_string_value(v) && n >= 0)
				json_object_set_new(res, k, json_integer(n));
			continue;
		}
		json_object_set(res, k, v);
	}
	return res;
}

/* One function call of the history, matched to its response by id, else
 * by name in order. */
struct gm_pending {
	const char *name;
	char	 id[64];
	int	 used;
};

#define GM_MAX_PENDING	256	/* functionCall parts in one model turn */

/* The stable id of the k-th call of content ci: call_<ci>_<k>_<name>,
 * the name's characters other than [A-Za-z0-9_-] as '_', 40 bytes at
 * most (OpenAI's limit). */
static void
call_id(char *dst, size_t dstlen, size_t ci, size_t k, const char *name)
{
	size_t n, lim = dstlen < 41 ? dstlen : 41;

	snprintf(dst, lim, "call_%zu_%zu_%s", ci, k, name);
	for (n = 5; dst[n] != '\0'; n++)
		if (!isalnum((unsigned char)dst[n]) && dst[n] != '_' &&
		    dst[n] != '-')
			dst[n] = '_';
}

/* text + images of a user turn (content string or parts array). */
static json_t *
media_part(json_t *d, int file, size_t ci, size_t pi, char *err,
    size_t errlen)
{
	const char *mime = gs(d, "mimeType");
	const char *v = gs(d, file ? "fileUri" : "data");
	struct xl_buf b = { 0 };
	json_t *res;

	if (v == NULL)
		return xl_fail(err, errlen, "contents[%zu].parts[%zu].%s has "
		    "no %s", ci, pi, file ? "fileData" : "inlineData",
		    file ? "fileUri" : "data");
	if ((mime == NULL && !file) || (mime != NULL &&
	    strncmp(mime, "image/", 6) != 0))
		return xl_fail(err, errlen, "contents[%zu].parts[%zu]: only "
		    "images can be served by this model's provider (not %s)",
		    ci, pi, mime ? mime : "?");
	if (file)
		return json_pack("{s:s, s:{s:s}}", "type", "image_url",
		    "image_url", "url", v);
	if (xl_buf_adds(&b, "data:") == -1 || xl_buf_adds(&b, mime) == -1 ||
	    xl_buf_adds(&b, ";base64,") == -1 || xl_buf_adds(&b, v) == -1) {
		xl_buf_free(&b);
		return xl_fail(err, errlen, "out of memory");
	}
	res = json_pack("{s:s, s:{s:s%}}", "type", "image_url", "image_url",
	    "url", b.p, b.len);
	xl_buf_free(&b);
	return res;
}

/* What a part holds, for messages. */
static const char *
part_kind(json_t *p)
{
	static const char *const kinds[] = {
		"text", "inlineData", "fileData", "functionCall",
		"functionResponse", "executableCode", "codeExecutionResult",
	};

	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (gf(p, kinds[i]) != NULL)
			return kinds[i];
	return "unknown";
}

/* The id of a functionResponse: the unanswered call of the model turn
 * before with its id, else the first unanswered one of its name. */
static const char *
response_id(json_t *fr, struct gm_pending *pend, size_t npend)
{
	const char *name = xl_str(fr, "name"), *id = xl_str(fr, "id");

	for (int by_name = id == NULL; by_name < 2; by_name++)
		for (size_t i = 0; i < npend; i++) {
			if (pend[i].used || (by_name ? name == NULL ||
			    strcmp(pend[i].name, name) != 0 :
			    strcmp(pend[i].id, id) != 0))
				continue;
			pend[i].used = 1;
			return pend[i].id;
		}
	return NULL;
}

/* A part that only carries metadata (a thought signature): skipped. */
static int
meta_only(json_t *p)
{
	const char *k;
	json_t *v;

	if (!json_is_object(p) || json_object_size(p) == 0)
		return 0;
	json_object_foreach(p, k, v)
		if (strcmp(k, "thoughtSignature") != 0 &&
		    strcmp(k, "thought_signature") != 0 &&
		    strcmp(k, "thought") != 0)
			return 0;
	return 1;
}

/* A model turn -> one assistant message (text joined; functionCall parts
 * -> tool_calls with stable ids, remembered in pend for the responses). */
static int
model_turn(json_t *parts, size_t ci, json_t *msgs, struct gm_pending *pend,
    size_t *npend, char *err, size_t errlen)
{
	struct xl_buf text = { 0 };
	json_t *calls = json_array(), *p, *msg;
	size_t i;
	int has_text = 0;

	*npend = 0;
	json_array_foreach(parts, i, p) {
		json_t *t = gf(p, "text"), *fc = gf(p, "functionCall");

		if (json_is_string(t)) {
			if (json_is_true(json_object_get(p, "thought")))
				continue;	/* thoughts are not sent back */
			has_text = 1;
			xl_buf_add(&text, json_string_value(t),
			    json_string_length(t));
		} else if (json_is_object(fc)) {
			const char *name = xl_str(fc, "name");
			json_t *args = json_object_get(fc, "args");
			char *a;

			if (name == NULL || (args != NULL &&
			    !json_is_object(args) && !json_is_null(args))) {
				xl_fail(err, errlen, "contents[%zu].parts[%zu]."
				    "functionCall needs a name and object args",
				    ci, i);
				goto fail;
			}
			if (*npend >= GM_MAX_PENDING) {
				xl_fail(err, errlen, "contents[%zu]: too many "
				    "function calls", ci);
				goto fail;
			}
			pend[*npend].name = name;
			pend[*npend].used = 0;
			if (xl_str(fc, "id") != NULL)
				xl_make_id(pend[*npend].id, sizeof(pend[0].id),
				    "", xl_str(fc, "id"));
			else
				call_id(pend[*npend].id, sizeof(pend[0].id), ci,
				    *npend, name);
			a = json_is_object(args) ? json_dumps(args,
			    JSON_COMPACT) : NULL;
			json_array_append_new(calls, json_pack("{s:s, s:s, "
			    "s:{s:s, s:s}}", "id", pend[*npend].id, "type",
			    "function", "function", "name", name, "arguments",
			    a ? a : "{}"));
			free(a);
			(*npend)++;
		} else if (!meta_only(p)) {
			xl_fail(err, errlen, "contents[%zu].parts[%zu]: a %s "
			    "part in a model turn cannot be served by this "
			    "model's provider", ci, i, part_kind(p));
			goto fail;
		}
	}
	if (!has_text && json_array_size(calls) == 0) {
		json_decref(calls);
		xl_buf_free(&text);
		return 0;
	}
	msg = json_pack("{s:s}", "role", "assistant");
	if (has_text || json_array_size(calls) == 0)
		json_object_set_new(msg, "content", json_stringn(text.p ?
		    text.p : "", text.len));
	else
		json_object_set_new(msg, "content", json_null());
	if (json_array_size(calls) > 0)
		json_object_set_new(msg, "tool_calls", calls);
	else
		json_decref(calls);
	json_array_append_new(msgs, msg);
	xl_buf_free(&text);
	return 0;
fail:
	json_decref(calls);
	xl_buf_free(&text);
	return -1;
}

/* A user turn: functionResponse parts -> tool messages first, the rest one
 * user message (a string when it is one text). */
static int
user_turn(json_t *parts, size_t ci, json_t *msgs, struct gm_pending *pend,
    size_t npend, char *err, size_t errlen)
{
	json_t *out = json_array(), *p, *v;
	size_t i;

	json_array_foreach(parts, i, p) {
		json_t *t = gf(p, "text"), *fr = gf(p, "functionResponse");

		if (json_is_string(t)) {
			json_array_append_new(out, json_pack("{s:s, s:O}",
			    "type", "text", "text", t));
		} else if ((v = gf(p, "inlineData")) != NULL ||
		    (v = gf(p, "fileData")) != NULL) {
			json_t *ip = media_part(v, gf(p, "inlineData") == NULL,
			    ci, i, err, errlen);

			if (ip == NULL)
				goto fail;
			json_array_append_new(out, ip);
		} else if (json_is_object(fr)) {
			const char *id = response_id(fr, pend, npend);
			json_t *r = json_object_get(fr, "response");
			char *txt;

			if (id == NULL) {
				xl_fail(err, errlen, "contents[%zu].parts[%zu]: "
				    "functionResponse answers no functionCall of "
				    "the model turn before", ci, i);
				goto fail;
			}
			txt = r != NULL ? json_dumps(r, JSON_COMPACT |
			    JSON_ENCODE_ANY) : NULL;
			json_array_append_new(msgs, json_pack("{s:s, s:s, s:s}",
			    "role", "tool", "tool_call_id", id, "content",
			    txt ? txt : "{}"));
			free(txt);
		} else if (!meta_only(p)) {
			xl_fail(err, errlen, "contents[%zu].parts[%zu]: a %s "
			    "part in a user turn cannot be served by this "
			    "model's provider", ci, i, part_kind(p));
			goto fail;
		}
	}
	if (json_array_size(out) == 0)
		json_decref(out);
	else if (json_array_size(out) == 1 && json_is_string(json_object_get(
	    json_array_get(out, 0), "text"))) {
		json_array_append_new(msgs, json_pack("{s:s, s:O}", "role",
		    "user", "content", json_object_get(json_array_get(out, 0),
		    "text")));
		json_decref(out);
	} else
		json_array_append_new(msgs, json_pack("{s:s, s:o}", "role",
		    "user", "content", out));
	return 0;
fail:
	json_decref(out);
	return -1;
}

/* systemInstruction (Content, or a string) -> a system message. */
static int
system_of(json_t *in, json_t *msgs, char *err, size_t errlen)
{
	json_t *si = gf(in, "systemInstruction"), *p, *t;
	struct xl_buf b = { 0 };
	size_t i;

	if (si == NULL || json_is_null(si))
		return 0;
	if (json_is_string(si)) {
		json_array_append_new(msgs, json_pack("{s:s, s:O}", "role",
		    "system", "content", si));
		return 0;
	}
	if (!json_is_array(gf(si, "parts"))) {
		xl_fail(err, errlen, "systemInstruction must have parts");
		return -1;
	}
	json_array_foreach(gf(si, "parts"), i, p) {
		if (!json_is_string(t = gf(p, "text"))) {
			xl_buf_free(&b);
			xl_fail(err, errlen, "systemInstruction.parts[%zu]: "
			    "only text can be served by this model's provider",
			    i);
			return -1;
		}
		if ((i > 0 && xl_buf_adds(&b, "\n") == -1) || xl_buf_add(&b,
		    json_string_value(t), json_string_length(t)) == -1) {
			xl_buf_free(&b);
			xl_fail(err, errlen, "out of memory");
			return -1;
		}
	}
	if (b.len > 0)
		json_array_append_new(msgs, json_pack("{s:s, s:s%}", "role",
		    "system", "content", b.p, b.len));
	xl_buf_free(&b);
	return 0;
}

static int
messages_of(json_t *in, json_t *res, char *err, size_t errlen)
{
	json_t *contents = gf(in, "contents"), *c, *msgs = json_array();
	struct gm_pending *pend = calloc(GM_MAX_PENDING, sizeof(*pend));
	size_t i, npend = 0;
	int rc = -1;

	if (pend == NULL) {
		xl_fail(err, errlen, "out of memory");
		goto out;
	}
	if (!json_is_array(contents) || json_array_size(contents) == 0) {
		xl_fail(err, errlen, "contents must be a non-empty array");
		goto out;
	}
	if (system_of(in, msgs, err, errlen) == -1)
		goto out;
	json_array_foreach(contents, i, c) {
		const char *role = xl_str(c, "role");
		json_t *parts = gf(c, "parts");

		if (!json_is_object(c) || !json_is_array(parts)) {
			xl_fail(err, errlen, "contents[%zu] must be an object "
			    "with parts", i);
			goto out;
		}
		if (role != NULL && strcmp(role, "model") == 0) {
			if (model_turn(parts, i, msgs, pend, &npend, err,
			    errlen) == -1)
				goto out;
		} else if (role == NULL || strcmp(role, "user") == 0 ||
		    strcmp(role, "function") == 0) {
			if (user_turn(parts, i, msgs, pend, npend, err,
			    errlen) == -1)
				goto out;
		} else {
			xl_fail(err, errlen, "contents[%zu]: role must be user "
			    "or model", i);
			goto out;
		}
	}
	json_object_set_new(res, "messages", msgs);
	msgs = NULL;
	rc = 0;
out:
	json_decref(msgs);
	free(pend);
	return rc;
}

/* Is name one of allowedFunctionNames (NULL or empty: all are)? */
static int
allowed(json_t *names, const char *name)
{
	json_t *n;
	size_t i;

	if (json_array_size(names) == 0)
		return 1;
	json_array_foreach(names, i, n)
		if (json_is_string(n) && strcmp(json_string_value(n), name) == 0)
			return 1;
	return 0;
}

/* tools[].functionDeclarations -> tools[].function; toolConfig ->
 * tool_choice (ANY with allowed names keeps those functions only). */
static int
tools_of(json_t *in, json_t *res, char *err, size_t errlen)
{
	json_t *tools = gf(in, "tools"), *t, *d, *out = NULL;
	json_t *fcc = gf(gf(in, "toolConfig"), "functionCallingConfig");
	const char *mode = gs(fcc, "mode");
	json_t *names = gf(fcc, "allowedFunctionNames");
	size_t i, k;
	int any = mode != NULL && strcmp(mode, "ANY") == 0;

	if (mode != NULL && strcmp(mode, "AUTO") != 0 && !any &&
	    strcmp(mode, "NONE") != 0 && strcmp(mode, "VALIDATED") != 0 &&
	    strcmp(mode, "MODE_UNSPECIFIED") != 0) {
		xl_fail(err, errlen, "toolConfig.functionCallingConfig.mode %s "
		    "is not one of AUTO, ANY, NONE", mode);
		return -1;
	}
	if (tools != NULL && !json_is_null(tools) && !json_is_array(tools)) {
		xl_fail(err, errlen, "tools must be an array");
		return -1;
	}
	json_array_foreach(tools, i, t) {
		json_t *decls = gf(t, "functionDeclarations");

		if (!json_is_object(t) || json_object_size(t) != 1 ||
		    !json_is_array(decls)) {
			xl_fail(err, errlen, "tools[%zu]: only "
			    "functionDeclarations can be served by this model's "
			    "provider", i);
			goto fail;
		}
		json_array_foreach(decls, k, d) {
			const char *name = xl_str(d, "name");
			json_t *f, *ps = gf(d, "parametersJsonSchema");

			if (name == NULL) {
				xl_fail(err, errlen, "tools[%zu]."
				    "functionDeclarations[%zu] has no name", i,
				    k);
				goto fail;
			}
			if (any && !allowed(names, name))
				continue;
			f = json_pack("{s:s}", "name", name);
			if (json_is_string(json_object_get(d, "description")))
				json_object_set(f, "description",
				    json_object_get(d, "description"));
			if (json_is_object(ps))
				json_object_set(f, "parameters", ps);
			else if (json_is_object(ps = gf(d, "parameters")))
				json_object_set_new(f, "parameters",
				    schema_of(ps));
			if (out == NULL)
				out = json_array();
			json_array_append_new(out, json_pack("{s:s, s:o}",
			    "type", "function", "function", f));
		}
	}
	if (out != NULL) {
		json_object_set_new(res, "tools", out);
		out = NULL;
	} else if (any) {
		xl_fail(err, errlen, "toolConfig mode ANY needs a declared "
		    "function");
		return -1;
	}
	if (mode == NULL || json_object_get(res, "tools") == NULL ||
	    strcmp(mode, "MODE_UNSPECIFIED") == 0)
		return 0;
	if (strcmp(mode, "NONE") == 0)
		json_object_set_new(res, "tool_choice", json_string("none"));
	else if (!any)
		json_object_set_new(res, "tool_choice", json_string("auto"));
	else if (json_array_size(json_object_get(res, "tools")) == 1)
		json_object_set_new(res, "tool_choice", json_pack("{s:s, s:{s:O}}",
		    "type", "function", "function", "name", json_object_get(
		    json_object_get(json_array_get(json_object_get(res,
		    "tools"), 0), "function"), "name")));
	else
		json_object_set_new(res, "tool_choice", json_string("required"));
	return 0;
fail:
	json_decref(out);
	return -1;
}

/* generationConfig -> sampling and limits. */
static int
gen_config(json_t *in, json_t *res, char *err, size_t errlen)
{
	static const struct { const char *gm, *oa; int integer; } same[] = {
		{ "temperature", "temperature", 0 }, { "topP", "top_p", 0 },
		{ "maxOutputTokens", "max_tokens", 1 }, { "seed", "seed", 1 },
		{ "presencePenalty", "presence_penalty", 0 },
		{ "frequencyPenalty", "frequency_penalty", 0 },
	};
	json_t *gc = gf(in, "generationConfig"), *v, *s;
	const char *mt;
	size_t i;

	if (gc == NULL || json_is_null(gc))
		return 0;
	if (!json_is_object(gc)) {
		xl_fail(err, errlen, "generationConfig must be an object");
		return -1;
	}
	for (i = 0; i < sizeof(same) / sizeof(same[0]); i++) {
		v = gf(gc, same[i].gm);
		if (v == NULL || json_is_null(v))
			continue;
		if (same[i].integer ? !json_is_integer(v) : !json_is_number(v)) {
			xl_fail(err, errlen, "generationConfig.%s must be %s",
			    same[i].gm, same[i].integer ? "an integer" :
			    "a number");
			return -1;
		}
		json_object_set(res, same[i].oa, v);
	}
	v = gf(gc, "candidateCount");
	if (v != NULL && !json_is_null(v) && (!json_is_integer(v) ||
	    json_integer_value(v) != 1)) {
		xl_fail(err, errlen, "generationConfig.candidateCount other than "
		    "1 cannot be served by this model's provider");
		return -1;
	}
	v = gf(gc, "stopSequences");
	if (json_array_size(v) > 0) {
		json_array_foreach(v, i, s)
			if (!json_is_string(s)) {
				xl_fail(err, errlen, "generationConfig."
				    "stopSequences must be strings");
				return -1;
			}
		json_object_set(res, "stop", v);
	}
	mt = gs(gc, "responseMimeType");
	if (mt != NULL && strcmp(mt, "application/json") == 0)
		xl_set(res, "response_format", json_pack("{s:s}", "type",
		    "json_object"));
	else if (mt != NULL && strcmp(mt, "text/plain") != 0) {
		xl_fail(err, errlen, "responseMimeType %s cannot be served by "
		    "this model's provider", mt);
		return -1;
	}
	json_array_foreach(gf(gc, "responseModalities"), i, s)
		if (!json_is_string(s) || strcmp(json_string_value(s),
		    "TEXT") != 0) {
			xl_fail(err, errlen, "responseModalities other than TEXT "
			    "cannot be served by this model's provider");
			return -1;
		}
	return 0;
}

json_t *
xl_gm_oa_request(json_t *in, const char *model, int stream, char *err,
    size_t errlen)
{
	json_t *res, *m = json_object_get(in, "model");

	if (model == NULL && !json_is_string(m))
		return xl_fail(err, errlen, "the request must name a model");
	if (gf(in, "cachedContent") != NULL)
		return xl_fail(err, errlen, "cachedContent cannot be served by "
		    "this model's provider");
	if ((res = json_object()) == NULL)
		return xl_fail(err, errlen, "out of memory");
	if (model != NULL)
		json_object_set_new(res, "model", json_string(model));
	else
		json_object_set(res, "model", m);
	if (messages_of(in, res, err, errlen) == -1 ||
	    tools_of(in, res, err, errlen) == -1 ||
	    gen_config(in, res, err, errlen) == -1) {
		json_decref(res);
		return NULL;
	}
	if (stream) {
		json_object_set_new(res, "stream", json_true());
		xl_set(res, "stream_options", json_pack("{s:b}",
		    "include_usage", 1));
	}
	return res;
}

/* ---- response ---- */

/* OpenAI's finish_reason -> Gemini's finishReason. */
static const char *
finish_of(const char *f)
{
	static const struct { const char *oa, *gm; } t[] = {
		{ "stop", "STOP" }, { "length", "MAX_TOKENS" },
		{ "tool_calls", "STOP" }, { "function_call", "STOP" },
		{ "content_filter", "SAFETY" },
	};

	if (f == NULL)
		return "STOP";
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (strcmp(t[i].oa, f) == 0)
			return t[i].gm;
	return "OTHER";
}

/* Usage counts of an OpenAI usage object. */
struct gm_usage {
	long long prompt, completion, cached, thoughts;
	int	 seen;
};

static void
usage_read(json_t *u, struct gm_usage *g)
{
	json_t *cached = json_object_get(json_object_get(u,
	    "prompt_tokens_details"), "cached_tokens");

	if (!json_is_object(u))
		return;
	if (cached == NULL || json_is_null(cached))	/* DeepSeek */
		cached = json_object_get(u, "prompt_cache_hit_tokens");
	g->prompt = xl_count(json_object_get(u, "prompt_tokens"));
	g->completion = xl_count(json_object_get(u, "completion_tokens"));
	g->cached = xl_count(cached);
	if (g->cached > g->prompt)
		g->cached = g->prompt;
	g->thoughts = xl_count(json_object_get(json_object_get(u,
	    "completion_tokens_details"), "reasoning_tokens"));
	if (g->thoughts > g->completion)
		g->thoughts = g->completion;
	g->seen = 1;
}

/* usageMetadata: candidates exclude thoughts (OpenAI's completion tokens
 * include reasoning); the prompt includes the cached tokens. */
static json_t *
usage_meta(const struct gm_usage *g)
{
	json_t *u = json_pack("{s:I, s:I, s:I}", "promptTokenCount",
	    (json_int_t)g->prompt, "candidatesTokenCount",
	    (json_int_t)(g->completion - g->thoughts), "totalTokenCount",
	    (json_int_t)(g->prompt + g->completion));

	if (u != NULL && g->cached > 0)
		json_object_set_new(u, "cachedContentTokenCount",
		    json_integer(g->cached));
	if (u != NULL && g->thoughts > 0)
		json_object_set_new(u, "thoughtsTokenCount",
		    json_integer(g->thoughts));
	return u;
}

/* A functionCall part; arguments that are not a JSON object -> {}. */
static json_t *
call_part(const char *name, const char *args, size_t len)
{
	json_t *a = args != NULL ? json_loadb(args, len, 0, NULL) : NULL;

	if (!json_is_object(a)) {
		json_decref(a);
		a = json_object();
	}
	return json_pack("{s:{s:s, s:o}}", "functionCall", "name", name,
	    "args", a);
}

/* One candidate in Gemini's shape (parts stolen; finish may be NULL). */
static json_t *
candidate(json_t *parts, const char *finish)
{
	json_t *c = json_pack("{s:{s:s, s:o}, s:i}", "content", "role",
	    "model", "parts", parts, "index", 0);

	if (c != NULL && finish != NULL)
		json_object_set_new(c, "finishReason", json_string(finish));
	return c;
}

json_t *
xl_gm_oa_response(json_t *in, const char *model, char *err, size_t errlen)
{
	json_t *ch = json_array_get(json_object_get(in, "choices"), 0);
	json_t *msg = json_object_get(ch, "message"), *parts, *v, *tc, *res;
	const char *m = model ? model : xl_str(in, "model");
	struct gm_usage u = { 0 };
	char id[XL_MAX_ID + 16];
	size_t i;

	if (json_object_get(in, "error") != NULL || !json_is_object(msg))
		return xl_fail(err, errlen, "provider response has no "
		    "message");
	parts = json_array();
	if (json_is_string(v = json_object_get(msg, "reasoning_content")) &&
	    json_string_length(v) > 0)
		json_array_append_new(parts, json_pack("{s:O, s:b}", "text", v,
		    "thought", 1));
	if (json_is_string(v = json_object_get(msg, "content")) &&
	    json_string_length(v) > 0)
		json_array_append_new(parts, json_pack("{s:O}", "text", v));
	if (json_is_string(v = json_object_get(msg, "refusal")) &&
	    json_string_length(v) > 0)
		json_array_append_new(parts, json_pack("{s:O}", "text", v));
	json_array_foreach(json_object_get(msg, "tool_calls"), i, tc) {
		json_t *fn = json_object_get(tc, "function");
		json_t *a = json_object_get(fn, "arguments");

		if (xl_str(fn, "name") == NULL)
			continue;
		json_array_append_new(parts, call_part(xl_str(fn, "name"),
		    json_string_value(a), json_string_length(a)));
	}
	if (json_array_size(parts) == 0)
		json_array_append_new(parts, json_pack("{s:s}", "text", ""));
	usage_read(json_object_get(in, "usage"), &u);
	xl_make_id(id, sizeof(id), "", xl_str(in, "id"));
	res = json_pack("{s:[o], s:o, s:s, s:s}", "candidates",
	    candidate(parts, finish_of(xl_str(ch, "finish_reason"))),
	    "usageMetadata", usage_meta(&u), "modelVersion", m ? m : "",
	    "responseId", id);
	if (res == NULL)
		return xl_fail(err, errlen, "out of memory");
	return res;
}

/* ---- stream: OpenAI chunks -> Gemini chunks ---- */

/* A tool call whose pieces are being gathered. */
struct gm_call {
	char	*name;
	struct xl_buf args;
};

/* This pair's stream state (s->priv). */
struct gm_state {
	struct gm_call *calls;	/* by OpenAI tool index */
	size_t	 ncalls;
	int	 cur;		/* index of the last call (no-index chunks) */
	struct gm_usage u;
};

static void
state_free(void *p)
{
	struct gm_state *g = p;

	for (size_t i = 0; i < g->ncalls; i++) {
		free(g->calls[i].name);
		xl_buf_free(&g->calls[i].args);
	}
	free(g->calls);
	free(g);
}

static struct gm_state *
state(struct xl_stream *s)
{
	struct gm_state *g = s->priv;

	if (g == NULL && (g = calloc(1, sizeof(*g))) != NULL) {
		g->cur = -1;
		s->priv = g;
		s->priv_free = state_free;
	}
	return g;
}

/* One Gemini chunk: a candidate with parts (stolen), optional finish and
 * usage. */
static int
gm_chunk(struct xl_stream *s, json_t *parts, const char *finish,
    json_t *usage, struct xl_buf *out)
{
	json_t *c = json_pack("{s:[o], s:s, s:s}", "candidates",
	    candidate(parts, finish), "modelVersion", s->model ? s->model : "",
	    "responseId", s->id);

	if (c != NULL && usage != NULL)
		json_object_set_new(c, "usageMetadata", usage);
	else
		json_decref(usage);
	return xl_sse(out, NULL, c);
}

/* The last chunk: the gathered function calls, finishReason, usage. */
static int
gm_close(struct xl_stream *s, struct xl_buf *out)
{
	struct gm_state *g = state(s);
	json_t *parts = json_array();

	s->done = 1;
	if (g == NULL) {
		json_decref(parts);
		return -1;
	}
	for (size_t i = 0; i < g->ncalls; i++)
		if (g->calls[i].name != NULL)
			json_array_append_new(parts, call_part(g->calls[i].name,
			    g->calls[i].args.p, g->calls[i].args.len));
	if (json_array_size(parts) == 0)
		json_array_append_new(parts, json_pack("{s:s}", "text", ""));
	return gm_chunk(s, parts, s->stop ? s->stop : "STOP",
	    g->u.seen ? usage_meta(&g->u) : NULL, out);
}

static int
tool_piece(struct xl_stream *s, struct gm_state *g, json_t *tc)
{
	json_t *iv = json_object_get(tc, "index");
	json_t *fn = json_object_get(tc, "function");
	json_t *args = json_object_get(fn, "arguments");
	const char *name = xl_str(fn, "name");
	long long idx;
	struct gm_call *c;

	(void)s;
	if (!json_is_object(tc))
		return -1;
	if (json_is_integer(iv))
		idx = json_integer_value(iv);
	else if (iv != NULL && !json_is_null(iv))
		return -1;
	else			/* no index: a new call when it has an id */
		idx = g->cur >= 0 && xl_str(tc, "id") == NULL ? g->cur :
		    (long long)g->ncalls;
	if (idx < 0 || idx >= XL_MAX_BLOCKS)
		return -1;
	if ((size_t)idx >= g->ncalls) {
		struct gm_call *n = realloc(g->calls, ((size_t)idx + 1) *
		    sizeof(*n));

		if (n == NULL)
			return -1;
		memset(n + g->ncalls, 0, ((size_t)idx + 1 - g->ncalls) *
		    sizeof(*n));
		g->calls = n;
		g->ncalls = (size_t)idx + 1;
	}
	g->cur = (int)idx;
	c = &g->calls[idx];
	if (name != NULL && name[0] != '\0' && c->name == NULL &&
	    (c->name = strdup(name)) == NULL)
		return -1;
	if (json_is_string(args) && xl_buf_add(&c->args,
	    json_string_value(args), json_string_length(args)) == -1)
		return -1;
	return 0;
}

static int
choice(struct xl_stream *s, struct gm_state *g, json_t *ch,
    struct xl_buf *out)
{
	json_t *d = json_object_get(ch, "delta"), *v, *tc, *parts;
	json_t *idx = json_object_get(ch, "index");
	const char *fr = xl_str(ch, "finish_reason");
	size_t i;

	if (!json_is_object(ch))
		return -1;
	if (json_is_integer(idx) && json_integer_value(idx) != 0)
		return 0;		/* candidateCount > 1 was refused */
	v = json_object_get(d, "tool_calls");
	if (v != NULL && !json_is_null(v) && !json_is_array(v))
		return -1;
	json_array_foreach(v, i, tc)
		if (tool_piece(s, g, tc) == -1)
			return -1;
	parts = json_array();
	if (json_is_string(v = json_object_get(d, "reasoning_content")) &&
	    json_string_length(v) > 0)
		json_array_append_new(parts, json_pack("{s:O, s:b}", "text", v,
		    "thought", 1));
	if (json_is_string(v = json_object_get(d, "content")) &&
	    json_string_length(v) > 0)
		json_array_append_new(parts, json_pack("{s:O}", "text", v));
	if (json_is_string(v = json_object_get(d, "refusal")) &&
	    json_string_length(v) > 0)
		json_array_append_new(parts, json_pack("{s:O}", "text", v));
	if (fr != NULL) {
		s->stop = finish_of(fr);
		s->finished = 1;
	}
	if (json_array_size(parts) == 0) {
		json_decref(parts);
		return 0;
	}
	return gm_chunk(s, parts, NULL, NULL, out);
}

int
xl_gm_oa_event(struct xl_stream *s, const char *name, const char *data,
    size_t len, struct xl_buf *out)
{
	struct gm_state *g = state(s);
	json_t *j, *chs, *ch, *u;
	size_t i;
	int rc = 0, k;

	(void)name;		/* OpenAI events are data-only */
	if (g == NULL)
		return -1;
	if (len == 6 && memcmp(data, "[DONE]", 6) == 0)
		return gm_close(s, out);
	if ((k = xl_openai_event_parse(s, DIA_GEMINI, data, len, &j, out,
	    &rc)) <= 0)
		return k < 0 ? -1 : rc;
	chs = json_object_get(j, "choices");
	u = json_object_get(j, "usage");
	if (!s->started) {
		s->started = 1;
		xl_make_id(s->id, sizeof(s->id), "", xl_str(j, "id"));
		if (s->model == NULL && xl_str(j, "model") != NULL &&
		    (s->model = strdup(xl_str(j, "model"))) == NULL) {
			json_decref(j);
			return -1;
		}
	}
	if (json_is_object(u))
		usage_read(u, &g->u);
	json_array_foreach(chs, i, ch)
		if (rc == 0)
			rc = choice(s, g, ch, out);
	json_decref(j);
	return rc;
}

/* Gemini's stream has no end marker: a complete answer ends with the
 * finish chunk; a cut one with an error event. */
void
xl_gm_oa_end(struct xl_stream *s, int ok, struct xl_buf *out)
{
	if (ok && s->finished)
		gm_close(s, out);
	else
		xl_stream_error(DIA_GEMINI, "api_error", "the provider's "
		    "stream ended before the answer was complete", out);
}
