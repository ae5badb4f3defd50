/*
 * The change watcher: every value read through the mount since it was
 * mounted (at most -o watch_max, most recent first) is re-checked every
 * ttl with the provider's cheapest change check (ops->stamp), whether or
 * not it is read again.  A value that changed is refetched into the
 * cache, the kernel's copy dropped, one line appended to .keyfs/events
 * and -o on_change run.  Holds fingerprints of values, never a value.
 */
#ifndef KF_WATCH_H
#define KF_WATCH_H

#include "provider.h"

struct kf_fs;

/*
 * A read of path (rel under p; rel may be a view) served value v: watch
 * path from now on (v gives the first fingerprint, and v->version the
 * first stamp when rel is not a view).  Cheap: no I/O, no provider call.
 */
void kf_watch_note(struct kf_fs *fs, struct kf_provider *p, const char *path,
		   const char *rel, const struct kf_secret *v);

#endif
