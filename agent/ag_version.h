/*
 * agent/ag_version: the version agentd reports to the hub (hello frame),
 * shows, and compares releases with (agent/ag_update); make
 * AGENT_VERSION=... sets it at build time.  It is read at run time from a
 * stamp in the binary's data ("swb-agent-version=" VERSION, NUL-padded to
 * a fixed size), so the version always comes from the running file: a
 * build that differs only in its stamp reports its own.
 */
#ifndef SWB_AG_VERSION_H
#define SWB_AG_VERSION_H

#ifndef SWB_AGENT_VERSION
#define SWB_AGENT_VERSION	"0.1.0"
#endif
#define AG_VERSION_STAMP	"swb-agent-version="

/* Writable on purpose: the compiler cannot fold a read of it. */
extern char ag_version_stamp[48];

/* The running binary's version, e.g. "0.1.0". */
const char *ag_version(void);

#endif
