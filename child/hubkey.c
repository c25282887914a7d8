/*
 * child/hubkey: load or create the hub's ledger signing key.
 */
#include "child/hubkey.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sodium.h>
#include "lib/log.h"

#define B64_LEN 88		/* base64 of 64 bytes, padded */

void
hub_key_wipe(struct hub_key *k)
{
	sodium_memzero(k, sizeof(*k));
}

/* mkdir -p of the key file's directory (0700). */
static int
key_dir(const char *path, char *err, size_t errlen)
{
	char dir[512], *p;

	if (snprintf(dir, sizeof(dir), "%s", path) >= (int)sizeof(dir)) {
		snprintf(err, errlen, "key path too long");
		return -1;
	}
	if ((p = strrchr(dir, '/')) == NULL || p == dir)
		return 0;
	*p = '\0';
	for (p = dir + 1; ; p++) {
		int end = *p == '\0';
		if (*p != '/' && !end)
			continue;
		*p = '\0';
		if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
			snprintf(err, errlen, "key directory %s: %s", dir,
			    strerror(errno));
			return -1;
		}
		if (end)
			return 0;
		*p = '/';
	}
}

static int
create_key(const char *path, struct hub_key *k, char *err, size_t errlen)
{
	char text[B64_LEN + 2];
	int fd;
	ssize_t w;

	if (key_dir(path, err, errlen) != 0)
		return -1;
	crypto_sign_keypair(k->pk, k->sk);
	sodium_bin2base64(text, sizeof(text), k->sk, 64,
	    sodium_base64_VARIANT_ORIGINAL);
	text[B64_LEN] = '\n';
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		snprintf(err, errlen, "key file %s: %s", path, strerror(errno));
		sodium_memzero(text, sizeof(text));
		hub_key_wipe(k);
		return -1;
	}
	w = write(fd, text, B64_LEN + 1);
	sodium_memzero(text, sizeof(text));
	if (w != B64_LEN + 1 || fsync(fd) != 0) {
		snprintf(err, errlen, "key file %s: short write", path);
		close(fd);
		unlink(path);
		hub_key_wipe(k);
		return -1;
	}
	close(fd);
	k->loaded = 1;
	log_info("created a new Ed25519 signing key in %s", path);
	return 0;
}

int
hub_key_load(const char *path, struct hub_key *k, char *err, size_t errlen)
{
	char text[B64_LEN + 8];
	unsigned char seed[32], sk[64];
	size_t bin;
	ssize_t n;
	int fd, rc = -1;

	if (sodium_init() < 0) {
		snprintf(err, errlen, "sodium_init failed");
		return -1;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT)
		return create_key(path, k, err, errlen);
	if (fd < 0) {
		snprintf(err, errlen, "key file %s: %s", path, strerror(errno));
		return -1;
	}
	{
		struct stat st;
		if (fstat(fd, &st) == 0 && (st.st_mode & 077) != 0)
			log_warn("key file %s: group or others may read it "
			    "(mode %03o); make it 0600", path,
			    (unsigned)(st.st_mode & 0777));
	}
	n = read(fd, text, sizeof(text));
	close(fd);
	if (!(n == B64_LEN || (n == B64_LEN + 1 && text[B64_LEN] == '\n')) ||
	    sodium_base642bin(sk, sizeof(sk), text, B64_LEN, NULL, &bin, NULL,
	    sodium_base64_VARIANT_ORIGINAL) != 0 || bin != sizeof(sk)) {
		snprintf(err, errlen, "key file %s: not base64 of a 64-byte "
		    "Ed25519 secret key and a newline", path);
		goto out;
	}
	crypto_sign_ed25519_sk_to_seed(seed, sk);
	crypto_sign_seed_keypair(k->pk, k->sk, seed);
	if (sodium_memcmp(sk, k->sk, sizeof(sk)) != 0) {
		snprintf(err, errlen, "key file %s: its public half does not "
		    "match its seed", path);
		hub_key_wipe(k);
		goto out;
	}
	k->loaded = 1;
	rc = 0;
out:
	sodium_memzero(text, sizeof(text));
	sodium_memzero(seed, sizeof(seed));
	sodium_memzero(sk, sizeof(sk));
	return rc;
}
