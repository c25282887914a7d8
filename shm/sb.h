/*
 * shm/sb: the scoreboard, one fixed-size shared mapping created by the
 * master before it forks, sized from max_agents/max_channels.  It holds no
 * pointers (only indexes), so every process can read it at any address.
 *
 * Layout: [header][proc slots][agent slots][channel slots][token slots]
 * [metrics] (shm/sb_metrics.h),
 * each slot aligned to a cache line.  Descriptive slot fields are guarded by a per-slot
 * seqlock (`seq`, odd while a write is in progress): the slot's single
 * writer brackets updates with sb_write_begin/sb_write_end; readers copy the
 * slot with sb_read_*() which retries until it saw an even, unchanged seq,
 * and never take a lock.  Hot counters that many processes bump live apart
 * on their own cache lines and are plain C11 atomics.
 *
 * Writers, per field group:
 *   header            master (at creation; config_gen on every good reload)
 *   sb_proc           master (spawn, exit, restart)
 *   sb_agent          the tunnel process that owns the connection
 *                     (owner_pid); the master clears slots of a dead owner
 *   sb_channel desc   the owning tunnel process, as for its agent
 *   sb_channel hot    atomics: tunnel (latency; ok/err, streak and the
 *                     ejection fields only through rt_health_record),
 *                     gateway (in-flight, minute counters; probe_ms only
 *                     through rt_probe_claim, a compare-and-swap)
 *   sb_chan_hot ag_*  the tunnel only: the agent's own figures from its
 *                     metrics frames (lib/frame.h), stored as received
 *   sb_token          atomics: gateways (the local rate limiter,
 *                     shm/sb_limit.c); claimed by token id, never freed,
 *                     reused once stale
 *   sb_metrics        see shm/sb_metrics.h (gateway workers, billing)
 */
#ifndef SWB_SB_H
#define SWB_SB_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "lib/clock.h"

#define SB_MAGIC	0x53574253u	/* "SWBS" */
#define SB_VERSION	6
#define SB_CACHELINE	64
#define SB_MAX_PROCS	72		/* 64 gateway workers + the others */
#define SB_TOKEN_SLOTS	8192		/* tokens with rpm/tpm limits, per minute */

enum sb_proc_state { SB_PROC_FREE = 0, SB_PROC_RUNNING, SB_PROC_BACKOFF,
	SB_PROC_FAILED, SB_PROC_STOPPED };
enum sb_agent_state { SB_AGENT_FREE = 0, SB_AGENT_HANDSHAKE, SB_AGENT_ONLINE };
enum sb_chan_state { SB_CHAN_FREE = 0, SB_CHAN_UP };

struct sb_header {
	uint32_t magic;			/* master, at creation */
	uint32_t version;
	uint64_t size;			/* bytes of the whole mapping */
	uint32_t max_procs, max_agents, max_channels;
	uint32_t pad;
	int64_t  started_ms;		/* master start, wall clock ms */
	alignas(SB_CACHELINE) _Atomic uint64_t config_gen;	/* master */
	_Atomic int32_t master_pid;	/* master */
	_Atomic uint32_t draining;	/* master: 1 once SIGTERM began */
	/* Channel slots ever used + 1: readers that walk the channels stop
	 * here instead of at max_channels.  Writer: the tunnel, before it
	 * fills a slot past the mark (it only grows). */
	_Atomic uint32_t chan_hwm;
};

/* One child process.  Writer: master only. */
struct sb_proc {
	alignas(SB_CACHELINE) _Atomic uint32_t seq;
	uint32_t state;			/* enum sb_proc_state */
	char     name[16];		/* "gateway", "tunnel", ... */
	uint32_t instance;		/* worker index within its kind */
	int32_t  pid;			/* 0 when not running */
	uint32_t restarts;		/* since hubd started */
	int32_t  last_status;		/* wait status of the last exit */
	int64_t  started_ms;		/* wall clock, current pid */
};

/* One connected agent.  Writer: owning tunnel process. */
struct sb_agent {
	alignas(SB_CACHELINE) _Atomic uint32_t seq;
	uint32_t state;			/* enum sb_agent_state */
	uint64_t agent_id;		/* registry id */
	int32_t  owner_pid;		/* tunnel process holding the connection */
	uint32_t nchannels;
	char     name[64];
	char     addr[64];		/* remote "ip:port" */
	char     grade;			/* 'A'.. from the registry */
	char     pad[7];
	int64_t  since_ms;		/* wall clock of the welcome */
	int64_t  last_heartbeat_ms;	/* wall clock of the last pong */
	/* From the agent's hello frame (lib/frame.h): its public address as
	 * GET /probe answered it, and its version; "" until it says. */
	char     probed_addr[64];
	char     version[32];
};

/* Hot per-channel counters; every field is an atomic with its writer noted. */
struct sb_chan_hot {
	alignas(SB_CACHELINE) _Atomic int64_t inflight;	/* gateway +/- */
	_Atomic int64_t minute;		/* gateway: unix minute of the counters */
	_Atomic int64_t req_minute;	/* gateway */
	_Atomic int64_t tok_minute;	/* gateway */
	/* Health: written by the tunnel only, through rt_health_record
	 * (router/rt_eject.c, which states the rules); zeroed by the tunnel
	 * when it hands the slot to a new channel. */
	_Atomic int64_t ok;		/* tunnel: successes */
	_Atomic int64_t err;		/* tunnel: failures (5xx, lost, cut) */
	_Atomic int64_t err_streak;	/* tunnel: consecutive failures of
					 * requests started after the last
					 * ejection, outside a cool-down */
	_Atomic int64_t ejected_until_ms; /* tunnel: wall ms the cool-down
					 * ends; 0 after a probe succeeded */
	alignas(SB_CACHELINE) _Atomic int64_t ewma_ttfb_us;	/* tunnel */
	_Atomic int64_t ewma_tps_milli;	/* tunnel: tokens/s * 1000 */
	_Atomic int64_t ejections;	/* tunnel: ejections since the last
					 * success; the next cool-down is
					 * RT_EJECT_BASE_MS << ejections */
	_Atomic int64_t ejected_at_ms;	/* tunnel: wall ms of the last
					 * ejection; requests started at or
					 * before it no longer count */
	_Atomic int64_t probe_ms;	/* gateways (router, compare-and-swap):
					 * wall ms the last probe of this
					 * cooling channel was let through */
	/* The agent's own figures, counted over every hub it serves (its
	 * provider's limits are shared).  Writer: the tunnel only, from each
	 * metrics frame; zeroed with the slot.  The router takes ag_req/
	 * ag_tok when they leave less headroom than the gateway's counters
	 * and ag_minute is this minute. */
	alignas(SB_CACHELINE) _Atomic int64_t ag_updated_ms; /* wall ms; 0 =
					 * no metrics frame yet */
	_Atomic int64_t ag_minute;	/* unix minute of the agent's counters */
	_Atomic int64_t ag_req_minute;	/* requests admitted this minute */
	_Atomic int64_t ag_tok_minute;	/* tokens (estimate + output) */
	_Atomic int64_t ag_err_minute;	/* failed upstream calls */
	_Atomic int64_t ag_inflight;	/* upstream calls in flight */
	_Atomic int64_t ag_latency_ms;	/* mean time to the provider's head */
	_Atomic int64_t ag_bucket_req;	/* whole requests its rpm bucket holds
					 * (-1: no rpm) */
};

/*
 * Per-token minute counters of the local rate limiter (a hub without
 * Redis, or while Redis is unreachable).  Open addressing by token id
 * (shm/sb_limit.c).  Writers: every gateway worker, with atomics only:
 * `id` is claimed with a compare-and-swap (0 or a stale id -> the token's
 * id); `minute` is the unix minute the counters belong to, advanced with
 * a compare-and-swap by the first gateway that sees a new minute, which
 * then zeroes req/tok; req/tok are fetch_add'ed by every admitted request
 * and fetch_sub'ed when a check is rolled back or usage corrects them.
 */
struct sb_token {
	alignas(SB_CACHELINE) _Atomic uint64_t id;	/* 0 = free */
	_Atomic int64_t minute;		/* gateways: unix minute */
	_Atomic int64_t req_minute;	/* gateways: requests this minute */
	_Atomic int64_t tok_minute;	/* gateways: tokens this minute */
};

/* One channel an agent announced.  Desc writer: owning tunnel process. */
struct sb_channel {
	alignas(SB_CACHELINE) _Atomic uint32_t seq;
	uint32_t state;			/* enum sb_chan_state */
	uint32_t agent_slot;		/* index into the agent slots */
	uint32_t pad0;
	uint64_t agent_id;
	int32_t  owner_pid;
	uint32_t rpm_limit, tpm_limit;	/* announced by the agent; 0 = none */
	char     grade;
	char     pad1[3];
	char     name[32];
	char     provider[16];
	char     models[512];		/* comma separated */
	struct sb_chan_hot hot;
};

struct sb {
	struct sb_header *hdr;
	size_t size;
	size_t off_procs, off_agents, off_channels, off_tokens, off_metrics;
};

size_t sb_size(uint32_t max_agents, uint32_t max_channels);
/* Create an anonymous shared mapping.  0, or -1 with errno. */
int  sb_create(struct sb *sb, uint32_t max_agents, uint32_t max_channels);
void sb_destroy(struct sb *sb);

struct sb_proc    *sb_proc(const struct sb *sb, uint32_t i);
struct sb_agent   *sb_agent(const struct sb *sb, uint32_t i);
struct sb_channel *sb_channel(const struct sb *sb, uint32_t i);
struct sb_token   *sb_token(const struct sb *sb, uint32_t i);	/* < SB_TOKEN_SLOTS */

/* Seqlock, writer side (single writer per slot). */
void sb_write_begin(_Atomic uint32_t *seq);
void sb_write_end(_Atomic uint32_t *seq);
/* Seqlock, reader side: copies a consistent snapshot of n bytes at slot. */
void sb_read(const void *slot, _Atomic uint32_t *seq, void *out, size_t n);

void sb_read_proc(const struct sb *sb, uint32_t i, struct sb_proc *out);
void sb_read_agent(const struct sb *sb, uint32_t i, struct sb_agent *out);
/* The number of channel slots worth walking (chan_hwm, <= max_channels). */
uint32_t sb_chan_slots(const struct sb *sb);
/* Copies the descriptive part; hot counters are read with atomic loads. */
void sb_read_channel(const struct sb *sb, uint32_t i, struct sb_channel *out);

/* Master, after a child died: free every agent/channel slot it owned. */
unsigned sb_clear_owner(const struct sb *sb, pid_t pid);


#endif
