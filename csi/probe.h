/*
 * keyfs-csi-provider --probe: is a provider serving this socket?  For a
 * liveness probe that needs neither a shell nor a gRPC client in the
 * image.  Sends nothing but HTTP/2's connection preface.
 */
#ifndef KF_CSI_PROBE_H
#define KF_CSI_PROBE_H

#include <stddef.h>

/*
 * Connect to the unix socket at path, send the HTTP/2 client preface and
 * an empty SETTINGS frame, and wait up to timeout_ms for the server's
 * SETTINGS frame: what a live provider's connection thread answers
 * first.  0 when it came, else -1 with why in msg (n bytes).
 */
int kf_csi_probe(const char *path, unsigned timeout_ms, char *msg, size_t n);

#endif
