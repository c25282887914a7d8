/*
 * billing/bill: shared declarations of the billing process's modules.
 */
#ifndef SWB_BILL_H
#define SWB_BILL_H

#include <jansson.h>
#include "billing/store.h"
#include "master/child.h"

extern struct store *bill_store;

void bill_reply_json(struct child_env *env, uint64_t id, json_t *o);
int  bill_parse_id(const char *s, uint64_t *id);
void bill_cmd_token(struct child_env *env, uint64_t rid, int argc, char **argv);
void bill_cmd_price(struct child_env *env, uint64_t rid, int argc, char **argv);
void bill_token_get(const struct ipc_token_get *q, struct ipc_token_info *r);

#endif
