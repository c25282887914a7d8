/*
 * lib/outq: the queue of byte blocks waiting for a socket to become
 * writable — one per agent link (agentd), agent connection (tunnel) and
 * user request (gateway).  Each block keeps `headroom` bytes in front of
 * its data (libwebsockets' LWS_PRE) so it can be written in place.
 */
#ifndef SWB_OUTQ_H
#define SWB_OUTQ_H

#include <stddef.h>
#include <stdint.h>

struct outq_item {
	struct outq_item *next;
	uint64_t tag;		/* the owner's: e.g. an upstream transfer key */
	size_t credit;		/* the owner's: bytes to give back when written */
	size_t len;
	unsigned char *data;	/* len bytes, headroom before them */
	unsigned char buf[];
};

struct outq {
	struct outq_item *head, *tail;
	size_t bytes;		/* sum of len over the queue */
};

/* Append a copy of a (and then b, which may be NULL/0).  NULL on ENOMEM. */
struct outq_item *outq_push(struct outq *q, size_t headroom, const void *a,
    size_t alen, const void *b, size_t blen);
/* Remove and free the first block. */
void outq_pop(struct outq *q);
/* Remove the first block and hand it over (the caller free()s it); NULL
 * when q is empty. */
struct outq_item *outq_take(struct outq *q);
/* Drop n bytes (at most the first block's len) from the front of the
 * first block; the block goes when it is empty. */
void outq_consume(struct outq *q, size_t n);
void outq_clear(struct outq *q);
/* Copy whole blocks from the front, back to back, into dst (room for max
 * bytes) while they fit: how many (0 when the first alone is larger than
 * max, or q is empty), their bytes in *len.  The queue is not changed. */
size_t outq_pack(const struct outq *q, unsigned char *dst, size_t max,
    size_t *len);
/* What the next write sends: with pack, the blocks outq_pack puts in dst
 * when that is more than one, else the first block where it lies.  Sets
 * *data and *len and returns how many blocks (0: q is empty); the caller
 * pops that many once they are written. */
size_t outq_next(const struct outq *q, int pack, unsigned char *dst,
    size_t max, const unsigned char **data, size_t *len);

#endif
