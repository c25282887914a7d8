/*
 * agent/ag_version: the version agentd reports to the hub (hello frame)
 * and shows; make AGENT_VERSION=... may set it at build time.
 */
#ifndef SWB_AG_VERSION_H
#define SWB_AG_VERSION_H

#ifndef SWB_AGENT_VERSION
#define SWB_AGENT_VERSION	"0.1.0"
#endif

#endif
