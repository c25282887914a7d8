/*
 * router/rt: channel selection.  The strategy table holds how candidates
 * are ordered; the first entry is used until tokens carry a policy.
 */
#include "router/rt.h"
#include "lib/csv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
rt_model_in(const char *csv, const char *model, int empty_is_all)
{
	if (csv[0] == '\0')
		return empty_is_all;
	return csv_has(csv, model);
}

struct scored {
	struct rt_candidate c;
	int64_t inflight;
	uint32_t tiebreak;
};

/* Least in-flight first; a rotating tie-break spreads equal channels. */
static int
cmp_least_loaded(const void *a, const void *b)
{
	const struct scored *x = a, *y = b;

	if (x->inflight != y->inflight)
		return x->inflight < y->inflight ? -1 : 1;
	return x->tiebreak < y->tiebreak ? -1 : x->tiebreak > y->tiebreak;
}

static const struct {
	const char *name;
	int (*cmp)(const void *, const void *);
} strategies[] = {
	{ "least-loaded", cmp_least_loaded },
};

enum rt_result
rt_candidates(const struct sb *sb, const struct rt_request *rq,
    struct rt_candidate *out, int max, int *n)
{
	static uint32_t rr;
	struct scored *s;
	struct sb_channel ch;
	int64_t now = clock_wall_ms();
	uint32_t up = 0, count = 0;

	*n = 0;
	s = calloc(sb->hdr->max_channels, sizeof(*s));
	if (s == NULL)
		return RT_NO_CHANNELS;
	rr++;
	for (uint32_t i = 0; i < sb->hdr->max_channels; i++) {
		const struct sb_chan_hot *h = &sb_channel(sb, i)->hot;
		sb_read_channel(sb, i, &ch);
		if (ch.state != SB_CHAN_UP)
			continue;
		up++;
		if (!rt_model_in(ch.models, rq->model, 0))
			continue;
		if (atomic_load(&h->ejected_until_ms) > now)
			continue;
		s[count].c.slot = i;
		s[count].c.agent_id = ch.agent_id;
		snprintf(s[count].c.channel, sizeof(s[count].c.channel), "%s", ch.name);
		snprintf(s[count].c.provider, sizeof(s[count].c.provider), "%s",
		    ch.provider);
		s[count].inflight = atomic_load(&h->inflight);
		count++;
	}
	/* Round-robin among equals: the rotation moves by one each call. */
	for (uint32_t k = 0; k < count; k++)
		s[k].tiebreak = (k + count - rr % count) % count;
	if (count > 0) {
		qsort(s, count, sizeof(*s), strategies[0].cmp);
		for (uint32_t i = 0; i < count && (int)i < max; i++)
			out[(*n)++] = s[i].c;
	}
	free(s);
	if (up == 0)
		return RT_NO_CHANNELS;
	return count == 0 ? RT_NO_MODEL : RT_OK;
}

void
rt_models(const struct sb *sb, void (*fn)(const char *model, void *arg),
    void *arg)
{
	struct sb_channel ch;
	char seen[8192] = "";
	size_t used = 0;

	for (uint32_t i = 0; i < sb->hdr->max_channels; i++) {
		sb_read_channel(sb, i, &ch);
		if (ch.state != SB_CHAN_UP)
			continue;
		for (char *save = NULL, *m = strtok_r(ch.models, ",", &save);
		    m != NULL; m = strtok_r(NULL, ",", &save)) {
			if (rt_model_in(seen, m, 0))
				continue;
			if (used + strlen(m) + 2 < sizeof(seen))
				used += (size_t)snprintf(seen + used, sizeof(seen) - used,
				    "%s%s", used ? "," : "", m);
			fn(m, arg);
		}
	}
}
