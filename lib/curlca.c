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
curlca_bundle_only(const char *ca_file)
{
	CURL *e;
	char *path = NULL;
	int ok;

	if (ca_file != NULL && ca_file[0] != '\0')
		return 1;
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
