/*
 * tunnel/tun: shared state of the tunnel process — every agent connection
 * (struct tun_conn), its outgoing frame queue, and the registry look-ups
 * sent to billing during a handshake.
 */
#ifndef SWB_TUN_H
#define SWB_TUN_H

#include <stdint.h>
#include "lib/frame.h"
#include "lib/outq.h"
#include "lib/tunauth.h"
#include "child/child_lws.h"

#define TUN_PATH		"/tunnel/connect"
#define TUN_PROBE_PATH		"/probe"	/* GET: the caller's address */
#define TUN_MAX_CHANNELS	32	/* per agent */
#define TUN_OUT_MAX_BYTES	(8u * 1024 * 1024)	/* queued to one agent */

enum tun_state {
	TC_CHALLENGED = 0,	/* nonce sent, waiting for AUTH */
	TC_LOOKUP,		/* AUTH received, asking billing for the key */
	TC_ONLINE,		/* welcomed */
	TC_CLOSING,		/* close_reason set, closing on next writable */
};

struct tun_conn {
	struct tun_conn *next, *prev;	/* all connections */
	struct lws *wsi;
	uint64_t serial;		/* connection number, for logs and look-ups */
	enum tun_state state;
	unsigned char nonce[TUNAUTH_NONCE_LEN];
	unsigned char exporter[TUNAUTH_EXPORTER_LEN];
	unsigned char sig[TUNAUTH_SIG_LEN];
	uint64_t agent_id;
	int slot;			/* scoreboard agent slot, -1 before online */
	char addr[64];
	char name[64];
	char grade;
	int64_t opened_ms, last_rx_ms, last_ping_ms;	/* monotonic */
	struct outq out;		/* frames waiting for the socket */
	unsigned char *rx;		/* reassembly of a fragmented message */
	size_t rx_len;
	char close_reason[120];
	int64_t closing_ms;		/* monotonic: when tun_close() was called */
	int chan_slots[TUN_MAX_CHANNELS];	/* scoreboard channel slots */
	int nchan, nchan_pending;	/* announced / arriving before done */
	int chan_pending[TUN_MAX_CHANNELS];
	uint64_t echo_admin_id;		/* hubctl send waiting for ECHO_REPLY */
	uint32_t next_stream;		/* last stream id given out */
	/* From its hello (tun_conn.c): what it runs; "" until said. */
	char version[32], os[16], arch[16];
	int told_update;		/* update_available sent at hello */
	int packed;			/* its hello said it reads packed
					   messages (lib/frame.h PACKING) */
	lws_dll2_t due;			/* on the due list (tun_conn_flush) */
	/* TLS buffers (tun_relay.c sets, tun_tick clears; see tun_tls_busy):
	 * streams relayed now, since when none, and whether the connection
	 * keeps its buffers between records. */
	unsigned nrelay;
	int64_t relay_idle_ms;		/* monotonic */
	int tls_kept;
};

extern struct child_env *tun_env;
extern struct tun_conn *tun_conns;	/* list head */
extern unsigned tun_nconns;

/* tun_conn.c */
struct lws_protocols tun_protocol(void);
/* A stream starts or ends on c: while c relays, its TLS buffers stay. */
void tun_tls_busy(struct tun_conn *c, int started);
/* Queue one encoded frame.  -1 (and the connection closes) when full. */
int  tun_send(struct tun_conn *c, struct frame_enc *e);
/* Close with a logged reason (once). */
void tun_close(struct tun_conn *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void tun_tick(void);
/* The end of a turn of the loop: write the frames queued in it. */
void tun_conn_flush(void);
struct tun_conn *tun_find_agent(uint64_t agent_id);
/* billing answered a look-up for connection serial. */
void tun_lookup_done(uint64_t serial, const struct ipc_agent_info *info);
void tun_stop_all(const char *why);

/* tun_bill.c */
void tun_bill_init(struct lws_vhost *vh);
void tun_bill_tick(void);
/* Ask billing for an agent's key; the answer comes to tun_lookup_done. */
int  tun_bill_lookup(uint64_t serial, uint64_t agent_id);
/* Send a message to billing (header reqid 0); -1 when it is away. */
int  tun_bill_send(uint16_t type, const void *p, size_t len);
/* The public half of the hub's ledger key, from billing's answer to the
 * tunnel's subscription (IPC_LEDGER_KEY); NULL until it came.  The
 * tunnel never holds the secret half. */
const unsigned char *tun_ledger_pk(void);

/* tun_ledger.c */
/* An agent's sync, receipt_ack or usage frame. */
void tun_ledger_frame(struct tun_conn *c, const struct frame *f);
/* A ledger message from billing (anything but IPC_AGENT_INFO and
 * IPC_LEDGER_KEY).  0, or -1 when it is none of those it knows. */
int  tun_ledger_from_bill(const struct msg *m);
/* billing.sock is (again) up: subscribe and re-sync online agents. */
void tun_ledger_bill_up(void);

/* tun_relay.c */
void tun_relay_init(struct lws_vhost *vh);
struct lws_protocols tun_gw_protocol(void);
/* Close every gateway's connection (after the loop, before lws goes). */
void tun_relay_free(void);
/* Write what this turn of the loop queued for the gateways. */
void tun_relay_flush(void);
void tun_relay_frame(struct tun_conn *c, const struct frame *f);
void tun_relay_agent_gone(struct tun_conn *c);
int  tun_relay_busy(void);

/* tun_files.c: releases of agentd (GET /files/agent/...) */
/* An HTTP GET under RELEASE_FILES_PREFIX; lws's return value. */
int  tun_files_http(struct lws *wsi, const char *uri);
/* c said hello: update_available when a newer release is published. */
void tun_files_hello(struct tun_conn *c);
/* hubctl release info | announce OS ARCH. */
void tun_files_admin(uint64_t id, int argc, char **argv);

/* tun_admin.c */
void tun_admin(struct child_env *env, uint64_t id, int argc, char **argv);
void tun_echo_reply(struct tun_conn *c, const char *text, size_t len);
void tun_conn_gone(struct tun_conn *c);

#endif
