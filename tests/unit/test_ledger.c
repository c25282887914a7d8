/*
 * tests/unit/test_ledger: lib/ledger against an independent reference —
 * the canonical bytes are written out here by hand and hashed with
 * OpenSSL's SHA-256 — plus chains: links, tampering, signatures, the CSV
 * line.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include <openssl/sha.h>
#include <sodium.h>

#include "lib/ledger.h"

static unsigned char pk[32], sk[64], pk2[32], sk2[64];

static int
setup(void **state)
{
	(void)state;
	if (sodium_init() < 0)
		return -1;
	crypto_sign_keypair(pk, sk);
	crypto_sign_keypair(pk2, sk2);
	return 0;
}

static void
fill(struct ledger_entry *e, uint64_t seq, const char *prev)
{
	memset(e, 0, sizeof(*e));
	e->agent_id = 7;
	e->seq = seq;
	snprintf(e->prev_hash, sizeof(e->prev_hash), "%s", prev);
	snprintf(e->request_id, sizeof(e->request_id), "00ab-%04llu",
	    (unsigned long long)seq);
	e->token_id = 3;
	snprintf(e->model, sizeof(e->model), "gpt-4o-mini");
	e->input_tokens = 1200 + (int64_t)seq;
	e->output_tokens = 345;
	e->cached_tokens = 1024;
	e->cache_write_tokens = 0;
	e->price_version = 2;
	e->amount = 1234567;
	e->created_at = 1764000000;
	e->agent_reported = (int)(seq % 2);
}

/* The rule of lib/ledger.h, written out again. */
static void
reference_hash(const struct ledger_entry *e, char out[65])
{
	unsigned char buf[512], *p = buf, md[32];
	const int64_t v[] = { e->input_tokens, e->output_tokens,
	    e->cached_tokens, e->cache_write_tokens, e->price_version,
	    e->amount, e->created_at };
	const uint64_t ids[] = { e->agent_id, e->seq, e->token_id };
	const char *strs[] = { e->request_id, e->model };
	const int64_t un[] = { e->images, e->audio_seconds, e->audio_chars,
	    e->video_seconds };
	int units = un[0] || un[1] || un[2] || un[3];
	size_t i, bin;
	int k;

	assert_int_equal(sodium_hex2bin(p, 32, e->prev_hash, 64, NULL, &bin,
	    NULL), 0);
	p += 32;
	memcpy(p, units ? "switchboard ledger v2\n" : "switchboard ledger v1\n",
	    22);
	p += 22;
	for (i = 0; i < 3; i++)
		for (k = 56; k >= 0; k -= 8)
			*p++ = (unsigned char)(ids[i] >> k);
	for (i = 0; i < 2; i++) {
		size_t n = strlen(strs[i]);
		*p++ = (unsigned char)(n >> 8);
		*p++ = (unsigned char)n;
		memcpy(p, strs[i], n);
		p += n;
	}
	for (i = 0; i < 7; i++)
		for (k = 56; k >= 0; k -= 8)
			*p++ = (unsigned char)((uint64_t)v[i] >> k);
	*p++ = (unsigned char)e->agent_reported;
	for (i = 0; units && i < 4; i++)
		for (k = 56; k >= 0; k -= 8)
			*p++ = (unsigned char)((uint64_t)un[i] >> k);
	SHA256(buf, (size_t)(p - buf), md);
	for (i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static void
test_hash_matches_reference(void **state)
{
	struct ledger_entry e;
	char ref[65];

	(void)state;
	for (uint64_t s = 1; s <= 50; s++) {
		fill(&e, s, s == 1 ? LEDGER_GENESIS :
		    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
		e.amount = (int64_t)(s * 999983);
		assert_int_equal(ledger_hash(&e), 0);
		reference_hash(&e, ref);
		assert_string_equal(e.hash, ref);
	}
}

/*
 * Units that are not tokens: an entry with any unit count hashes as v2
 * (the counts appended), one without keeps its v1 hash byte for byte —
 * so entries written before the units existed still verify.
 */
static void
test_units_hash(void **state)
{
	struct ledger_entry e, v1;
	char ref[65], was[65];
	char why[128];

	(void)state;
	fill(&e, 1, LEDGER_GENESIS);
	v1 = e;
	assert_int_equal(ledger_hash(&v1), 0);
	/* A pinned v1 hash (computed before the units existed) still holds. */
	reference_hash(&v1, ref);
	assert_string_equal(v1.hash, ref);
	for (int u = 0; u < 4; u++) {
		fill(&e, 1, LEDGER_GENESIS);
		int64_t *f[] = { &e.images, &e.audio_seconds, &e.audio_chars,
		    &e.video_seconds };
		*f[u] = 8;
		assert_int_equal(ledger_hash(&e), 0);
		reference_hash(&e, ref);
		assert_string_equal(e.hash, ref);
		assert_string_not_equal(e.hash, v1.hash);
		assert_int_equal(ledger_check_link(NULL, &e, NULL, why,
		    sizeof(why)), 0);
		/* Tampering with a unit breaks the link. */
		memcpy(was, e.hash, sizeof(was));
		*f[u] = 9;
		assert_int_equal(ledger_check_link(NULL, &e, NULL, why,
		    sizeof(why)), -1);
		assert_non_null(strstr(why, "hash does not match"));
		*f[u] = 0;	/* all zero again: the v1 hash, not e's */
		assert_int_equal(ledger_hash(&e), 0);
		assert_string_equal(e.hash, v1.hash);
		assert_string_not_equal(was, v1.hash);
		*f[u] = -1;
		assert_int_equal(ledger_entry_check(&e, why, sizeof(why)), -1);
		assert_string_equal(why, "negative unit count");
	}
}

static void
test_chain_and_tampering(void **state)
{
	struct ledger_entry c[5], t;
	char why[128];
	int i;

	(void)state;
	for (i = 0; i < 5; i++) {
		fill(&c[i], (uint64_t)i + 1, i == 0 ? LEDGER_GENESIS : c[i - 1].hash);
		assert_int_equal(ledger_hash(&c[i]), 0);
		assert_int_equal(ledger_sign(&c[i], sk), 0);
		assert_int_equal(ledger_check_link(i == 0 ? NULL : &c[i - 1],
		    &c[i], pk, why, sizeof(why)), 0);
	}
	/* Each field change breaks the hash. */
	t = c[2];
	t.amount++;
	assert_int_equal(ledger_check_link(&c[1], &t, NULL, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "hash does not match"));
	t = c[2];
	t.output_tokens--;
	assert_int_equal(ledger_check_link(&c[1], &t, NULL, why, sizeof(why)), -1);
	t = c[2];
	t.agent_reported ^= 1;
	assert_int_equal(ledger_check_link(&c[1], &t, NULL, why, sizeof(why)), -1);
	t = c[2];
	t.request_id[0] = 'f';
	assert_int_equal(ledger_check_link(&c[1], &t, NULL, why, sizeof(why)), -1);
	/* Re-hashed but not re-signed: only the signature catches it. */
	t = c[2];
	t.amount = 1;
	assert_int_equal(ledger_hash(&t), 0);
	assert_int_equal(ledger_check_link(&c[1], &t, NULL, why, sizeof(why)), 0);
	assert_int_equal(ledger_check_link(&c[1], &t, pk, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "signature"));
	/* Another key's signature. */
	assert_int_equal(ledger_verify_sig(&c[3], pk2), -1);
	assert_int_equal(ledger_verify_sig(&c[3], pk), 0);
	/* Skips, wrong predecessor, a first entry that is not seq 1. */
	assert_int_equal(ledger_check_link(&c[1], &c[3], NULL, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "does not follow"));
	assert_int_equal(ledger_check_link(NULL, &c[1], NULL, why, sizeof(why)), -1);
	t = c[1];
	memcpy(t.prev_hash, c[1].hash, sizeof(t.prev_hash));
	assert_int_equal(ledger_check_link(&c[0], &t, NULL, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "prev_hash"));
}

/* One signature per batch: entries 1..4 unsigned, 5 signed; the chain
 * links them to it, so its signature covers them; a changed entry
 * inside the batch is found by its own hash, named by its seq. */
static void
test_batch_signature(void **state)
{
	struct ledger_entry c[5], t;
	char why[128];
	int i;

	(void)state;
	for (i = 0; i < 5; i++) {
		fill(&c[i], (uint64_t)i + 1, i == 0 ? LEDGER_GENESIS : c[i - 1].hash);
		assert_int_equal(ledger_hash(&c[i]), 0);
	}
	assert_int_equal(ledger_sign(&c[4], sk), 0);
	for (i = 0; i < 4; i++)
		assert_false(ledger_signed(&c[i]));
	assert_true(ledger_signed(&c[4]));
	for (i = 0; i < 5; i++)
		assert_int_equal(ledger_check_link(i == 0 ? NULL : &c[i - 1],
		    &c[i], pk, why, sizeof(why)), 0);
	/* The batch's signature by another key. */
	t = c[4];
	assert_int_equal(ledger_sign(&t, sk2), 0);
	assert_int_equal(ledger_check_link(&c[3], &t, pk, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "seq 5: bad hub signature"));
	/* An entry changed inside the batch (not re-hashed): its hash. */
	t = c[2];
	t.amount += 7;
	assert_int_equal(ledger_check_link(&c[1], &t, pk, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "seq 3: hash does not match"));
	/* Changed and re-hashed: the next entry no longer links to it. */
	assert_int_equal(ledger_hash(&t), 0);
	assert_int_equal(ledger_check_link(&c[1], &t, pk, why, sizeof(why)), 0);
	assert_int_equal(ledger_check_link(&t, &c[3], pk, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "seq 4: prev_hash"));
}

static void
test_malformed(void **state)
{
	struct ledger_entry e;
	char why[128];

	(void)state;
	fill(&e, 1, LEDGER_GENESIS);
	assert_int_equal(ledger_entry_check(&e, why, sizeof(why)), 0);
	e.model[0] = '\0';
	assert_int_equal(ledger_hash(&e), -1);
	fill(&e, 1, LEDGER_GENESIS);
	snprintf(e.request_id, sizeof(e.request_id), "a,b");
	assert_int_equal(ledger_entry_check(&e, why, sizeof(why)), -1);
	fill(&e, 1, LEDGER_GENESIS);
	e.prev_hash[3] = 'A';
	assert_int_equal(ledger_entry_check(&e, why, sizeof(why)), -1);
	fill(&e, 0, LEDGER_GENESIS);
	assert_int_equal(ledger_entry_check(&e, why, sizeof(why)), -1);
	fill(&e, 1, LEDGER_GENESIS);
	e.amount = -1;
	assert_int_equal(ledger_entry_check(&e, why, sizeof(why)), -1);
	assert_int_equal(ledger_check_link(NULL, NULL, NULL, why, sizeof(why)), -1);
}

static void
test_csv(void **state)
{
	struct ledger_entry e;
	char line[LEDGER_CSV_MAX], want[LEDGER_CSV_MAX], tiny[16];

	(void)state;
	assert_string_equal(LEDGER_CSV_HEADER, "seq,request_id,model,"
	    "input_tokens,output_tokens,cached_tokens,price_version,amount,"
	    "prev_hash,hash,images,audio_seconds,audio_chars,video_seconds\n");
	fill(&e, 1, LEDGER_GENESIS);
	e.amount = 5;
	assert_int_equal(ledger_hash(&e), 0);
	snprintf(want, sizeof(want), "1,00ab-0001,gpt-4o-mini,1201,345,1024,2,"
	    "0.000005,%s,%s,0,0,0,0\n", LEDGER_GENESIS, e.hash);
	assert_int_equal(ledger_csv_line(&e, line, sizeof(line)), (int)strlen(want));
	assert_string_equal(line, want);
	/* The unit columns, at the end, in the header's order. */
	e.images = 2;
	e.audio_seconds = 31;
	e.audio_chars = 1200;
	e.video_seconds = 8;
	assert_int_equal(ledger_hash(&e), 0);
	snprintf(want, sizeof(want), "1,00ab-0001,gpt-4o-mini,1201,345,1024,2,"
	    "0.000005,%s,%s,2,31,1200,8\n", LEDGER_GENESIS, e.hash);
	assert_int_equal(ledger_csv_line(&e, line, sizeof(line)), (int)strlen(want));
	assert_string_equal(line, want);
	/* The longest line fits LEDGER_CSV_MAX. */
	memset(e.request_id, 'r', LEDGER_REQID_MAX);
	e.request_id[LEDGER_REQID_MAX] = '\0';
	memset(e.model, 'm', LEDGER_MODEL_MAX);
	e.model[LEDGER_MODEL_MAX] = '\0';
	e.seq = e.input_tokens = e.output_tokens = e.cached_tokens =
	    e.price_version = e.amount = e.images = e.audio_seconds =
	    e.audio_chars = e.video_seconds = INT64_MAX;
	assert_int_equal(ledger_hash(&e), 0);
	assert_true(ledger_csv_line(&e, line, sizeof(line)) > 0);
	fill(&e, 1, LEDGER_GENESIS);
	e.amount = 5;
	assert_int_equal(ledger_hash(&e), 0);
	e.amount = 12000000;
	assert_true(ledger_csv_line(&e, line, sizeof(line)) > 0);
	assert_non_null(strstr(line, ",12.000000,"));
	assert_int_equal(ledger_csv_line(&e, tiny, sizeof(tiny)), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hash_matches_reference),
		cmocka_unit_test(test_units_hash),
		cmocka_unit_test(test_chain_and_tampering),
		cmocka_unit_test(test_batch_signature),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_csv),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
