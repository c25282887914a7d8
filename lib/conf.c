/*
 * lib/conf: parses INI files into flat config structs described by tables.
 */
#include "lib/conf.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ini.h>

#define MEMBER(dst, k) ((char *)(dst) + (k)->off)

int
conf_parse_int(const char *s, int64_t *out)
{
	char *end;
	long long v;

	while (isspace((unsigned char)*s))
		s++;
	if (*s == '\0')
		return -1;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0')
		return -1;
	*out = v;
	return 0;
}

int
conf_parse_bool(const char *s, int *out)
{
	static const char *const yes[] = { "yes", "true", "on", "1" };
	static const char *const no[] = { "no", "false", "off", "0" };

	for (size_t i = 0; i < 4; i++) {
		if (strcasecmp(s, yes[i]) == 0) { *out = 1; return 0; }
		if (strcasecmp(s, no[i]) == 0) { *out = 0; return 0; }
	}
	return -1;
}

/* Parse "<digits><suffix>" where the suffix scales the number. */
static int
parse_scaled(const char *s, int64_t *out, const char *const *sfx,
    const int64_t *mul, size_t nsfx)
{
	char *end;
	long long v;

	if (!isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0)
		return -1;
	for (size_t i = 0; i < nsfx; i++) {
		if (strcasecmp(end, sfx[i]) == 0) {
			if (v > INT64_MAX / mul[i])
				return -1;
			*out = v * mul[i];
			return 0;
		}
	}
	return -1;
}

int
conf_parse_ms(const char *s, int64_t *out)
{
	static const char *const sfx[] = { "", "ms", "s", "m", "h" };
	static const int64_t mul[] = { 1, 1, 1000, 60000, 3600000 };

	return parse_scaled(s, out, sfx, mul, 5);
}

int
conf_parse_bytes(const char *s, int64_t *out)
{
	static const char *const sfx[] = { "", "k", "m", "g" };
	static const int64_t mul[] = { 1, 1024, 1024 * 1024, 1024 * 1024 * 1024 };

	return parse_scaled(s, out, sfx, mul, 4);
}

int
conf_parse_addr(const char *s, char *host, size_t hostlen, int *port)
{
	const char *colon = strrchr(s, ':');
	int64_t p;
	size_t hl;

	if (colon == NULL)
		return -1;
	hl = (size_t)(colon - s);
	if (s[0] == '[') {		/* [v6]:port */
		if (hl < 2 || s[hl - 1] != ']')
			return -1;
		s++;
		hl -= 2;
	}
	if (hl == 0 || hl >= hostlen)
		return -1;
	if (conf_parse_int(colon + 1, &p) != 0 || p < 0 || p > 65535)
		return -1;
	memcpy(host, s, hl);
	host[hl] = '\0';
	*port = (int)p;
	return 0;
}

const struct conf_key *
conf_find(const struct conf_table *t, const char *section, const char *name)
{
	for (size_t i = 0; i < t->nkeys; i++)
		if (strcmp(t->keys[i].section, section) == 0 &&
		    strcmp(t->keys[i].name, name) == 0)
			return &t->keys[i];
	return NULL;
}

static int
bounded(const struct conf_key *k, int64_t v, const char *value, char *err,
    size_t errlen)
{
	if (v < k->min || v > k->max) {
		snprintf(err, errlen, "[%s] %s = '%s' is out of range %" PRId64
		    "..%" PRId64, k->section, k->name, value, k->min, k->max);
		return -1;
	}
	return 0;
}

static int
set_key(const struct conf_key *k, void *dst, const char *value, char *err,
    size_t errlen)
{
	int64_t v;
	int b;
	char host[256];
	int port;

	switch (k->type) {
	case CONF_INT:
		if (conf_parse_int(value, &v) != 0)
			goto bad;
		if (bounded(k, v, value, err, errlen) != 0)
			return -1;
		*(int64_t *)MEMBER(dst, k) = v;
		return 0;
	case CONF_MS:
		if (conf_parse_ms(value, &v) != 0)
			goto bad;
		if (bounded(k, v, value, err, errlen) != 0)
			return -1;
		*(int64_t *)MEMBER(dst, k) = v;
		return 0;
	case CONF_BYTES:
		if (conf_parse_bytes(value, &v) != 0)
			goto bad;
		if (bounded(k, v, value, err, errlen) != 0)
			return -1;
		*(int64_t *)MEMBER(dst, k) = v;
		return 0;
	case CONF_BOOL:
		if (conf_parse_bool(value, &b) != 0)
			goto bad;
		*(int *)MEMBER(dst, k) = b;
		return 0;
	case CONF_ENUM:
		for (int i = 0; k->choices[i] != NULL; i++) {
			if (strcmp(k->choices[i], value) == 0) {
				*(int *)MEMBER(dst, k) = i;
				return 0;
			}
		}
		goto bad;
	case CONF_ADDR:
		if (conf_parse_addr(value, host, sizeof(host), &port) != 0 ||
		    (port == 0 && k->min > 0))
			goto bad;
		/* FALLTHROUGH */
	case CONF_STR:
		if (strlen(value) >= k->size ||
		    (k->max > 0 && (int64_t)strlen(value) > k->max)) {
			snprintf(err, errlen, "[%s] %s is too long (at most %zu bytes)",
			    k->section, k->name, k->size - 1);
			return -1;
		}
		if (k->min > 0 && value[0] == '\0') {
			snprintf(err, errlen, "[%s] %s must not be empty",
			    k->section, k->name);
			return -1;
		}
		snprintf(MEMBER(dst, k), k->size, "%s", value);
		return 0;
	}
bad:
	{
		static const char *const what[] = {
			[CONF_INT] = "an integer", [CONF_BOOL] = "yes or no",
			[CONF_STR] = "a string", [CONF_ENUM] = "one of the choices",
			[CONF_MS] = "a duration like 500ms, 5s or 2m",
			[CONF_BYTES] = "a size like 512, 64k or 10m",
			[CONF_ADDR] = "host:port",
		};
		char choices[256] = "";
		if (k->type == CONF_ENUM) {
			size_t n = 0;
			for (int i = 0; k->choices[i] != NULL && n < sizeof(choices); i++)
				n += (size_t)snprintf(choices + n, sizeof(choices) - n,
				    "%s%s", i ? "|" : " (", k->choices[i]);
			if (n < sizeof(choices))
				snprintf(choices + n, sizeof(choices) - n, ")");
		}
		snprintf(err, errlen, "[%s] %s = '%s' is not %s%s", k->section,
		    k->name, value, what[k->type], choices);
	}
	return -1;
}

int
conf_set(const struct conf_table *t, void *dst, const char *section,
    const char *name, const char *value, char *err, size_t errlen)
{
	const struct conf_key *k;

	if (t->wildcard != NULL && t->section_cb != NULL &&
	    strncmp(section, t->wildcard, strlen(t->wildcard)) == 0)
		return t->section_cb(dst, section, name, value, err, errlen);
	k = conf_find(t, section, name);
	if (k == NULL) {
		int known = 0;
		for (size_t i = 0; i < t->nkeys; i++)
			if (strcmp(t->keys[i].section, section) == 0)
				known = 1;
		if (known)
			snprintf(err, errlen, "unknown key '%s' in section [%s]",
			    name, section);
		else
			snprintf(err, errlen, "unknown section [%s]", section);
		return -1;
	}
	return set_key(k, dst, value, err, errlen);
}

int
conf_defaults(const struct conf_table *t, void *dst, char *err, size_t errlen)
{
	for (size_t i = 0; i < t->nkeys; i++)
		if (set_key(&t->keys[i], dst, t->keys[i].def, err, errlen) != 0)
			return -1;
	return 0;
}

struct load_ctx {
	const struct conf_table *t;
	void *dst;
	char *err;
	size_t errlen;
	int failed;
};

static int
conf_ini_line(void *user, const char *section, const char *name,
    const char *value)
{
	struct load_ctx *c = user;

	if (name == NULL)		/* a bare section header */
		return 1;
	/* inih goes on after an error and reports the FIRST bad line:
	 * keep the first reason too. */
	if (c->failed)
		return 1;
	if (section[0] == '\0') {
		snprintf(c->err, c->errlen, "key '%s' outside of any section", name);
		c->failed = 1;
		return 0;
	}
	if (conf_set(c->t, c->dst, section, name, value, c->err, c->errlen) != 0) {
		c->failed = 1;
		return 0;
	}
	return 1;
}

int
conf_load(const struct conf_table *t, void *dst, const char *path, char *err,
    size_t errlen)
{
	char reason[512] = "";
	struct load_ctx c = { t, dst, reason, sizeof(reason), 0 };
	int rc;

	if (conf_defaults(t, dst, err, errlen) != 0)
		return -1;
	rc = ini_parse(path, conf_ini_line, &c);
	if (rc == -1) {
		snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
		return -1;
	}
	if (rc == -2) {
		snprintf(err, errlen, "%s: out of memory", path);
		return -1;
	}
	if (rc > 0) {
		snprintf(err, errlen, "%s:%d: %s", path, rc,
		    reason[0] ? reason : "syntax error");
		return -1;
	}
	return 0;
}

void
conf_format(const struct conf_key *k, const void *src, char *out, size_t outlen)
{
	const char *m = (const char *)src + k->off;

	switch (k->type) {
	case CONF_INT:
	case CONF_MS:
	case CONF_BYTES:
		snprintf(out, outlen, "%" PRId64, *(const int64_t *)(const void *)m);
		break;
	case CONF_BOOL:
		snprintf(out, outlen, "%s", *(const int *)(const void *)m ? "yes" : "no");
		break;
	case CONF_ENUM:
		snprintf(out, outlen, "%s", k->choices[*(const int *)(const void *)m]);
		break;
	case CONF_STR:
	case CONF_ADDR:
		snprintf(out, outlen, "%s", m);
		break;
	}
}

int
conf_equal(const struct conf_key *k, const void *a, const void *b)
{
	if (k->type == CONF_STR || k->type == CONF_ADDR)
		return strcmp((const char *)a + k->off, (const char *)b + k->off) == 0;
	return memcmp((const char *)a + k->off, (const char *)b + k->off, k->size) == 0;
}

void
conf_copy(const struct conf_key *k, void *dst, const void *src)
{
	memcpy((char *)dst + k->off, (const char *)src + k->off, k->size);
}
