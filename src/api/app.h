/*
 * app.h - the application context handed to every API handler.
 *
 * Built once by `ingot serve` (src/main.c) and then read-only: the pointers are to thread-safe
 * modules, so handlers on the HTTP thread pool share it freely.
 */
#ifndef ING_API_APP_H
#define ING_API_APP_H

#include <stdint.h>

#include "catalog/catalog.h"
#include "identity/idgraph.h"
#include "ingest/pipeline.h"
#include "lake/lake.h"
#include "notify/notify.h"
#include "profile/profile.h"
#include "schema/registry.h"
#include "store/store.h"

struct app {
    struct store *store;
    struct registry *registry;
    struct catalog *catalog;
    struct lake *lake;
    struct pipeline *pipeline;
    struct idgraph *idgraph;   /* identity graph lookups (api_identity.c) */
    struct profiles *profiles; /* merge policies and profile lookups (api_profile.c) */
    struct notify *notify;     /* notification registrations and journal (api_events.c) */
    const char *tenant;        /* "techmarketingdemos" */
    const char *ims_org;       /* default org id when x-gw-ims-org-id is absent */
    /* Batch Ingestion limits (`ingot serve --max-*`); 0 takes AEP's default (api_import.c). */
    int64_t max_put_bytes;     /* one small-file PUT: 256 MB, larger files go in chunks */
    int64_t max_chunk_bytes;   /* one large-file PATCH chunk: 512000000 */
    int64_t max_batch_files;   /* files per batch: 1500 */
    int64_t max_batch_bytes;   /* bytes per batch: 100 GB */
};

#endif
