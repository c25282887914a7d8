/*
 * tools/hubctl_fmt: how hubctl shows each command's answer to people.
 */
#ifndef SWB_HUBCTL_FMT_H
#define SWB_HUBCTL_FMT_H

#include <jansson.h>

int  hubctl_known(const char *cmd);
void hubctl_print(const char *cmd, json_t *o);

#endif
