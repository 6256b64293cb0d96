/*
 * profile_fast.h - the profile module's direct writer of stored answers (inside the module only).
 *
 * Building a stored answer through jansson (parse each fragment, merge, compose, dump) was most
 * of the ~35 us of CPU the profile stage paid per cluster. The common case, a cluster whose
 * answer comes from one fragment, is written here in one pass over the fragment's text, with
 * the bytes json_dumps(JSON_COMPACT) of the general path would give. Whatever this writer is
 * not sure to reproduce exactly (duplicate keys, deep nesting, numbers at the edge of their
 * range, text jansson would refuse) it declines, and the caller takes the general path.
 */
#ifndef ING_PROFILE_PROFILE_FAST_H
#define ING_PROFILE_PROFILE_FAST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "identity/idgraph.h"
#include "util/buf.h"

/* Append the JSON text `text` (one object or array, NUL-terminated) as json_loads(text, 0) then
 * json_dumps(JSON_COMPACT) would give it. *has_identity_map (may be NULL): the top-level object
 * has an "identityMap" key. 0, or ING_ESYNTAX when declined (out is then unchanged). */
int profile_fast_recode(const char *text, struct buf *out, bool *has_identity_map);

/* Append s as a JSON string the way jansson dumps it. ING_ESYNTAX (out unchanged) when s is
 * not UTF-8 (jansson would refuse it). */
int profile_fast_string(struct buf *out, const char *s);

/* One fragment's answer: the bytes compose() + json_dumps(JSON_COMPACT) give for a cluster
 * (members in id order) whose only fragment (of `dataset`, batch `batch`, time `ts`) is the
 * object `doc`, under policy `policy_id`. 0, or ING_ESYNTAX when declined (out unchanged). */
int profile_fast_answer(const char *policy_id, const struct idg_member *members, size_t n,
                        const char *dataset, const char *batch, int64_t ts, const char *doc,
                        struct buf *out);

#endif
