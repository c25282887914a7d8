/*
 * tools/hubctl: what hubctl's files share — one request to hubd.sock, and
 * the commands that do more than one (hubctl_release.c).
 */
#ifndef SWB_HUBCTL_H
#define SWB_HUBCTL_H

#include <stddef.h>
#include <jansson.h>

/* Send one request (NUL-separated args) to sock and read the JSON answer;
 * NULL (and a message on stderr) when hubd could not be asked. */
json_t *hubctl_ask(const char *sock, const char *req, size_t len);
/* hubctl release key|publish|announce (argv[0] is "release"); exit code. */
int hubctl_release(const char *sock, int argc, char **argv, int as_json);

#endif
