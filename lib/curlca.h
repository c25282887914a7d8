/*
 * lib/curlca: where libcurl transfers of both binaries (agentd's calls to
 * providers, the hub's moderation calls) find their CA certificates.
 */
#ifndef SWB_CURLCA_H
#define SWB_CURLCA_H

/*
 * 1 when transfers should use a CA bundle file alone (set CURLOPT_CAPATH
 * to NULL): ca_file is given (CURLOPT_CAINFO), or libcurl's default bundle
 * is a readable file.  0 keeps libcurl's CA directory (no bundle).
 * Asks libcurl once per call: call it at start-up, not per transfer.
 */
int curlca_bundle_only(const char *ca_file);

#endif
