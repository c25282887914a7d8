/*
 * lib/curlca: see curlca.h.
 *
 * libcurl (7.87 and later, OpenSSL) keeps the certificate store it built
 * for a connection, for the next ones (CURLOPT_CA_CACHE_TIMEOUT, 24 h),
 * only when no CA directory is set.  Debian's libcurl is built with both
 * a bundle and a directory (/etc/ssl/certs), so every new connection
 * read and parsed the whole bundle again: 25 ms of CPU on this project's
 * test machine for Debian 12's 144 certificates, on the caller's event
 * loop.  Where the bundle is there, transfers use it alone; Debian's
 * directory holds the same certificates.
 */
#include "lib/curlca.h"

#include <unistd.h>

int
curlca_bundle_only(void)
{
	CURL *e;
	char *path = NULL;
	int ok;

	if ((e = curl_easy_init()) == NULL)
		return 0;
	ok = curl_easy_getinfo(e, CURLINFO_CAINFO, &path) == CURLE_OK &&
	    path != NULL && access(path, R_OK) == 0;
	curl_easy_cleanup(e);
	return ok;
}

CURLSH *
curlca_share_new(void)
{
	CURLSH *sh;

	if ((sh = curl_share_init()) == NULL)
		return NULL;
	if (curl_share_setopt(sh, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION) !=
	    CURLSHE_OK) {
		curl_share_cleanup(sh);
		return NULL;
	}
	return sh;
}

CURLcode
curlca_setopt(CURL *e, const char *ca_file, int bundle, CURLSH *share)
{
	CURLcode rc = CURLE_OK;
	int file = ca_file != NULL && ca_file[0] != '\0';

	if (file)
		rc = curl_easy_setopt(e, CURLOPT_CAINFO, ca_file);
	if (rc == CURLE_OK && (file || bundle))
		rc = curl_easy_setopt(e, CURLOPT_CAPATH, (char *)NULL);
	if (rc == CURLE_OK && share != NULL)
		rc = curl_easy_setopt(e, CURLOPT_SHARE, share);
	return rc;
}
