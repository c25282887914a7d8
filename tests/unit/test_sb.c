/*
 * Unit tests of shm/sb: layout, owner cleanup, and a concurrent
 * reader/writer stress in which a reader must never see a torn slot.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include "shm/sb.h"

static void
test_layout(void **state)
{
	struct sb sb;

	assert_int_equal(sb_create(&sb, 16, 64), 0);
	assert_int_equal(sb.hdr->magic, SB_MAGIC);
	assert_int_equal(sb.hdr->version, SB_VERSION);
	assert_int_equal(sb.hdr->size, sb.size);
	assert_int_equal(sb.size, sb_size(16, 64));
	/* Every slot is cache-line aligned and inside the mapping. */
	assert_int_equal((uintptr_t)sb_agent(&sb, 1) % SB_CACHELINE, 0);
	assert_int_equal((uintptr_t)&sb_channel(&sb, 3)->hot % SB_CACHELINE, 0);
	assert_true((char *)(sb_channel(&sb, 63) + 1) <= (char *)sb.hdr + sb.size);
	assert_true((char *)sb_agent(&sb, 15) + sizeof(struct sb_agent) <=
	    (char *)sb_channel(&sb, 0));
	assert_int_equal(sb_agent(&sb, 0)->state, SB_AGENT_FREE);
	sb_destroy(&sb);
}

static void
test_clear_owner(void **state)
{
	struct sb sb;
	struct sb_agent a;
	struct sb_channel c;

	assert_int_equal(sb_create(&sb, 4, 4), 0);
	sb_agent(&sb, 1)->state = SB_AGENT_ONLINE;
	sb_agent(&sb, 1)->owner_pid = 42;
	sb_agent(&sb, 2)->state = SB_AGENT_ONLINE;
	sb_agent(&sb, 2)->owner_pid = 43;
	sb_channel(&sb, 0)->state = SB_CHAN_UP;
	sb_channel(&sb, 0)->owner_pid = 42;
	atomic_store(&sb_channel(&sb, 0)->hot.inflight, 5);
	assert_int_equal(sb_clear_owner(&sb, 42), 1);
	sb_read_agent(&sb, 1, &a);
	assert_int_equal(a.state, SB_AGENT_FREE);
	assert_int_equal(a.owner_pid, 0);
	sb_read_agent(&sb, 2, &a);
	assert_int_equal(a.state, SB_AGENT_ONLINE);
	sb_read_channel(&sb, 0, &c);
	assert_int_equal(c.state, SB_CHAN_FREE);
	assert_int_equal(atomic_load(&sb_channel(&sb, 0)->hot.inflight), 0);
	/* Seqlock counters end even: no writer left half-way. */
	assert_int_equal(atomic_load(&sb_agent(&sb, 1)->seq) & 1, 0);
	sb_destroy(&sb);
}

#define STRESS_WRITES 200000

struct stress {
	struct sb sb;
	_Atomic int done;
	_Atomic long reads;
	int torn;
};

/* The writer goes on until both readers have had their turns (a loaded
 * machine may schedule a reader late), within a generous cap. */
#define STRESS_MIN_READS 20000
static struct stress *stress_pair;

static void *
writer(void *arg)
{
	struct stress *st = arg;
	struct sb_agent *a = sb_agent(&st->sb, 0);

	for (uint64_t i = 1; i <= STRESS_WRITES * 100 && (i <= STRESS_WRITES ||
	    atomic_load(&stress_pair[0].reads) < STRESS_MIN_READS ||
	    atomic_load(&stress_pair[1].reads) < STRESS_MIN_READS); i++) {
		sb_write_begin(&a->seq);
		a->agent_id = i;
		a->since_ms = (int64_t)i;
		a->last_heartbeat_ms = (int64_t)i;
		a->nchannels = (uint32_t)i;
		/* Fill the whole strings so a torn copy is easy to see. */
		memset(a->name, 'a' + (int)(i % 26), sizeof(a->name) - 1);
		snprintf(a->addr, sizeof(a->addr), "%llu", (unsigned long long)i);
		sb_write_end(&a->seq);
	}
	atomic_store(&st->done, 1);
	return NULL;
}

static void *
reader(void *arg)
{
	struct stress *st = arg;
	struct sb_agent a;
	char want[32];

	while (!atomic_load(&st->done)) {
		sb_read_agent(&st->sb, 0, &a);
		atomic_fetch_add(&st->reads, 1);
		if (a.agent_id == 0)
			continue;
		snprintf(want, sizeof(want), "%llu", (unsigned long long)a.agent_id);
		if ((int64_t)a.agent_id != a.since_ms ||
		    (int64_t)a.agent_id != a.last_heartbeat_ms ||
		    (uint32_t)a.agent_id != a.nchannels ||
		    strcmp(want, a.addr) != 0 ||
		    a.name[0] != 'a' + (int)(a.agent_id % 26) ||
		    a.name[sizeof(a.name) - 2] != a.name[0])
			st->torn++;
	}
	return NULL;
}

static void
test_stress_no_torn_read(void **state)
{
	static struct stress st[2];
	pthread_t w, r[2];

	memset(st, 0, sizeof(st));
	stress_pair = st;
	assert_int_equal(sb_create(&st[0].sb, 2, 2), 0);
	st[1].sb = st[0].sb;
	/* One writer, two readers sharing the same slot. */
	assert_int_equal(pthread_create(&r[0], NULL, reader, &st[0]), 0);
	assert_int_equal(pthread_create(&r[1], NULL, reader, &st[1]), 0);
	/* st[1].done mirrors st[0].done through the writer below. */
	assert_int_equal(pthread_create(&w, NULL, writer, &st[0]), 0);
	pthread_join(w, NULL);
	atomic_store(&st[1].done, 1);
	pthread_join(r[0], NULL);
	pthread_join(r[1], NULL);
	print_message("reads: %ld + %ld, torn: %d + %d, writes: %llu\n",
	    atomic_load(&st[0].reads), atomic_load(&st[1].reads), st[0].torn,
	    st[1].torn, (unsigned long long)sb_agent(&st[0].sb, 0)->agent_id);
	assert_int_equal(st[0].torn, 0);
	assert_int_equal(st[1].torn, 0);
	assert_true(atomic_load(&st[0].reads) > 100);
	assert_true(atomic_load(&st[1].reads) > 100);
	assert_true(sb_agent(&st[0].sb, 0)->agent_id >= STRESS_WRITES);
	sb_destroy(&st[0].sb);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_layout),
		cmocka_unit_test(test_clear_owner),
		cmocka_unit_test(test_stress_no_torn_read),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
