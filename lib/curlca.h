/*
 * lib/curlca: how libcurl transfers of both binaries (agentd's calls to
 * providers, the hub's moderation calls) find their CA certificates and
 * share their TLS sessions.
 */
#ifndef SWB_CURLCA_H
#define SWB_CURLCA_H

#include <curl/curl.h>

/*
 * 1 when libcurl's default CA bundle is a readable file.  Asks libcurl:
 * call it once, at start-up.
 */
int curlca_bundle_only(void);

/*
 * A share handle for TLS sessions (curlca_setopt), so a new connection
 * resumes the session an earlier connection made, whichever transfer made
 * it; NULL when libcurl cannot make one.  Freed with curl_share_cleanup()
 * after every transfer that used it.  One thread.
 */
CURLSH *curlca_share_new(void);

/*
 * A transfer's CA and TLS session options: ca_file (when not empty) as
 * its CA bundle; the CA directory dropped when a bundle file is there
 * (ca_file, or bundle: curlca_bundle_only()), so that libcurl builds its
 * store once, not once per new connection; share (when not NULL) for its
 * TLS sessions.  The first option libcurl refuses is returned.
 */
CURLcode curlca_setopt(CURL *e, const char *ca_file, int bundle,
    CURLSH *share);

#endif
