/*
 * lib/log: leveled logging shared by hubd, agentd and hubctl.
 * Every line names the process ("hubd[gateway#0:1234]") and, for request
 * lines, carries the request id.  fatal() is for start-up errors;
 * everything a user, agent or peer process can cause (a peer breaking the
 * message protocol included: it is dropped) is log_warn() + recover.
 */
#ifndef SWB_LOG_H
#define SWB_LOG_H

#include <stddef.h>
#include <stdint.h>
#include <stdarg.h>

enum log_level { LOG_LVL_DEBUG = 0, LOG_LVL_INFO, LOG_LVL_WARN, LOG_LVL_ERROR };

void log_init(const char *prog, const char *proc, int level);
/* After fork: rename the process in log lines and in `ps`. */
void log_setproc(const char *proc);
const char *log_proc(void);
void log_set_level(int level);
/* LOG_FMT_TEXT (the default) or LOG_FMT_JSON: one JSON object per line,
 * {"ts","level","prog","proc","pid","req" (request lines),"msg"}. */
enum log_format { LOG_FMT_TEXT = 0, LOG_FMT_JSON };
void log_set_format(int fmt);
/* Also hand every line written (with its newline) to fn; NULL: stop.  fn
 * may be called from any thread that logs. */
void log_set_sink(void (*fn)(const char *line, size_t len));
int  log_level_parse(const char *s);          /* -1 when unknown */
const char *log_level_name(int level);

void log_msg(int level, uint64_t reqid, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void log_vmsg(int level, uint64_t reqid, const char *fmt, va_list ap);

#define log_debug(...) log_msg(LOG_LVL_DEBUG, 0, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_LVL_INFO, 0, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_LVL_WARN, 0, __VA_ARGS__)
#define log_error(...) log_msg(LOG_LVL_ERROR, 0, __VA_ARGS__)
/* Request lines: the id is printed as req=%016llx. */
#define log_rinfo(rid, ...) log_msg(LOG_LVL_INFO, (rid), __VA_ARGS__)
#define log_rwarn(rid, ...) log_msg(LOG_LVL_WARN, (rid), __VA_ARGS__)

/* Log at error level and exit(1).  Never returns. */
_Noreturn void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* As fatal(), with an explicit exit status (e.g. EX_CONFIG). */
_Noreturn void fatal_status(int status, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
