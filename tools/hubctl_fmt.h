/*
 * tools/hubctl_fmt: how hubctl shows each command's answer to people.
 */
#ifndef SWB_HUBCTL_FMT_H
#define SWB_HUBCTL_FMT_H

#include <jansson.h>

int  hubctl_known(const char *cmd);
void hubctl_print(const char *cmd, json_t *o);
/*
 * Checks a command's arguments before sending (argv[0] is the command;
 * "--json" is skipped).  0 ok; else the reason is printed to stderr.
 */
int  hubctl_check(int argc, char **argv);

#endif
