/*
 * The `aws` provider: AWS Secrets Manager as aws/REGION/NAME files, '/' in
 * names as subdirectories, secrets tagged keyfs:layout=fields as
 * directories of JSON fields.  Built on aws/sm.h (the API client) and
 * aws/creds.h (credentials, region, endpoint); fs/ sees only kf_aws_desc.
 * It keeps no values and never logs one.
 */
#ifndef KF_AWS_H
#define KF_AWS_H

#include "provider.h"

extern const struct kf_provider_desc kf_aws_desc;

/* The tag marking a secret shown as a directory of JSON fields. */
#define KF_AWS_LAYOUT_TAG "keyfs:layout"
#define KF_AWS_LAYOUT_FIELDS "fields"

#endif
