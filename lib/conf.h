/*
 * lib/conf: a table-driven INI engine (inih underneath) shared by hubd and
 * agentd.  A table lists every key: section, name, type, default, bounds,
 * whether a reload may change it, and where it lives in a flat struct with no
 * pointers (so a config can be copied, compared and sent whole).
 *
 * Sections named "prefix.*" in a table (e.g. "channel.*") match any
 * "[channel.NAME]"; such keys are handed to the table's section callback.
 */
#ifndef SWB_CONF_H
#define SWB_CONF_H

#include <stddef.h>
#include <stdint.h>

enum conf_type {
	CONF_INT,	/* int64_t, decimal */
	CONF_BOOL,	/* int: yes/no/true/false/on/off/1/0 */
	CONF_STR,	/* char[size] */
	CONF_ENUM,	/* int: index into choices (NULL-terminated) */
	CONF_MS,	/* int64_t milliseconds: "250ms", "5s", "2m", bare = ms */
	CONF_BYTES,	/* int64_t: "512", "64k", "10m", "1g" */
	CONF_ADDR,	/* char[size] "host:port", port 1..65535 (0 allowed if min==0) */
};

struct conf_key {
	const char *section;
	const char *name;
	enum conf_type type;
	const char *def;		/* default, in INI syntax */
	int64_t min, max;		/* numeric bounds (inclusive); STR: max length */
	int reloadable;
	size_t off;			/* offsetof in the config struct */
	size_t size;			/* sizeof the member */
	const char *const *choices;	/* CONF_ENUM */
	const char *help;		/* one line for docs and -t output */
};

/* Handles keys of wildcard sections; returns 0, or -1 with err filled. */
typedef int (*conf_section_cb)(void *dst, const char *section,
    const char *key, const char *value, char *err, size_t errlen);

struct conf_table {
	const struct conf_key *keys;
	size_t nkeys;
	const char *wildcard;		/* e.g. "channel." or NULL */
	conf_section_cb section_cb;
};

/* Fill every key's default.  Returns 0, or -1 (a bad default is a bug). */
int conf_defaults(const struct conf_table *t, void *dst, char *err, size_t errlen);
/*
 * Defaults, then the file.  Unknown sections/keys and bad values are errors;
 * err gets "FILE:LINE: reason".  Returns 0 or -1.
 */
int conf_load(const struct conf_table *t, void *dst, const char *path,
    char *err, size_t errlen);
/* Set one key from its INI text (used by conf_load and by config messages). */
int conf_set(const struct conf_table *t, void *dst, const char *section,
    const char *name, const char *value, char *err, size_t errlen);
/* Render one key's current value as INI text. */
void conf_format(const struct conf_key *k, const void *src, char *out, size_t outlen);
const struct conf_key *conf_find(const struct conf_table *t, const char *section,
    const char *name);
/* Is the member of k equal in a and b? */
int conf_equal(const struct conf_key *k, const void *a, const void *b);
/* Copy the member of k from src into dst. */
void conf_copy(const struct conf_key *k, void *dst, const void *src);

/* Value parsers, exposed for tests and other callers. */
int conf_parse_int(const char *s, int64_t *out);
int conf_parse_bool(const char *s, int *out);
int conf_parse_ms(const char *s, int64_t *out);
int conf_parse_bytes(const char *s, int64_t *out);
int conf_parse_addr(const char *s, char *host, size_t hostlen, int *port);

#endif
