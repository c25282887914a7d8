/*
 * agent/platform/windows.c: the Win32 implementation of agent/platform.h —
 * default paths under %ProgramData%, owner-only secret files (a protected
 * DACL naming only the current user) and their checks (the file's owner and
 * DACL), replacing the running executable (MoveFileExW: the running image
 * is renamed aside to NAME.old, which a rollback moves back; a
 * delay-until-reboot fallback), BCryptGenRandom.  agentd runs as a
 * service on Windows.
 *
 * Must build with mingw-w64 alone (tests/integration/platform_mingw.sh):
 * no libsodium, no POSIX headers.  Paths cross the interface as UTF-8 and
 * are widened here; only the W functions are called.
 */
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#ifndef _WIN32_WINNT
#define _WIN32_WINNT 0x0601	/* Windows 7: BCryptGenRandom system RNG */
#endif

#include "agent/platform.h"

#include <windows.h>
#include <aclapi.h>
#include <bcrypt.h>
#include <sddl.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

/* Rights that let someone read, change, or re-permission a key file. */
#define KEY_SENSITIVE_RIGHTS (FILE_READ_DATA | FILE_WRITE_DATA | \
    FILE_APPEND_DATA | WRITE_DAC | WRITE_OWNER | GENERIC_READ | \
    GENERIC_WRITE | GENERIC_ALL)

/* UTF-8 to a malloc'd UTF-16 string, or NULL. */
static wchar_t *
widen(const char *s)
{
	wchar_t *w;
	int n;

	n = MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, s, -1, NULL, 0);
	if (n <= 0)
		return NULL;
	if ((w = malloc((size_t)n * sizeof(*w))) == NULL)
		return NULL;
	if (MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, s, -1, w, n) != n) {
		free(w);
		return NULL;
	}
	return w;
}

/* UTF-16 to UTF-8 into out; 0, or -1 when it does not fit. */
static int
narrow(const wchar_t *w, char *out, size_t outlen)
{
	if (outlen > INT_MAX)
		outlen = INT_MAX;
	return WideCharToMultiByte(CP_UTF8, 0, w, -1, out, (int)outlen, NULL,
	    NULL) > 0 ? 0 : -1;
}

/* "what PATH: <system message> (error N)" */
static void
win_error(char *err, size_t errlen, const char *what, const char *path,
    DWORD code)
{
	char msg[256];
	DWORD n;

	n = FormatMessageA(FORMAT_MESSAGE_FROM_SYSTEM |
	    FORMAT_MESSAGE_IGNORE_INSERTS, NULL, code, 0, msg, sizeof(msg), NULL);
	while (n > 0 && (msg[n - 1] == '\r' || msg[n - 1] == '\n' ||
	    msg[n - 1] == '.' || msg[n - 1] == ' '))
		n--;
	msg[n] = '\0';
	snprintf(err, errlen, "%s%s%s: %s (error %lu)", what,
	    path != NULL ? " " : "", path != NULL ? path : "",
	    n > 0 ? msg : "unknown error", (unsigned long)code);
}

static int
bad_path(const char *path, char *err, size_t errlen)
{
	snprintf(err, errlen, "%s: not valid UTF-8 or out of memory", path);
	return PLAT_ERR;
}

void
plat_default_paths(struct plat_paths *p)
{
	wchar_t wbase[MAX_PATH];
	char base[PLAT_PATH_MAX];
	DWORD n;

	n = GetEnvironmentVariableW(L"ProgramData", wbase, MAX_PATH);
	if (n == 0 || n >= MAX_PATH || narrow(wbase, base, 160) != 0)
		snprintf(base, sizeof(base), "C:\\ProgramData");
	snprintf(p->config, sizeof(p->config), "%s\\Switchboard\\agentd.ini",
	    base);
	snprintf(p->key, sizeof(p->key), "%s\\Switchboard\\agent.key", base);
	snprintf(p->state_dir, sizeof(p->state_dir), "%s\\Switchboard\\state",
	    base);
}

/* The TOKEN_USER of this process (malloc'd), or NULL. */
static TOKEN_USER *
current_user(void)
{
	TOKEN_USER *tu = NULL;
	HANDLE tok;
	DWORD size = 0;

	if (!OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &tok))
		return NULL;
	if (!GetTokenInformation(tok, TokenUser, NULL, 0, &size) &&
	    GetLastError() == ERROR_INSUFFICIENT_BUFFER &&
	    (tu = malloc(size)) != NULL &&
	    !GetTokenInformation(tok, TokenUser, tu, size, &size)) {
		free(tu);
		tu = NULL;
	}
	CloseHandle(tok);
	return tu;
}

/* Accounts allowed to hold a key: its user, LocalSystem, Administrators. */
static int
trusted_sid(PSID sid, PSID me)
{
	return EqualSid(sid, me) || IsWellKnownSid(sid, WinLocalSystemSid) ||
	    IsWellKnownSid(sid, WinBuiltinAdministratorsSid);
}

/* "DOMAIN\name", or the S-1-... string, for error messages. */
static void
sid_name(PSID sid, char *out, size_t outlen)
{
	char name[128], dom[128];
	DWORD nlen = sizeof(name), dlen = sizeof(dom);
	SID_NAME_USE use;
	LPSTR str = NULL;

	if (LookupAccountSidA(NULL, sid, name, &nlen, dom, &dlen, &use)) {
		snprintf(out, outlen, "%s%s%s", dom, dom[0] ? "\\" : "", name);
		return;
	}
	if (ConvertSidToStringSidA(sid, &str)) {
		snprintf(out, outlen, "%s", str);
		LocalFree(str);
		return;
	}
	snprintf(out, outlen, "an unknown account");
}

/*
 * The Windows form of "mode & 077 == 0 and owned by us": the owner is this
 * user (or SYSTEM/Administrators) and no ACE that applies to the file lets
 * any other account read, write or re-permission it.  A NULL DACL means
 * everyone has full access.
 */
static int
check_security(const char *path, PSID owner, PACL dacl, char *err,
    size_t errlen)
{
	ACL_SIZE_INFORMATION info;
	TOKEN_USER *me;
	char who[300];
	int rc = PLAT_ERR;

	if ((me = current_user()) == NULL) {
		win_error(err, errlen, "reading the process token", NULL,
		    GetLastError());
		return PLAT_ERR;
	}
	if (owner == NULL || !trusted_sid(owner, me->User.Sid)) {
		if (owner != NULL)
			sid_name(owner, who, sizeof(who));
		else
			snprintf(who, sizeof(who), "nobody");
		snprintf(err, errlen, "%s is owned by %s, not by the account "
		    "agentd runs as", path, who);
		goto out;
	}
	if (dacl == NULL) {
		snprintf(err, errlen, "%s has no access list, so Everyone may "
		    "read it; recreate it with agentd keygen", path);
		goto out;
	}
	if (!GetAclInformation(dacl, &info, sizeof(info), AclSizeInformation)) {
		win_error(err, errlen, "reading the access list of", path,
		    GetLastError());
		goto out;
	}
	for (DWORD i = 0; i < info.AceCount; i++) {
		ACCESS_ALLOWED_ACE *a;
		void *ace;

		if (!GetAce(dacl, i, &ace)) {
			win_error(err, errlen, "reading the access list of",
			    path, GetLastError());
			goto out;
		}
		a = ace;
		/* Both types share the header/mask/SID layout. */
		if (a->Header.AceType != ACCESS_ALLOWED_ACE_TYPE &&
		    a->Header.AceType != ACCESS_ALLOWED_CALLBACK_ACE_TYPE)
			continue;
		if (a->Header.AceFlags & INHERIT_ONLY_ACE)
			continue;
		if ((a->Mask & KEY_SENSITIVE_RIGHTS) == 0)
			continue;
		if (trusted_sid((PSID)&a->SidStart, me->User.Sid))
			continue;
		sid_name((PSID)&a->SidStart, who, sizeof(who));
		snprintf(err, errlen, "%s can be read or written by %s; only "
		    "its owner may have access (recreate it with agentd keygen, "
		    "or remove that entry and inheritance with icacls)", path,
		    who);
		goto out;
	}
	rc = 0;
out:
	free(me);
	return rc;
}

int
plat_check_key_perms(const char *path, char *err, size_t errlen)
{
	PSECURITY_DESCRIPTOR sd = NULL;
	PSID owner = NULL;
	PACL dacl = NULL;
	wchar_t *w;
	DWORD attr, rc;
	int ret;

	if ((w = widen(path)) == NULL)
		return bad_path(path, err, errlen);
	attr = GetFileAttributesW(w);
	if (attr == INVALID_FILE_ATTRIBUTES) {
		win_error(err, errlen, "", path, GetLastError());
		free(w);
		return PLAT_ERR;
	}
	if (attr & (FILE_ATTRIBUTE_DIRECTORY | FILE_ATTRIBUTE_DEVICE |
	    FILE_ATTRIBUTE_REPARSE_POINT)) {
		snprintf(err, errlen, "%s is not a regular file (a directory, "
		    "device or link)", path);
		free(w);
		return PLAT_ERR;
	}
	rc = GetNamedSecurityInfoW(w, SE_FILE_OBJECT,
	    OWNER_SECURITY_INFORMATION | DACL_SECURITY_INFORMATION, &owner,
	    NULL, &dacl, NULL, &sd);
	free(w);
	if (rc != ERROR_SUCCESS) {
		win_error(err, errlen, "reading the security of", path, rc);
		return PLAT_ERR;
	}
	ret = check_security(path, owner, dacl, err, errlen);
	LocalFree(sd);
	return ret;
}

int
plat_read_secret_file(const char *path, void *buf, size_t cap, size_t *len,
    char *err, size_t errlen)
{
	BY_HANDLE_FILE_INFORMATION fi;
	PSECURITY_DESCRIPTOR sd = NULL;
	PSID owner = NULL;
	PACL dacl = NULL;
	LARGE_INTEGER size;
	HANDLE h;
	wchar_t *w;
	size_t got = 0;
	DWORD rc, n;

	if ((w = widen(path)) == NULL)
		return bad_path(path, err, errlen);
	/* Open the link itself, if it is one, so the checks see what we read. */
	h = CreateFileW(w, GENERIC_READ, FILE_SHARE_READ, NULL, OPEN_EXISTING,
	    FILE_ATTRIBUTE_NORMAL | FILE_FLAG_OPEN_REPARSE_POINT, NULL);
	free(w);
	if (h == INVALID_HANDLE_VALUE) {
		win_error(err, errlen, "", path, GetLastError());
		return PLAT_ERR;
	}
	if (GetFileType(h) != FILE_TYPE_DISK ||
	    !GetFileInformationByHandle(h, &fi) ||
	    (fi.dwFileAttributes & (FILE_ATTRIBUTE_DIRECTORY |
	    FILE_ATTRIBUTE_DEVICE | FILE_ATTRIBUTE_REPARSE_POINT))) {
		snprintf(err, errlen, "%s is not a regular file (a directory, "
		    "device, pipe or link)", path);
		goto fail;
	}
	rc = GetSecurityInfo(h, SE_FILE_OBJECT, OWNER_SECURITY_INFORMATION |
	    DACL_SECURITY_INFORMATION, &owner, NULL, &dacl, NULL, &sd);
	if (rc != ERROR_SUCCESS) {
		win_error(err, errlen, "reading the security of", path, rc);
		goto fail;
	}
	if (check_security(path, owner, dacl, err, errlen) != 0) {
		LocalFree(sd);
		goto fail;
	}
	LocalFree(sd);
	if (!GetFileSizeEx(h, &size)) {
		win_error(err, errlen, "", path, GetLastError());
		goto fail;
	}
	if ((unsigned long long)size.QuadPart > cap) {
		snprintf(err, errlen, "%s is %lld bytes, more than the %zu "
		    "expected", path, (long long)size.QuadPart, cap);
		goto fail;
	}
	while (got < cap) {
		DWORD want = cap - got > 0x10000000 ? 0x10000000 :
		    (DWORD)(cap - got);

		if (!ReadFile(h, (char *)buf + got, want, &n, NULL)) {
			win_error(err, errlen, "reading", path, GetLastError());
			goto fail;
		}
		if (n == 0)
			break;
		got += n;
	}
	CloseHandle(h);
	*len = got;
	return 0;
fail:
	CloseHandle(h);
	return PLAT_ERR;
}

/*
 * CreateFileW(CREATE_NEW) with a security descriptor whose owner is this
 * user and whose protected DACL (nothing inherited from the directory)
 * grants this user alone.  On failure returns INVALID_HANDLE_VALUE and
 * *code holds the error.
 */
static HANDLE
create_private(const wchar_t *w, DWORD *code)
{
	SECURITY_ATTRIBUTES sa;
	SECURITY_DESCRIPTOR sd;
	TOKEN_USER *me;
	PACL acl = NULL;
	HANDLE h = INVALID_HANDLE_VALUE;
	DWORD aclsize;

	*code = ERROR_OUTOFMEMORY;
	if ((me = current_user()) == NULL) {
		*code = GetLastError();
		return h;
	}
	aclsize = (DWORD)(sizeof(ACL) + sizeof(ACCESS_ALLOWED_ACE) -
	    sizeof(DWORD) + GetLengthSid(me->User.Sid));
	if ((acl = malloc(aclsize)) == NULL)
		goto out;
	if (!InitializeAcl(acl, aclsize, ACL_REVISION) ||
	    !AddAccessAllowedAce(acl, ACL_REVISION, FILE_ALL_ACCESS,
	    me->User.Sid) ||
	    !InitializeSecurityDescriptor(&sd, SECURITY_DESCRIPTOR_REVISION) ||
	    !SetSecurityDescriptorOwner(&sd, me->User.Sid, FALSE) ||
	    !SetSecurityDescriptorDacl(&sd, TRUE, acl, FALSE) ||
	    !SetSecurityDescriptorControl(&sd, SE_DACL_PROTECTED,
	    SE_DACL_PROTECTED)) {
		*code = GetLastError();
		goto out;
	}
	sa.nLength = sizeof(sa);
	sa.lpSecurityDescriptor = &sd;
	sa.bInheritHandle = FALSE;
	h = CreateFileW(w, GENERIC_WRITE, 0, &sa, CREATE_NEW,
	    FILE_ATTRIBUTE_NORMAL, NULL);
	if (h == INVALID_HANDLE_VALUE)
		*code = GetLastError();
out:
	free(acl);
	free(me);
	return h;
}

static int
write_all(HANDLE h, const void *data, size_t len)
{
	const char *p = data;
	DWORD n;

	while (len > 0) {
		DWORD want = len > 0x10000000 ? 0x10000000 : (DWORD)len;

		if (!WriteFile(h, p, want, &n, NULL))
			return -1;
		p += n;
		len -= n;
	}
	return FlushFileBuffers(h) ? 0 : -1;
}

int
plat_write_secret_file(const char *path, const void *data, size_t len,
    int overwrite, char *err, size_t errlen)
{
	char tmp[PLAT_PATH_MAX + 32];
	const char *target = path;
	unsigned char rnd[8];
	wchar_t *wpath, *wtarget;
	HANDLE h;
	DWORD code;

	if (overwrite) {
		/* A fresh file, so the old one's DACL never carries over. */
		plat_random(rnd, sizeof(rnd));
		if ((size_t)snprintf(tmp, sizeof(tmp),
		    "%s.tmp%02x%02x%02x%02x%02x%02x%02x%02x", path, rnd[0],
		    rnd[1], rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]) >=
		    sizeof(tmp)) {
			snprintf(err, errlen, "%s: path too long", path);
			return PLAT_ERR;
		}
		target = tmp;
	}
	if ((wpath = widen(path)) == NULL)
		return bad_path(path, err, errlen);
	if ((wtarget = widen(target)) == NULL) {
		free(wpath);
		return bad_path(target, err, errlen);
	}
	h = create_private(wtarget, &code);
	if (h == INVALID_HANDLE_VALUE) {
		free(wpath);
		free(wtarget);
		if (code == ERROR_FILE_EXISTS || code == ERROR_ALREADY_EXISTS) {
			snprintf(err, errlen, "%s already exists; refusing to "
			    "overwrite it", target);
			return overwrite ? PLAT_ERR : PLAT_EXISTS;
		}
		win_error(err, errlen, "creating", target, code);
		return PLAT_ERR;
	}
	if (write_all(h, data, len) != 0) {
		win_error(err, errlen, "writing", target, GetLastError());
		CloseHandle(h);
		DeleteFileW(wtarget);
		goto fail;
	}
	CloseHandle(h);
	if (overwrite && !MoveFileExW(wtarget, wpath,
	    MOVEFILE_REPLACE_EXISTING | MOVEFILE_WRITE_THROUGH)) {
		win_error(err, errlen, "replacing", path, GetLastError());
		DeleteFileW(wtarget);
		goto fail;
	}
	free(wpath);
	free(wtarget);
	return 0;
fail:
	free(wpath);
	free(wtarget);
	return PLAT_ERR;
}

/* The running executable's full path (malloc'd), or NULL. */
static wchar_t *
self_path(void)
{
	wchar_t *buf;
	DWORD cap = MAX_PATH, n;

	for (;;) {
		if ((buf = malloc(cap * sizeof(*buf))) == NULL)
			return NULL;
		n = GetModuleFileNameW(NULL, buf, cap);
		if (n == 0) {
			free(buf);
			return NULL;
		}
		if (n < cap)
			return buf;
		free(buf);		/* truncated: grow and retry */
		if (cap >= 65536)
			return NULL;
		cap *= 2;
	}
}

int
plat_self_path(char *buf, size_t len, char *err, size_t errlen)
{
	wchar_t *w = self_path();

	if (w == NULL) {
		win_error(err, errlen, "GetModuleFileNameW", NULL,
		    GetLastError());
		return PLAT_ERR;
	}
	if (narrow(w, buf, len) != 0) {
		free(w);
		snprintf(err, errlen, "executable path too long");
		return PLAT_ERR;
	}
	free(w);
	return 0;
}

/* self and self.old, widened (malloc'd).  0, or PLAT_ERR. */
static int
self_and_old(const char *self, wchar_t **wself, wchar_t **wold, char *err,
    size_t errlen)
{
	size_t sl;

	*wold = NULL;
	if ((*wself = widen(self)) == NULL)
		return bad_path(self, err, errlen);
	sl = wcslen(*wself);
	if ((*wold = malloc((sl + 5) * sizeof(**wold))) == NULL) {
		free(*wself);
		snprintf(err, errlen, "out of memory");
		return PLAT_ERR;
	}
	memcpy(*wold, *wself, sl * sizeof(**wold));
	memcpy(*wold + sl, L".old", 5 * sizeof(**wold));
	return 0;
}

int
plat_replace_binary(const char *self, const char *new_path, char *err,
    size_t errlen)
{
	wchar_t *wnew, *wself, *wold;
	int rc = PLAT_ERR;

	if ((wnew = widen(new_path)) == NULL)
		return bad_path(new_path, err, errlen);
	if (self_and_old(self, &wself, &wold, err, errlen) != 0) {
		free(wnew);
		return PLAT_ERR;
	}
	/*
	 * A running image may be renamed but not overwritten: move it aside
	 * to NAME.old (kept for a rollback), then put the new file in its
	 * place.
	 */
	(void)DeleteFileW(wold);	/* left over from a previous update */
	if (MoveFileExW(wself, wold, MOVEFILE_REPLACE_EXISTING |
	    MOVEFILE_WRITE_THROUGH)) {
		if (MoveFileExW(wnew, wself, MOVEFILE_WRITE_THROUGH)) {
			rc = 0;
			goto out;
		}
		/* Put the old binary back; the service must keep a binary. */
		(void)MoveFileExW(wold, wself, MOVEFILE_WRITE_THROUGH);
	}
	/* Let the session manager do it at the next boot (needs admin). */
	if (MoveFileExW(wnew, wself, MOVEFILE_REPLACE_EXISTING |
	    MOVEFILE_DELAY_UNTIL_REBOOT)) {
		rc = 1;
		goto out;
	}
	win_error(err, errlen, "replacing the executable with", new_path,
	    GetLastError());
out:
	free(wold);
	free(wself);
	free(wnew);
	return rc;
}

int
plat_restore_binary(const char *self, char *err, size_t errlen)
{
	wchar_t *wself, *wold;
	int rc = 0;

	if (self_and_old(self, &wself, &wold, err, errlen) != 0)
		return PLAT_ERR;
	if (!MoveFileExW(wold, wself, MOVEFILE_REPLACE_EXISTING |
	    MOVEFILE_WRITE_THROUGH)) {
		win_error(err, errlen, "restoring the executable from", NULL,
		    GetLastError());
		rc = PLAT_ERR;
	}
	free(wold);
	free(wself);
	return rc;
}

void
plat_random(void *buf, size_t len)
{
	unsigned char *p = buf;

	while (len > 0) {
		ULONG n = len > 0x10000000 ? 0x10000000 : (ULONG)len;

		if (!BCRYPT_SUCCESS(BCryptGenRandom(NULL, p, n,
		    BCRYPT_USE_SYSTEM_PREFERRED_RNG)))
			abort();	/* no safe way to go on without randomness */
		p += n;
		len -= n;
	}
}

void
plat_tune_heap(void)
{
	/* The process heap keeps its own caches. */
}
