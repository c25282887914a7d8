/*
 * tunnel/tun_bill: the tunnel's connection to billing.sock (agent registry
 * look-ups during handshakes; the ledger's messages: tun_ledger.c).  While
 * it is down, handshakes fail with a logged reason; it is re-dialled on
 * tick.  The first message on each connection is the ledger subscription,
 * which billing answers with the public half of the ledger key before it
 * answers any look-up, so a welcome always has the key to send.
 */
#include <string.h>
#include "child/child_peer.h"
#include "tunnel/tun.h"
#include "lib/log.h"

static void on_bill_msg(struct child_peer *p, const struct msg *m);
static void on_bill_down(struct child_peer *p);

static struct child_peer bill = {
	.sock = "billing.sock",
	.rules = &bill_tun_rules,
	.on_msg = on_bill_msg,
	.on_down = on_bill_down,
};

static int subscribed;		/* to the ledger, on this connection */
static unsigned char ledger_pk[32];	/* from billing's IPC_LEDGER_KEY */
static int ledger_pk_known;

const unsigned char *
tun_ledger_pk(void)
{
	return ledger_pk_known ? ledger_pk : NULL;
}

static void
on_bill_msg(struct child_peer *p, const struct msg *m)
{
	struct ipc_agent_info info;
	struct ipc_ledger_key k;

	switch (m->hdr.type) {
	case IPC_AGENT_INFO:
		memcpy(&info, m->data, sizeof(info));
		info.name[sizeof(info.name) - 1] = '\0';
		tun_lookup_done(m->hdr.reqid, &info);
		return;
	case IPC_LEDGER_KEY:
		memcpy(&k, m->data, sizeof(k));
		if (ledger_pk_known && memcmp(k.pk, ledger_pk, sizeof(k.pk)) != 0)
			log_warn("the hub's ledger key changed (billing loaded "
			    "another key file)");
		memcpy(ledger_pk, k.pk, sizeof(ledger_pk));
		ledger_pk_known = 1;
		return;
	default:
		if (tun_ledger_from_bill(m) != 0)
			child_peer_drop(p, "unexpected %s",
			    msg_type_name(&bill_tun_rules, m->hdr.type));
		return;
	}
}

/* Subscribe first thing on a connection (billing answers with the key). */
static void
subscribe(void)
{
	if (child_peer_up(&bill) && !subscribed) {
		subscribed = 1;
		tun_ledger_bill_up();
	}
}

static void
on_bill_down(struct child_peer *p)
{
	subscribed = 0;
}


int
tun_bill_send(uint16_t type, const void *p, size_t len)
{
	return child_peer_send(&bill, type, 0, p, len);
}

void
tun_bill_init(struct lws_vhost *vh)
{
	child_peer_start(&bill, tun_env, vh);
}

void
tun_bill_tick(void)
{
	child_peer_tick(&bill);
	subscribe();
}

int
tun_bill_lookup(uint64_t serial, uint64_t agent_id)
{
	struct ipc_agent_get q = { agent_id };

	subscribe();
	return child_peer_send(&bill, IPC_AGENT_GET, serial, &q, sizeof(q));
}
