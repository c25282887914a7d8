/*
 * tunnel/tun_bill: the tunnel's connection to billing.sock, adopted into
 * the lws loop as a raw fd.  Carries agent registry look-ups.  When it is
 * down, handshakes fail with a logged reason and it is re-dialled on tick.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include "tunnel/tun.h"
#include "lib/log.h"

static struct lws_vhost *vhost;
static struct lws *bill_wsi;
static struct msg_conn bill;
static int64_t next_dial;

static void
bill_down(const char *why)
{
	if (bill.fd >= 0)
		log_warn("billing connection lost: %s", why);
	msg_conn_free(&bill);	/* sets fd = -1; lws closes the socket */
	bill_wsi = NULL;
}

static void
dial(void)
{
	struct sockaddr_un sun;
	lws_sock_file_fd_type u;
	int fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (hub_sock_path(&tun_env->conf, "billing.sock", sun.sun_path,
	    sizeof(sun.sun_path)) != 0)
		return;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return;
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
		log_debug("billing not reachable yet: %s", strerror(errno));
		close(fd);
		return;
	}
	u.filefd = fd;
	bill_wsi = lws_adopt_descriptor_vhost(vhost, LWS_ADOPT_RAW_FILE_DESC, u,
	    "tun-bill", NULL);
	if (bill_wsi == NULL) {
		close(fd);
		return;
	}
	msg_conn_init(&bill, fd, &bill_rules);
	log_debug("connected to billing");
}

void
tun_bill_init(struct lws_vhost *vh)
{
	vhost = vh;
	bill.fd = -1;
	dial();
}

void
tun_bill_tick(void)
{
	int64_t now = clock_mono_ms();

	if (bill.fd >= 0 || now < next_dial)
		return;
	next_dial = now + 200;
	dial();
}

int
tun_bill_lookup(uint64_t serial, uint64_t agent_id)
{
	struct ipc_agent_get q = { agent_id };

	if (bill.fd < 0)
		return -1;
	if (msg_enqueue(&bill, IPC_AGENT_GET, serial, &q, sizeof(q)) != 0)
		return -1;
	if (msg_flush(&bill) == 0)
		lws_callback_on_writable(bill_wsi);
	return 0;
}

static int
cb_bill(struct lws *wsi, enum lws_callback_reasons reason, void *user,
    void *in, size_t len)
{
	struct msg m;
	char err[256];
	int rc;

	switch (reason) {
	case LWS_CALLBACK_RAW_RX_FILE:
		for (;;) {
			rc = msg_fill(&bill);
			if (rc == -2)
				break;
			if (rc <= 0) {
				bill_down(rc == 0 ? "closed" : strerror(errno));
				return -1;
			}
		}
		while ((rc = msg_next(&bill, &m, err, sizeof(err))) == 1) {
			struct ipc_agent_info info;
			if (m.hdr.type != IPC_AGENT_INFO)
				fatal("billing sent an unexpected %s",
				    msg_type_name(&bill_rules, m.hdr.type));
			memcpy(&info, m.data, sizeof(info));
			info.name[sizeof(info.name) - 1] = '\0';
			tun_lookup_done(m.hdr.reqid, &info);
		}
		if (rc < 0)
			fatal("protocol violation by billing: %s", err);
		return 0;
	case LWS_CALLBACK_RAW_WRITEABLE_FILE:
		if (msg_flush(&bill) == 0)
			lws_callback_on_writable(wsi);
		return 0;
	case LWS_CALLBACK_RAW_CLOSE_FILE:
		if (wsi == bill_wsi)
			bill_down("closed");
		return 0;
	default:
		return 0;
	}
}

struct lws_protocols
tun_bill_protocol(void)
{
	struct lws_protocols p = { "tun-bill", cb_bill, 0, 0, 0, NULL, 0 };
	return p;
}
