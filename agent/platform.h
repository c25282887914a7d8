/*
 * agent/platform: the OS layer of agentd, one implementation per OS in
 * agent/platform/{linux,macos,windows}.c (only linux.c is linked on Linux).
 * It owns default paths, secret-file creation and permission checks,
 * replacing the running binary for a self-update (and rolling it back) and
 * the random source.
 *
 * Only standard C types cross this interface so that every implementation
 * (including the mingw-w64 one) compiles against it unchanged.  Paths are
 * UTF-8; errors are written into err as one line without a trailing period.
 */
#ifndef SWB_AGENT_PLATFORM_H
#define SWB_AGENT_PLATFORM_H

#include <stddef.h>
#include <stdint.h>

#define PLAT_PATH_MAX	256

/* Return values besides 0. */
#define PLAT_ERR	(-1)	/* err says why */
#define PLAT_EXISTS	(-2)	/* plat_write_secret_file: path exists, !overwrite */

struct plat_paths {
	char config[PLAT_PATH_MAX];	/* agentd.ini */
	char key[PLAT_PATH_MAX];	/* agent.key (Ed25519 secret key) */
	char state_dir[PLAT_PATH_MAX];	/* ledger database and other state */
};

/* The per-OS defaults used when agentd.ini or the command line says nothing. */
void plat_default_paths(struct plat_paths *p);

/*
 * Is path a regular file that only its owner (the user agentd runs as) can
 * read or write?  POSIX: stat(2), S_ISREG, (mode & 077) == 0, uid == euid.
 * Windows: the DACL grants nobody but the owner, SYSTEM and Administrators.
 * Returns 0, or PLAT_ERR with err saying what is wrong and how to fix it.
 */
int plat_check_key_perms(const char *path, char *err, size_t errlen);

/*
 * Open path, apply the plat_check_key_perms() rules to the opened file (not
 * to the name, so the file cannot be swapped in between) and read it whole
 * into buf.  A file larger than cap is an error.  *len gets the byte count.
 */
int plat_read_secret_file(const char *path, void *buf, size_t cap,
    size_t *len, char *err, size_t errlen);

/*
 * Write data to a new file readable and writable by its owner only (POSIX
 * mode 0600; Windows a protected DACL naming only the current user).  When
 * overwrite is 0 an existing path is left alone and PLAT_EXISTS returned;
 * when 1 the data goes to a fresh temporary file that is then renamed over
 * path, so the old file's permissions never carry over.  The data is flushed
 * to disk before the call returns 0.
 */
int plat_write_secret_file(const char *path, const void *data, size_t len,
    int overwrite, char *err, size_t errlen);

/*
 * The path of the running executable, found once at start-up (before any
 * update renames it): POSIX /proc/self/exe or the loader's answer, Windows
 * GetModuleFileNameW.  0, or PLAT_ERR.
 */
int plat_self_path(char *buf, size_t len, char *err, size_t errlen);

/*
 * Self-update (agent/ag_update): move the executable self aside to
 * self + ".old" (replacing an older one) and put new_path in its place,
 * each step a rename on the same file system, so that self always names a
 * whole binary; the running image is unaffected and the next start runs
 * the new file.  POSIX: the new file takes self's mode (minus set-id
 * bits); self.old is a hard link made before the rename.  Windows: a
 * running image may be renamed but not overwritten, hence the same two
 * moves.  Returns 0 when done, 1 when the OS will only complete it at the
 * next reboot (Windows fallback), PLAT_ERR on failure (nothing changed).
 */
int plat_replace_binary(const char *self, const char *new_path, char *err,
    size_t errlen);

/* Roll back: put self + ".old" back at self.  0, or PLAT_ERR. */
int plat_restore_binary(const char *self, char *err, size_t errlen);

/* Fill buf with cryptographically secure random bytes.  Never fails. */
void plat_random(void *buf, size_t len);

/* Keep the heap a burst of transfers grew instead of giving it back to
 * the kernel after each (libcurl allocates and frees its transfer buffers
 * per request; giving them back costs page faults to grow again). */
void plat_tune_heap(void);

#endif
