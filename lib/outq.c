/*
 * lib/outq: FIFO of owned byte blocks with write headroom.
 */
#include "lib/outq.h"

#include <stdlib.h>
#include <string.h>

struct outq_item *
outq_push(struct outq *q, size_t headroom, const void *a, size_t alen,
    const void *b, size_t blen)
{
	struct outq_item *o = malloc(sizeof(*o) + headroom + alen + blen);

	if (o == NULL)
		return NULL;
	o->next = NULL;
	o->tag = 0;
	o->credit = 0;
	o->len = alen + blen;
	o->data = o->buf + headroom;
	if (alen > 0)
		memcpy(o->data, a, alen);
	if (blen > 0)
		memcpy(o->data + alen, b, blen);
	if (q->tail != NULL)
		q->tail->next = o;
	else
		q->head = o;
	q->tail = o;
	q->bytes += o->len;
	return o;
}

struct outq_item *
outq_take(struct outq *q)
{
	struct outq_item *o = q->head;

	if (o == NULL)
		return NULL;
	q->head = o->next;
	if (q->head == NULL)
		q->tail = NULL;
	q->bytes -= o->len;
	o->next = NULL;
	return o;
}

void
outq_pop(struct outq *q)
{
	free(outq_take(q));
}

void
outq_consume(struct outq *q, size_t n)
{
	struct outq_item *o = q->head;

	if (o == NULL)
		return;
	if (n >= o->len) {
		outq_pop(q);
		return;
	}
	o->data += n;
	o->len -= n;
	q->bytes -= n;
}

void
outq_clear(struct outq *q)
{
	while (q->head != NULL)
		outq_pop(q);
}

size_t
outq_next(const struct outq *q, int pack, unsigned char *dst, size_t max,
    const unsigned char **data, size_t *len)
{
	size_t n;

	if (q->head == NULL)
		return 0;
	if (pack && q->head->next != NULL &&
	    (n = outq_pack(q, dst, max, len)) > 1) {
		*data = dst;
		return n;
	}
	*data = q->head->data;
	*len = q->head->len;
	return 1;
}

size_t
outq_pack(const struct outq *q, unsigned char *dst, size_t max, size_t *len)
{
	const struct outq_item *o;
	size_t n = 0;

	*len = 0;
	for (o = q->head; o != NULL && o->len <= max - *len; o = o->next) {
		memcpy(dst + *len, o->data, o->len);
		*len += o->len;
		n++;
	}
	return n;
}
