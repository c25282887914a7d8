/*
 * lib/curlca: how libcurl transfers of both binaries (agentd's calls to
 * providers, the hub's moderation calls) find their CA certificates and
 * share their TLS sessions.
 */
#ifndef SWB_CURLCA_H
#define SWB_CURLCA_H

#include <curl/curl.h>

/*
 * 1 when transfers should use a CA bundle file alone (set CURLOPT_CAPATH
 * to NULL): ca_file is given (CURLOPT_CAINFO), or libcurl's default bundle
 * is a readable file.  0 keeps libcurl's CA directory (no bundle).
 * Asks libcurl once per call: call it at start-up, not per transfer.
 */
int curlca_bundle_only(const char *ca_file);

/*
 * A share handle for TLS sessions (CURLOPT_SHARE on every transfer), so a
 * new connection resumes the session an earlier connection made, whichever
 * transfer made it; NULL when libcurl cannot make one.  Freed with
 * curl_share_cleanup() after every transfer that used it.  One thread.
 */
CURLSH *curlca_share_new(void);

#endif
