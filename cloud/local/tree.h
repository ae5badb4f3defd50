/*
 * The embedded `local` provider: key rings and AES-256-GCM keys with
 * versions under the state directory, each data key wrapped by a master
 * key file, value files bound to their path.  No network, no cloud.
 */
#ifndef KF_LOCAL_H
#define KF_LOCAL_H

#include "provider.h"

extern const struct kf_provider_desc kf_local_desc;

#endif
