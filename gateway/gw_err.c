/*
 * gateway/gw_err: every refusal a user sees, in the shape of the surface
 * they called — OpenAI's {"error":{"message","type","param","code"}},
 * Anthropic's {"type":"error","error":{"type","message"}}, Gemini's
 * {"error":{"code","message","status"}} or Bedrock's {"message"} with its
 * type in the x-amzn-errortype header — and logged
 * with the request id.
 */
#include "gateway/gw.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "lib/log.h"

static void
openai_error(char *out, size_t outlen, unsigned status, const char *kind,
    const char *code, const char *message)
{
	json_t *o = json_pack("{s:{s:s, s:s, s:n, s:s*}}", "error", "message",
	    message, "type", kind, "param", "code", code);
	char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;

	snprintf(out, outlen, "%s", s ? s : "{\"error\":{}}");
	free(s);
	json_decref(o);
}

/* Anthropic's error types by status (its documented set). */
static const char *
anthropic_type(unsigned status)
{
	switch (status) {
	case 400: return "invalid_request_error";
	case 401: return "authentication_error";
	case 402: return "billing_error";
	case 403: return "permission_error";
	case 404: return "not_found_error";
	case 413: return "request_too_large";
	case 429: return "rate_limit_error";
	case 503: case 529: return "overloaded_error";
	case 504: return "timeout_error";
	default: return status >= 500 ? "api_error" : "invalid_request_error";
	}
}

static void
anthropic_error(char *out, size_t outlen, unsigned status, const char *kind,
    const char *code, const char *message)
{
	json_t *o = json_pack("{s:s, s:{s:s, s:s}}", "type", "error", "error",
	    "type", anthropic_type(status), "message", message);
	char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;

	(void)kind;
	(void)code;
	snprintf(out, outlen, "%s", s ? s : "{\"type\":\"error\"}");
	free(s);
	json_decref(o);
}

/* Google's canonical status names by HTTP status (google.rpc.Code). */
static const char *
gemini_status(unsigned status)
{
	switch (status) {
	case 400: case 413: return "INVALID_ARGUMENT";
	case 401: return "UNAUTHENTICATED";
	case 402: return "FAILED_PRECONDITION";
	case 403: return "PERMISSION_DENIED";
	case 404: return "NOT_FOUND";
	case 409: return "ABORTED";
	case 429: return "RESOURCE_EXHAUSTED";
	case 499: return "CANCELLED";
	case 501: return "UNIMPLEMENTED";
	case 503: return "UNAVAILABLE";
	case 504: return "DEADLINE_EXCEEDED";
	default: return status >= 500 ? "INTERNAL" : "INVALID_ARGUMENT";
	}
}

static void
gemini_error(char *out, size_t outlen, unsigned status, const char *kind,
    const char *code, const char *message)
{
	json_t *o = json_pack("{s:{s:i, s:s, s:s}}", "error", "code",
	    (int)status, "message", message, "status", gemini_status(status));
	char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;

	(void)kind;
	(void)code;
	snprintf(out, outlen, "%s", s ? s : "{\"error\":{}}");
	free(s);
	json_decref(o);
}

/* Bedrock: the body is {"message"}, the type goes in x-amzn-errortype
 * (what the AWS SDKs read to name the exception). */
static void
bedrock_error(char *out, size_t outlen, unsigned status, const char *kind,
    const char *code, const char *message)
{
	json_t *o = json_pack("{s:s}", "message", message);
	char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;

	(void)status;
	(void)kind;
	(void)code;
	snprintf(out, outlen, "%s", s ? s : "{\"message\":\"error\"}");
	free(s);
	json_decref(o);
}

/* Bedrock runtime's exception names by status. */
static const char *
bedrock_errtype(unsigned status)
{
	switch (status) {
	case 400: case 413: return "ValidationException";
	case 401: return "UnrecognizedClientException";
	case 403: return "AccessDeniedException";
	case 404: return "ResourceNotFoundException";
	case 408: case 504: return "ModelTimeoutException";
	case 424: return "ModelErrorException";
	case 429: return "ThrottlingException";
	case 503: case 529: return "ServiceUnavailableException";
	default: return status >= 500 ? "InternalServerException" :
	    "ValidationException";
	}
}

const struct gw_surface gw_surface_openai = { "openai", DIA_OPENAI,
	openai_error, NULL };
const struct gw_surface gw_surface_anthropic = { "anthropic", DIA_ANTHROPIC,
	anthropic_error, NULL };
const struct gw_surface gw_surface_gemini = { "gemini", DIA_GEMINI,
	gemini_error, NULL };
const struct gw_surface gw_surface_bedrock = { "bedrock", DIA_CONVERSE,
	bedrock_error, bedrock_errtype };

void
gw_err_body(const struct gw_surface *s, unsigned status, const char *kind,
    const char *code, const char *message, char *out, size_t outlen)
{
	(s != NULL ? s : &gw_surface_openai)->error(out, outlen, status, kind,
	    code, message);
}

void
gw_reply_error(struct gw_req *r, unsigned status, const char *kind,
    const char *code, const char *message)
{
	char body[1024];

	if (r->head_queued) {		/* too late for a status: end it */
		gw_reply_end(r);
		return;
	}
	if (r->reqid != 0)
		log_rinfo(r->reqid, "%u %s", status, code ? code : kind);
	gw_err_body(r->surface, status, kind, code, message, body, sizeof(body));
	if (r->surface != NULL && r->surface->errtype != NULL)
		snprintf(r->errtype, sizeof(r->errtype), "%s",
		    r->surface->errtype(status));
	gw_reply_json(r, status, body);
}
