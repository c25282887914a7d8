/*
 * lib/log: formats and writes log lines to stderr, one write(2) per line so
 * lines of concurrent processes never interleave; as text or as one JSON
 * object per line ([hub] log_format).
 */
#include "lib/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <errno.h>
#include <sys/prctl.h>

static char log_prog[16] = "switchboard";
static char log_procname[32] = "main";
static int  log_lvl = LOG_LVL_INFO;
static int  log_fmt = LOG_FMT_TEXT;

static const char *const level_names[] = { "debug", "info", "warn", "error" };

void
log_init(const char *prog, const char *proc, int level)
{
	snprintf(log_prog, sizeof(log_prog), "%s", prog);
	log_setproc(proc);
	log_lvl = level;
}

void
log_setproc(const char *proc)
{
	char title[16];

	snprintf(log_procname, sizeof(log_procname), "%s", proc);
	snprintf(title, sizeof(title), "%s", proc);
	prctl(PR_SET_NAME, title, 0, 0, 0);
}

const char *
log_proc(void)
{
	return log_procname;
}

void
log_set_level(int level)
{
	if (level >= LOG_LVL_DEBUG && level <= LOG_LVL_ERROR)
		log_lvl = level;
}

void
log_set_format(int fmt)
{
	if (fmt == LOG_FMT_TEXT || fmt == LOG_FMT_JSON)
		log_fmt = fmt;
}

int
log_level_parse(const char *s)
{
	for (int i = 0; i <= LOG_LVL_ERROR; i++)
		if (strcmp(s, level_names[i]) == 0)
			return i;
	return -1;
}

const char *
log_level_name(int level)
{
	if (level < LOG_LVL_DEBUG || level > LOG_LVL_ERROR)
		return "?";
	return level_names[level];
}

static void (*log_sink)(const char *, size_t);

void
log_set_sink(void (*fn)(const char *line, size_t len))
{
	log_sink = fn;
}

/* Append s as the body of a JSON string: quotes, backslashes and control
 * bytes escaped; bytes >= 0x80 kept (the message is the caller's text). */
static size_t
json_escape(char *out, size_t cap, size_t n, const char *s)
{
	static const char hex[] = "0123456789abcdef";

	for (; *s != '\0' && n + 7 < cap; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\') {
			out[n++] = '\\';
			out[n++] = (char)c;
		} else if (c < 0x20 || c == 0x7f) {
			out[n++] = '\\';
			out[n++] = 'u';
			out[n++] = '0';
			out[n++] = '0';
			out[n++] = hex[c >> 4];
			out[n++] = hex[c & 15];
		} else
			out[n++] = (char)c;
	}
	return n;
}

static void
log_json(int level, uint64_t reqid, const struct timespec *ts,
    const struct tm *tm, const char *msg)
{
	char line[4200];
	size_t n;

	n = strftime(line, sizeof(line), "{\"ts\":\"%Y-%m-%dT%H:%M:%S", tm);
	n += (size_t)snprintf(line + n, sizeof(line) - n, ".%03ldZ\",\"level\":"
	    "\"%s\",\"prog\":\"", ts->tv_nsec / 1000000, log_level_name(level));
	n = json_escape(line, sizeof(line), n, log_prog);
	n += (size_t)snprintf(line + n, sizeof(line) - n, "\",\"proc\":\"");
	n = json_escape(line, sizeof(line), n, log_procname);
	n += (size_t)snprintf(line + n, sizeof(line) - n, "\",\"pid\":%d",
	    (int)getpid());
	if (reqid != 0)
		n += (size_t)snprintf(line + n, sizeof(line) - n,
		    ",\"req\":\"%016llx\"", (unsigned long long)reqid);
	n += (size_t)snprintf(line + n, sizeof(line) - n, ",\"msg\":\"");
	n = json_escape(line, sizeof(line) - 3, n, msg);
	line[n++] = '"';
	line[n++] = '}';
	line[n++] = '\n';
	(void)!write(STDERR_FILENO, line, n);
	if (log_sink != NULL)
		log_sink(line, n);
}

void
log_vmsg(int level, uint64_t reqid, const char *fmt, va_list ap)
{
	char line[2048];
	struct timespec ts;
	struct tm tm;
	size_t n;
	int saved = errno;

	if (level < log_lvl)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	if (log_fmt == LOG_FMT_JSON) {
		(void)vsnprintf(line, sizeof(line), fmt, ap);
		log_json(level, reqid, &ts, &tm, line);
		errno = saved;
		return;
	}
	n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
	n += (size_t)snprintf(line + n, sizeof(line) - n, ".%03ldZ %s[%s:%d] %s: ",
	    ts.tv_nsec / 1000000, log_prog, log_procname, (int)getpid(),
	    log_level_name(level));
	if (reqid != 0 && n < sizeof(line))
		n += (size_t)snprintf(line + n, sizeof(line) - n, "req=%016llx ",
		    (unsigned long long)reqid);
	if (n < sizeof(line))
		n += (size_t)vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	if (n > sizeof(line) - 2)
		n = sizeof(line) - 2;
	/* Never let a peer's bytes forge a second log line. */
	for (size_t i = 0; i < n; i++)
		if (line[i] == '\n' || line[i] == '\r')
			line[i] = ' ';
	line[n++] = '\n';
	(void)!write(STDERR_FILENO, line, n);
	if (log_sink != NULL)
		log_sink(line, n);
	errno = saved;
}

void
log_msg(int level, uint64_t reqid, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(level, reqid, fmt, ap);
	va_end(ap);
}

_Noreturn void
fatal(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(LOG_LVL_ERROR, 0, fmt, ap);
	va_end(ap);
	exit(1);
}

_Noreturn void
fatal_status(int status, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(LOG_LVL_ERROR, 0, fmt, ap);
	va_end(ap);
	exit(status);
}
