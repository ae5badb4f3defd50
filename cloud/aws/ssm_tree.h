/*
 * The `ssm` provider: AWS Systems Manager Parameter Store as
 * ssm/REGION/PATH files, the '/' levels of parameter names as
 * directories.  Built on aws/ssm.h (the API client) and the aws/
 * credential chain and configuration; fs/ sees only kf_ssm_desc.  It
 * keeps no values and never logs one.
 */
#ifndef KF_SSM_TREE_H
#define KF_SSM_TREE_H

#include "provider.h"

extern const struct kf_provider_desc kf_ssm_desc;

#endif
