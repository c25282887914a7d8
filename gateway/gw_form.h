/*
 * gateway/gw_form: one field of a multipart/form-data body (see gw_form.c).
 */
#ifndef SWB_GW_FORM_H
#define SWB_GW_FORM_H

#include <stddef.h>

/*
 * The value of the first part named `name` in body (multipart/form-data
 * with the boundary of ctype), copied NUL-terminated into out: its
 * length, or -1 (not multipart, malformed, absent, or longer than out).
 */
int gw_form_field(const char *ctype, const void *body, size_t len,
    const char *name, char *out, size_t outlen);

#endif
