/*
 * moderation/mod_cache: the verdict cache of the moderation process.  Keys
 * are the SHA-256 (hex) of a check's input; values are definitive answers
 * of the service only.  Bounded: at capacity the least recently used entry
 * goes.  Each entry lives ttl ms from its insertion (a hit does not extend
 * it); expired entries are dropped when looked up or evicted.  The clock is
 * the caller's (now_ms), which keeps the tests free of sleeps.
 */
#include "moderation/mod.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct mod_entry {
	char key[65];
	uint8_t ans;			/* enum mod_answer: CLEAN or FLAGGED */
	int64_t expires_ms;
	char detail[MOD_DETAIL_MAX];
	struct mod_entry *hnext;	/* bucket chain */
	struct mod_entry *prev, *next;	/* recency: head = most recent */
};

struct mod_cache {
	size_t capacity;
	int64_t ttl_ms;
	size_t count;
	size_t mask;			/* buckets - 1, a power of two */
	struct mod_entry **bucket;
	struct mod_entry *head, *tail;
};

static size_t
key_hash(const char *key)
{
	uint64_t h = 1469598103934665603ull;	/* FNV-1a */

	for (; *key != '\0'; key++)
		h = (h ^ (unsigned char)*key) * 1099511628211ull;
	return (size_t)h;
}

struct mod_cache *
mod_cache_new(int64_t capacity, int64_t ttl_ms)
{
	struct mod_cache *c;
	size_t n = 16;

	if (capacity < 0)
		capacity = 0;
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	c->capacity = (size_t)capacity;
	c->ttl_ms = ttl_ms < 0 ? 0 : ttl_ms;
	while (n < c->capacity && n < ((size_t)1 << 24))
		n <<= 1;
	if ((c->bucket = calloc(n, sizeof(*c->bucket))) == NULL) {
		free(c);
		return NULL;
	}
	c->mask = n - 1;
	return c;
}

static void
lru_unlink(struct mod_cache *c, struct mod_entry *e)
{
	if (e->prev != NULL)
		e->prev->next = e->next;
	else
		c->head = e->next;
	if (e->next != NULL)
		e->next->prev = e->prev;
	else
		c->tail = e->prev;
	e->prev = e->next = NULL;
}

static void
lru_push_front(struct mod_cache *c, struct mod_entry *e)
{
	e->prev = NULL;
	e->next = c->head;
	if (c->head != NULL)
		c->head->prev = e;
	c->head = e;
	if (c->tail == NULL)
		c->tail = e;
}

static struct mod_entry **
find_slot(struct mod_cache *c, const char *key)
{
	struct mod_entry **pp = &c->bucket[key_hash(key) & c->mask];

	while (*pp != NULL && strcmp((*pp)->key, key) != 0)
		pp = &(*pp)->hnext;
	return pp;
}

static void
drop(struct mod_cache *c, struct mod_entry *e)
{
	struct mod_entry **pp = find_slot(c, e->key);

	if (*pp == e)
		*pp = e->hnext;
	lru_unlink(c, e);
	c->count--;
	free(e);
}

void
mod_cache_free(struct mod_cache *c)
{
	struct mod_entry *e, *next;

	if (c == NULL)
		return;
	for (e = c->head; e != NULL; e = next) {
		next = e->next;
		free(e);
	}
	free(c->bucket);
	free(c);
}

int
mod_cache_get(struct mod_cache *c, const char *key, int64_t now_ms,
    enum mod_answer *ans, char *detail, size_t detlen)
{
	struct mod_entry *e = *find_slot(c, key);

	if (e == NULL)
		return 0;
	if (now_ms >= e->expires_ms) {
		drop(c, e);
		return 0;
	}
	lru_unlink(c, e);
	lru_push_front(c, e);
	*ans = (enum mod_answer)e->ans;
	if (detlen > 0)
		snprintf(detail, detlen, "%s", e->detail);
	return 1;
}

int
mod_cache_put(struct mod_cache *c, const char *key, int64_t now_ms,
    enum mod_answer ans, const char *detail)
{
	struct mod_entry **pp, *e;

	if (c->capacity == 0 || (ans != MOD_ANS_CLEAN && ans != MOD_ANS_FLAGGED))
		return -1;
	if (strlen(key) >= sizeof(e->key))
		return -1;
	pp = find_slot(c, key);
	if ((e = *pp) != NULL) {
		lru_unlink(c, e);	/* replace in place */
	} else {
		while (c->count >= c->capacity && c->tail != NULL)
			drop(c, c->tail);
		if ((e = calloc(1, sizeof(*e))) == NULL)
			return -1;
		snprintf(e->key, sizeof(e->key), "%s", key);
		/* find_slot again: drop() may have unlinked *pp's neighbour. */
		pp = find_slot(c, key);
		e->hnext = NULL;
		*pp = e;
		c->count++;
	}
	e->ans = (uint8_t)ans;
	e->expires_ms = now_ms + c->ttl_ms;
	snprintf(e->detail, sizeof(e->detail), "%s", detail != NULL ? detail : "");
	lru_push_front(c, e);
	return 0;
}

size_t
mod_cache_count(const struct mod_cache *c)
{
	return c->count;
}
