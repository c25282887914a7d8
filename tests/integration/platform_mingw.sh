# agent/platform/windows.c builds with Debian's mingw-w64 cross compiler
# (only mingw headers, no libsodium), with the project's warnings as errors,
# and implements every function agent/platform.h declares: a small program
# calling each one must link against the Win32 import libraries.
# Skips (exit 0, SKIP) only when x86_64-w64-mingw32-gcc is not installed.
set -euo pipefail
cd "$(dirname "$0")/../.."
CC=x86_64-w64-mingw32-gcc
if ! command -v "$CC" >/dev/null 2>&1; then
    echo "SKIP: $CC not installed (apt-get install gcc-mingw-w64-x86-64)"
    exit 0
fi
: "${SWB_TMP:?}"
fail() { echo "FAIL: $*" >&2; exit 1; }

echo "--- compile agent/platform/windows.c"
"$CC" -std=c17 -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
    -Wmissing-prototypes -I. -c agent/platform/windows.c \
    -o "$SWB_TMP/windows.o" || fail "agent/platform/windows.c does not compile with $CC"

echo "--- every plat_ function in agent/platform.h is defined"
decl=$(grep -oE '\bplat_[a-z_]+\(' agent/platform.h | tr -d '(' | sort -u)
[ -n "$decl" ] || fail "no plat_ functions found in agent/platform.h"
defs=$(x86_64-w64-mingw32-nm -g --defined-only "$SWB_TMP/windows.o" | awk '{print $3}')
for f in $decl; do
    grep -qx "$f" <<<"$defs" || fail "windows.c does not define $f"
done

echo "--- a program using the interface links"
cat >"$SWB_TMP/use.c" <<'C'
#include "agent/platform.h"
#include <stdio.h>

int
main(void)
{
	struct plat_paths p;
	char err[256], buf[64];
	size_t n;
	unsigned char r[16];

	plat_default_paths(&p);
	plat_random(r, sizeof(r));
	plat_tune_heap();
	(void)plat_check_key_perms(p.key, err, sizeof(err));
	(void)plat_read_secret_file(p.key, buf, sizeof(buf), &n, err, sizeof(err));
	(void)plat_write_secret_file("x.key", "k", 1, 0, err, sizeof(err));
	(void)plat_self_path(buf, sizeof(buf), err, sizeof(err));
	(void)plat_replace_binary("agentd.exe", "new.exe", err, sizeof(err));
	(void)plat_restore_binary("agentd.exe", err, sizeof(err));
	printf("%s\n", p.config);
	return 0;
}
C
"$CC" -std=c17 -Wall -Wextra -Werror -I. "$SWB_TMP/use.c" "$SWB_TMP/windows.o" \
    -ladvapi32 -lbcrypt -o "$SWB_TMP/use.exe" || fail "linking against windows.o failed"
echo ok
