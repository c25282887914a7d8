/*
 * shm/sb: creation, layout and seqlock access of the scoreboard.
 */
#include "shm/sb.h"
#include "shm/sb_metrics.h"
#include "lib/clock.h"

#include <string.h>
#include <sys/mman.h>

static size_t
align_up(size_t n)
{
	return (n + SB_CACHELINE - 1) & ~(size_t)(SB_CACHELINE - 1);
}

static void
layout(struct sb *sb, uint32_t max_agents, uint32_t max_channels)
{
	sb->off_procs = align_up(sizeof(struct sb_header));
	sb->off_agents = sb->off_procs + align_up(sizeof(struct sb_proc)) * SB_MAX_PROCS;
	sb->off_channels = sb->off_agents + align_up(sizeof(struct sb_agent)) * max_agents;
	sb->off_tokens = sb->off_channels + align_up(sizeof(struct sb_channel)) * max_channels;
	sb->off_metrics = sb->off_tokens + align_up(sizeof(struct sb_token)) *
	    SB_TOKEN_SLOTS;
	sb->size = sb->off_metrics + align_up(sizeof(struct sb_metrics));
}

size_t
sb_size(uint32_t max_agents, uint32_t max_channels)
{
	struct sb sb;

	layout(&sb, max_agents, max_channels);
	return sb.size;
}

int
sb_create(struct sb *sb, uint32_t max_agents, uint32_t max_channels)
{
	void *p;

	memset(sb, 0, sizeof(*sb));
	layout(sb, max_agents, max_channels);
	p = mmap(NULL, sb->size, PROT_READ | PROT_WRITE,
	    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return -1;
	/* Anonymous mappings are zero-filled: every slot starts FREE. */
	sb->hdr = p;
	sb->hdr->magic = SB_MAGIC;
	sb->hdr->version = SB_VERSION;
	sb->hdr->size = sb->size;
	sb->hdr->max_procs = SB_MAX_PROCS;
	sb->hdr->max_agents = max_agents;
	sb->hdr->max_channels = max_channels;
	sb->hdr->started_ms = clock_wall_ms();
	atomic_store(&sb->hdr->config_gen, 1);
	return 0;
}

void
sb_destroy(struct sb *sb)
{
	if (sb->hdr != NULL)
		munmap(sb->hdr, sb->size);
	memset(sb, 0, sizeof(*sb));
}

struct sb_proc *
sb_proc(const struct sb *sb, uint32_t i)
{
	return (struct sb_proc *)(void *)((char *)sb->hdr + sb->off_procs +
	    align_up(sizeof(struct sb_proc)) * i);
}

struct sb_agent *
sb_agent(const struct sb *sb, uint32_t i)
{
	return (struct sb_agent *)(void *)((char *)sb->hdr + sb->off_agents +
	    align_up(sizeof(struct sb_agent)) * i);
}

struct sb_channel *
sb_channel(const struct sb *sb, uint32_t i)
{
	return (struct sb_channel *)(void *)((char *)sb->hdr + sb->off_channels +
	    align_up(sizeof(struct sb_channel)) * i);
}

struct sb_token *
sb_token(const struct sb *sb, uint32_t i)
{
	return (struct sb_token *)(void *)((char *)sb->hdr + sb->off_tokens +
	    align_up(sizeof(struct sb_token)) * i);
}

struct sb_metrics *
sb_metrics(const struct sb *sb)
{
	return (struct sb_metrics *)(void *)((char *)sb->hdr + sb->off_metrics);
}

const int64_t sbm_bucket_ms[SBM_BUCKETS] = { 5, 10, 25, 50, 100, 250, 500,
	1000, 2500, 5000, 10000, 30000 };

void
sbm_observe(struct sbm_hist *h, int64_t v)
{
	if (v < 0)
		v = 0;
	for (int i = 0; i < SBM_BUCKETS; i++)
		if (v <= sbm_bucket_ms[i]) {
			atomic_fetch_add_explicit(&h->bucket[i], 1,
			    memory_order_relaxed);
			break;
		}
	atomic_fetch_add_explicit(&h->sum_ms, (uint64_t)v, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
}

void
sb_write_begin(_Atomic uint32_t *seq)
{
	uint32_t s = atomic_load_explicit(seq, memory_order_relaxed);

	atomic_store_explicit(seq, s + 1, memory_order_relaxed);
	/* Order the odd seq before the data stores that follow. */
	atomic_thread_fence(memory_order_release);
}

void
sb_write_end(_Atomic uint32_t *seq)
{
	uint32_t s = atomic_load_explicit(seq, memory_order_relaxed);

	atomic_store_explicit(seq, s + 1, memory_order_release);
}

void
sb_read(const void *slot, _Atomic uint32_t *seq, void *out, size_t n)
{
	uint32_t s0, s1;

	for (;;) {
		s0 = atomic_load_explicit(seq, memory_order_acquire);
		if (s0 & 1)
			continue;
		memcpy(out, slot, n);
		atomic_thread_fence(memory_order_acquire);
		s1 = atomic_load_explicit(seq, memory_order_relaxed);
		if (s0 == s1)
			return;
	}
}

void
sb_read_proc(const struct sb *sb, uint32_t i, struct sb_proc *out)
{
	struct sb_proc *p = sb_proc(sb, i);

	sb_read(p, &p->seq, out, sizeof(*out));
}

void
sb_read_agent(const struct sb *sb, uint32_t i, struct sb_agent *out)
{
	struct sb_agent *a = sb_agent(sb, i);

	sb_read(a, &a->seq, out, sizeof(*out));
}

uint32_t
sb_chan_slots(const struct sb *sb)
{
	uint32_t n = atomic_load_explicit(&sb->hdr->chan_hwm,
	    memory_order_acquire);

	return n < sb->hdr->max_channels ? n : sb->hdr->max_channels;
}

void
sb_read_channel(const struct sb *sb, uint32_t i, struct sb_channel *out)
{
	struct sb_channel *c = sb_channel(sb, i);

	sb_read(c, &c->seq, out, offsetof(struct sb_channel, hot));
}

unsigned
sb_clear_owner(const struct sb *sb, pid_t pid)
{
	unsigned n = 0;

	for (uint32_t i = 0; i < sb->hdr->max_channels; i++) {
		struct sb_channel *c = sb_channel(sb, i);
		if (c->state == SB_CHAN_FREE || c->owner_pid != pid)
			continue;
		sb_write_begin(&c->seq);
		memset((char *)c + sizeof(c->seq), 0,
		    offsetof(struct sb_channel, hot) - sizeof(c->seq));
		sb_write_end(&c->seq);
		atomic_store(&c->hot.inflight, 0);
	}
	for (uint32_t i = 0; i < sb->hdr->max_agents; i++) {
		struct sb_agent *a = sb_agent(sb, i);
		if (a->state == SB_AGENT_FREE || a->owner_pid != pid)
			continue;
		sb_write_begin(&a->seq);
		memset((char *)a + sizeof(a->seq), 0, sizeof(*a) - sizeof(a->seq));
		sb_write_end(&a->seq);
		n++;
	}
	return n;
}
