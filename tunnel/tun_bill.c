/*
 * tunnel/tun_bill: the tunnel's connection to billing.sock (agent registry
 * look-ups during handshakes; the ledger's messages: tun_ledger.c).  While it is down, handshakes fail with a
 * logged reason; it is re-dialled on tick.
 */
#include <string.h>
#include "child/child_peer.h"
#include "tunnel/tun.h"
#include "lib/log.h"

static int subscribed;		/* to the ledger, on this connection */

static void
on_bill_msg(struct child_peer *p, const struct msg *m)
{
	struct ipc_agent_info info;

	if (m->hdr.type != IPC_AGENT_INFO) {
		tun_ledger_from_bill(m);
		return;
	}
	memcpy(&info, m->data, sizeof(info));
	info.name[sizeof(info.name) - 1] = '\0';
	tun_lookup_done(m->hdr.reqid, &info);
}

static void
on_bill_down(struct child_peer *p)
{
	subscribed = 0;
}

static struct child_peer bill = {
	.sock = "billing.sock",
	.rules = &bill_rules,
	.on_msg = on_bill_msg,
	.on_down = on_bill_down,
};

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
	if (child_peer_up(&bill) && !subscribed) {
		subscribed = 1;
		tun_ledger_bill_up();
	}
}

int
tun_bill_lookup(uint64_t serial, uint64_t agent_id)
{
	struct ipc_agent_get q = { agent_id };

	return child_peer_send(&bill, IPC_AGENT_GET, serial, &q, sizeof(q));
}
