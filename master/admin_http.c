/*
 * master/admin_http: the master's side of the admin HTTP API.  The admin
 * child (admin/) owns the TCP listener and speaks HTTP; it turns each
 * route into the argv of a hubctl command and sends it here as
 * IPC_ADMIN_HTTP with the SHA-256 of the admin key it was shown.  The
 * master never trusts the child's word that a key is good: it asks
 * billing ("admin-key check HASH", the hashes live in the store) and only
 * then runs the command through the same table as hubd.sock (admin.c),
 * answering IPC_ADMIN_HTTP_RESP with the command's JSON.  So a
 * compromised admin child (it faces the network, as [hub] user) can do
 * no more than the keys it is shown allow.
 */
#include "master/master.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "lib/log.h"

#define AH_TIMEOUT_MS 15000

static const char unauthorized[] =
    "{\"ok\":false,\"error\":\"unauthorized\",\"status\":401}";

static struct proc *
admin_proc(struct master *m, pid_t pid)
{
	for (uint32_t i = 0; i < m->nprocs; i++)
		if (m->procs[i].pid == pid && pid != 0 &&
		    strcmp(m->procs[i].kind->name, "admin") == 0)
			return &m->procs[i];
	return NULL;
}

static void
ah_free(struct admin_http *h)
{
	free(h->argv_buf);
	memset(h, 0, sizeof(*h));
}

void
admin_http_send(struct master *m, int slot, const char *json, size_t len)
{
	struct admin_http *h = &m->http[slot];
	struct proc *p = admin_proc(m, h->child_pid);

	if (p != NULL && p->conn.fd >= 0) {
		if (msg_enqueue(&p->conn, IPC_ADMIN_HTTP_RESP, h->child_id, json,
		    len) != 0)
			log_warn("admin: answer of %zu bytes to the admin child "
			    "dropped", len);
		else
			(void)msg_flush(&p->conn);
	}
	ah_free(h);
}

static int
hex64(const char *s, size_t n)
{
	if (n != 64)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return 1;
}

void
admin_http_req(struct master *m, struct proc *p, uint64_t id,
    const char *payload, uint32_t len)
{
	const char *hash = payload;
	size_t hlen = strnlen(payload, len);
	struct admin_http *h = NULL;
	char check[128];
	int n;

	if (strcmp(p->kind->name, "admin") != 0) {
		log_warn("%s (pid %d) sent an admin HTTP request; ignored",
		    p->name, (int)p->pid);
		return;
	}
	for (int i = 0; i < ADMIN_HTTP_MAX; i++)
		if (m->http[i].state == AH_FREE) {
			h = &m->http[i];
			break;
		}
	if (h == NULL) {
		static const char busy[] = "{\"ok\":false,\"error\":\"too many "
		    "admin requests at once\",\"status\":503}";
		if (msg_enqueue(&p->conn, IPC_ADMIN_HTTP_RESP, id, busy,
		    sizeof(busy)) == 0)
			(void)msg_flush(&p->conn);
		return;
	}
	h->child_id = id;
	h->child_pid = p->pid;
	if (!hex64(hash, hlen) || hlen + 1 >= len) {
		h->state = AH_AUTH;	/* so that admin_http_send finds it */
		admin_http_send(m, (int)(h - m->http), unauthorized,
		    sizeof(unauthorized));
		return;
	}
	h->argv_len = len - (uint32_t)(hlen + 1);
	if ((h->argv_buf = malloc(h->argv_len)) == NULL) {
		admin_http_send(m, (int)(h - m->http), unauthorized,
		    sizeof(unauthorized));
		return;
	}
	memcpy(h->argv_buf, payload + hlen + 1, h->argv_len);
	n = snprintf(check, sizeof(check), "admin-key%ccheck%c%.64s", 0, 0, hash);
	h->state = AH_AUTH;
	h->id = ++m->next_admin_id;
	h->deadline = clock_mono_ms() + AH_TIMEOUT_MS;
	if (proc_forward_admin(m, "billing", h->id, check, (size_t)n + 1,
	    &h->target) != 0) {
		static const char down[] = "{\"ok\":false,\"error\":\"the billing "
		    "process is not running\",\"status\":503}";
		admin_http_send(m, (int)(h - m->http), down, sizeof(down));
	}
}

int
admin_http_child_reply(struct master *m, uint64_t id, const char *json,
    size_t len)
{
	for (int i = 0; i < ADMIN_HTTP_MAX; i++) {
		struct admin_http *h = &m->http[i];
		json_t *o;
		int ok;
		if (h->state == AH_FREE || h->id != id)
			continue;
		if (h->state == AH_CMD) {
			admin_http_send(m, i, json, len);
			return 1;
		}
		o = json_loadb(json, strnlen(json, len), 0, NULL);
		ok = o != NULL && json_is_true(json_object_get(o, "ok"));
		json_decref(o);
		if (!ok) {
			admin_http_send(m, i, unauthorized, sizeof(unauthorized));
			return 1;
		}
		struct admin_who w = { NULL, i };
		admin_run(m, w, h->argv_buf, h->argv_len);
		return 1;
	}
	return 0;
}

void
admin_http_child_gone(struct master *m, const struct proc *p)
{
	static const char gone[] = "{\"ok\":false,\"error\":\"the process "
	    "answering this command exited\",\"status\":503}";

	for (int i = 0; i < ADMIN_HTTP_MAX; i++) {
		struct admin_http *h = &m->http[i];
		if (h->state == AH_FREE)
			continue;
		if (h->child_pid == p->pid)
			ah_free(h);	/* the asker itself is gone */
		else if (h->target == p->pid)
			admin_http_send(m, i, gone, sizeof(gone));
	}
}

void
admin_http_timeouts(struct master *m, int64_t now)
{
	static const char late[] = "{\"ok\":false,\"error\":\"no answer in "
	    "time\",\"status\":504}";

	for (int i = 0; i < ADMIN_HTTP_MAX; i++)
		if (m->http[i].state != AH_FREE && now >= m->http[i].deadline)
			admin_http_send(m, i, late, sizeof(late));
}
